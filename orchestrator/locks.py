"""Per-piece locks in Redis: at most one copy of a piece runs, and a dead worker's lock lapses.

A lock is `rf:lock:<job>:<piece>` holding its owner (`<node>:<message id>`), with a short
TTL that the owner keeps extending while it works (`tasks.progress.LockKeeper`). Release and
extend act only for the owner, in one Lua call each.
"""

from __future__ import annotations

import redis

from orchestrator.store import PREFIX

RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end
"""


class PieceLocks:
    """Acquire, extend, release and read the locks of job pieces."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)

    @staticmethod
    def key(job_id: str, piece: str) -> str:
        return f"{PREFIX}:lock:{job_id}:{piece}"

    def acquire(self, job_id: str, piece: str, owner: str, ttl: int) -> bool:
        return bool(self.redis.set(self.key(job_id, piece), owner, nx=True, ex=ttl))

    def extend(self, job_id: str, piece: str, owner: str, ttl: int) -> bool:
        return bool(self._extend(keys=[self.key(job_id, piece)], args=[owner, ttl]))

    def release(self, job_id: str, piece: str, owner: str) -> bool:
        return bool(self._release(keys=[self.key(job_id, piece)], args=[owner]))

    def holder(self, job_id: str, piece: str) -> str | None:
        value = self.redis.get(self.key(job_id, piece))
        return str(value) if value is not None else None
