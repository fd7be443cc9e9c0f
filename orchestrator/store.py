"""Job records in Redis: the source of truth for what users see.

Each record is one JSON value at `rf:job:<id>`, listed in the sorted set `rf:jobs` by
creation time. Every change is a read-modify-write inside a WATCH/MULTI transaction, retried
on conflict, so two workers reporting at once can never lose or corrupt each other's update.
A batch edit's per-item results (thousands of lines for a big timeline) live beside the
record, in the hash `rf:job:<id>:results` (one field per task), written in the same
transaction: listings and progress updates never carry them; `get` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import redis

from orchestrator.models import JobRecord

PREFIX = "rf"
JOBS = f"{PREFIX}:jobs"
LOCK_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end
"""
LOCK_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('expire', KEYS[1], ARGV[2]) else return 0 end
"""


class JobNotFound(KeyError):
    """No job with this id (never submitted, or past its retention)."""

    def __str__(self) -> str:
        return f"no job {self.args[0]!r}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_keepalive=True)


class JobStore:
    """Create, read, change and list job records; and the per-task locks of idempotent tasks."""

    def __init__(self, client: redis.Redis, retention: int) -> None:
        self.redis = client
        self.retention = retention
        self._release = client.register_script(LOCK_RELEASE)
        self._extend = client.register_script(LOCK_EXTEND)

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}"

    @staticmethod
    def results_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:results"

    def create(self, record: JobRecord) -> JobRecord:
        record.refresh_progress()
        pipe = self.redis.pipeline()
        self._write(pipe, record, {}, nx=True)
        pipe.zadd(JOBS, {record.id: record.created_at})
        if not pipe.execute()[0]:
            raise ValueError(f"job {record.id} exists already")
        return record

    def get(self, job_id: str) -> JobRecord:
        raw, stored = self.redis.pipeline().get(self.key(job_id)).hgetall(self.results_key(job_id)).execute()
        return self._record(job_id, raw, stored)

    @staticmethod
    def _record(job_id: str, raw: str | None, stored: dict[str, str]) -> JobRecord:
        """A record read back, with the per-item results stored beside it (JSON per task name)."""
        if raw is None:
            raise JobNotFound(job_id)
        record = JobRecord.model_validate_json(raw)
        for task in record.tasks:
            if task.name in stored:
                task.results = json.loads(stored[task.name])
        return record

    def _write(self, pipe: Any, record: JobRecord, stored: dict[str, str], nx: bool = False) -> None:
        """Queue on `pipe` the record without its results (first), then the results that changed."""
        results_key = self.results_key(record.id)
        body = record.model_dump_json(exclude={"tasks": {"__all__": {"results"}}})
        pipe.set(self.key(record.id), body, ex=self.retention if record.finished else None, nx=nx)
        for task in record.tasks:
            text = json.dumps(task.results, separators=(",", ":")) if task.results else None
            if text is not None and text != stored.get(task.name):
                pipe.hset(results_key, task.name, text)
            elif text is None and task.name in stored:
                pipe.hdel(results_key, task.name)
        if record.finished:
            pipe.expire(results_key, self.retention)
        else:
            pipe.persist(results_key)  # a job retried after it finished keeps its results

    def update(self, job_id: str, change: Callable[[JobRecord], Any]) -> JobRecord:
        """Apply `change` to the current record atomically; returns the record as written.

        Note: `change` may run more than once (on a conflicting write it is re-run on the
        fresh record), so it must only compute from the record it is given.
        """
        key = self.key(job_id)
        written: list[JobRecord] = []

        def transaction(pipe: redis.client.Pipeline) -> None:
            stored = pipe.hgetall(self.results_key(job_id))
            record = self._record(job_id, pipe.get(key), stored)
            change(record)
            record.refresh_progress()
            pipe.multi()
            self._write(pipe, record, stored)
            written[:] = [record]

        self.redis.transaction(transaction, key)
        return written[0]

    def list(
        self, state: str | None = None, kind: str | None = None, offset: int = 0, limit: int = 50
    ) -> list[JobRecord]:
        """Newest first, filtered, one page; without per-item results (`get` has them)."""
        found: list[JobRecord] = []
        skipped = 0
        for record in self._newest_first():
            if (state and record.state != state) or (kind and record.kind != kind):
                continue
            if skipped < offset:
                skipped += 1
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    def _newest_first(self, batch: int = 200) -> Iterator[JobRecord]:
        start = 0
        while True:
            ids = self.redis.zrevrange(JOBS, start, start + batch - 1)
            if not ids:
                return
            raws = self.redis.mget([self.key(i) for i in ids])
            expired = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
            if expired:
                self.redis.zrem(JOBS, *expired)  # past retention
                start -= len(expired)
            for raw in raws:
                if raw is not None:
                    yield JobRecord.model_validate_json(raw)
            start += batch

    # --- locks ---------------------------------------------------------------------------

    @staticmethod
    def lock_key(job_id: str, task: str) -> str:
        return f"{PREFIX}:lock:{job_id}:{task}"

    def acquire(self, job_id: str, task: str, owner: str, ttl: int) -> bool:
        return bool(self.redis.set(self.lock_key(job_id, task), owner, nx=True, ex=ttl))

    def extend(self, job_id: str, task: str, owner: str, ttl: int) -> bool:
        return bool(self._extend(keys=[self.lock_key(job_id, task)], args=[owner, ttl]))

    def release(self, job_id: str, task: str, owner: str) -> bool:
        return bool(self._release(keys=[self.lock_key(job_id, task)], args=[owner]))

    def holder(self, job_id: str, task: str) -> str | None:
        value = self.redis.get(self.lock_key(job_id, task))
        return str(value) if value is not None else None
