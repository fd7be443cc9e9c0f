"""Job records in Redis: the source of truth for what users see.

Each record is one JSON value at `rf:job:<id>`, listed in the sorted set `rf:jobs` by
creation time, read typed by its kind (`kinds.get(kind).record`). Every change is a
lifecycle transition applied inside a WATCH/MULTI transaction (`apply`), retried on
conflict, so two workers reporting at once never lose or corrupt each other's update.

Beside each record:
- `rf:job:<id>:results`: a batch edit's per-item results (one hash field per piece),
  written in the same transaction, so listings and progress updates stay light; `get` has them.
- `rf:jobs:active`: the ids of unfinished jobs, kept in the same transaction: the janitor and
  the metrics read these instead of every record.
- `rf:jobs:cleanup`: cancelled jobs by the time their leftovers are due to be removed.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import redis

from orchestrator import kinds
from orchestrator.models import JobRecord

PREFIX = "rf"
JOBS = f"{PREFIX}:jobs"
ACTIVE = f"{PREFIX}:jobs:active"
CLEANUP = f"{PREFIX}:jobs:cleanup"
T = TypeVar("T")
Record = JobRecord[Any, Any]


class JobNotFound(KeyError):
    """No job with this id (never submitted, or past its retention)."""

    def __str__(self) -> str:
        return f"no job {self.args[0]!r}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_keepalive=True)


def parse(raw: str) -> Record:
    """A stored record, read with its kind's spec and plan models."""
    kind = json.loads(raw)["kind"]
    return kinds.get(kind).record.model_validate_json(raw)


class JobStore:
    """Create, read, change (through lifecycle transitions) and list job records."""

    def __init__(self, client: redis.Redis, retention: int) -> None:
        self.redis = client
        self.retention = retention

    @staticmethod
    def key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}"

    @staticmethod
    def results_key(job_id: str) -> str:
        return f"{PREFIX}:job:{job_id}:results"

    def create(self, record: Record) -> Record:
        record.refresh_progress()
        pipe = self.redis.pipeline()
        self._write(pipe, record, {}, nx=True)
        pipe.zadd(JOBS, {record.id: record.created_at})
        if not pipe.execute()[0]:
            raise ValueError(f"job {record.id} exists already")
        return record

    def get(self, job_id: str) -> Record:
        raw, stored = self.redis.pipeline().get(self.key(job_id)).hgetall(self.results_key(job_id)).execute()
        return self._record(job_id, raw, stored)

    @staticmethod
    def _record(job_id: str, raw: str | None, stored: dict[str, str]) -> Record:
        """A record read back, with the per-item results stored beside it (JSON per piece name)."""
        if raw is None:
            raise JobNotFound(job_id)
        record = parse(raw)
        for task in record.tasks:
            if task.name in stored:
                task.results = json.loads(stored[task.name])
        return record

    def _write(self, pipe: Any, record: Record, stored: dict[str, str], nx: bool = False) -> None:
        """Queue on `pipe` the record without its results (first), then the results that changed, then the indexes."""
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
            pipe.srem(ACTIVE, record.id)
        else:
            pipe.persist(results_key)  # a job retried after it finished keeps its results
            pipe.sadd(ACTIVE, record.id)
        if record.cleanup_at is not None:
            pipe.zadd(CLEANUP, {record.id: record.cleanup_at})
        else:
            pipe.zrem(CLEANUP, record.id)

    def apply(self, job_id: str, transition: Callable[[Record], T]) -> tuple[Record, T]:
        """Apply a transition to the current record atomically; the record as written and what the transition returned.

        Note: `transition` may run more than once (on a conflicting write it is re-run on the
        fresh record), so it must only compute from the record it is given.
        """
        key = self.key(job_id)
        written: list[tuple[Record, T]] = []

        def transaction(pipe: redis.client.Pipeline) -> None:
            stored = pipe.hgetall(self.results_key(job_id))
            record = self._record(job_id, pipe.get(key), stored)
            outcome = transition(record)
            record.refresh_progress()
            pipe.multi()
            self._write(pipe, record, stored)
            written[:] = [(record, outcome)]

        self.redis.transaction(transaction, key)
        return written[0]

    def list(
        self, state: str | None = None, kind: str | None = None, offset: int = 0, limit: int = 50
    ) -> builtins.list[Record]:
        """Newest first, filtered, one page; without per-item results (`get` has them)."""
        found: builtins.list[Record] = []
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

    def active(self) -> builtins.list[Record]:
        """Every unfinished job (from the index, not a scan of all records)."""
        ids = sorted(self.redis.smembers(ACTIVE))
        raws = self.redis.mget([self.key(i) for i in ids]) if ids else []
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self.redis.srem(ACTIVE, *gone)
        return [parse(raw) for raw in raws if raw is not None]

    def cleanup_due(self, now: float) -> builtins.list[str]:
        """Cancelled jobs whose leftovers are due to be removed."""
        return [str(i) for i in self.redis.zrangebyscore(CLEANUP, "-inf", now)]

    def _newest_first(self, batch: int = 200) -> Iterator[Record]:
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
                    yield parse(raw)
            start += batch
