"""Each piece's log: the lines its workers wrote while running it, kept in Redis as long as the job.

`rf:job:<id>:log:<piece>` is a list of lines (`<time> <node> <level> <text>`), capped at
`MAX_LINES` (the oldest go first) with each line cut at `MAX_LINE` characters, so a chatty
piece can never grow the store without bound. Every append renews the list's expiry to the
job's retention: the last line of a finished job is written when it finishes, so its log
lives as long as its record.
"""

from __future__ import annotations

import time

import redis

from orchestrator.store import PREFIX

MAX_LINES = 500
MAX_LINE = 2000


class PieceLog:
    """Append to and read the logs of a job's pieces."""

    def __init__(self, client: redis.Redis, retention: int) -> None:
        self.redis = client
        self.retention = retention

    @staticmethod
    def key(job_id: str, piece: str) -> str:
        return f"{PREFIX}:job:{job_id}:log:{piece}"

    def append(self, job_id: str, piece: str, node: str, level: str, text: str, now: float | None = None) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now or time.time()))
        line = f"{stamp}Z {node} {level} {text}"
        if len(line) > MAX_LINE:
            line = line[: MAX_LINE - 1] + "…"
        key = self.key(job_id, piece)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpush(key, line)
        pipe.ltrim(key, -MAX_LINES, -1)
        pipe.expire(key, self.retention)
        pipe.execute()

    def read(self, job_id: str, piece: str) -> list[str]:
        return [str(line) for line in self.redis.lrange(self.key(job_id, piece), 0, -1)]
