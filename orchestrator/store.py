"""Job records in Redis: the source of truth for what users see.

Each record is one JSON value at `rf:job:<id>`, listed in the sorted set `rf:jobs` by
creation time, read typed by its kind (`kinds.get(kind).record`). Every change is a
lifecycle transition applied inside a WATCH/MULTI transaction (`apply`), retried on
conflict, so two workers reporting at once never lose or corrupt each other's update.

Beside each record:
- `rf:job:<id>:results`: a batch edit's per-item results (one hash field per piece),
  written in the same transaction, so listings and progress updates stay light; `get` has them.
- `rf:jobs:active`: the ids of unfinished jobs, kept in the same transaction: the janitor reads
  these instead of every record.
- `rf:jobs:state:<state>`: the ids of the jobs in each state, scored by when their record expires
  (`+inf` while unfinished), and `rf:jobs:kind:<kind>`: listings filter on these and the metrics
  count them, without reading records that do not match.
- `rf:jobs:cleanup`: cancelled jobs by the time their leftovers are due to be removed.
- `rf:jobs:waiting-on:<id>`: the `waiting` jobs that wait for job `<id>` to finish (`JobRecord.waiting_on`
  turned around), kept in the same transaction: whoever finishes `<id>` reads it to release them.
"""

from __future__ import annotations

import builtins
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import redis

from orchestrator import kinds
from orchestrator.models import FINISHED, JobRecord, JobState

PREFIX = "rf"
JOBS = f"{PREFIX}:jobs"
ACTIVE = f"{PREFIX}:jobs:active"
CLEANUP = f"{PREFIX}:jobs:cleanup"
PULLING = f"{PREFIX}:jobs:pulling"  # pulled renders with frames no piece has taken yet, by priority


def pulling_key(priority: int) -> str:
    return f"{PULLING}:{priority}"


STATES: tuple[JobState, ...] = ("waiting", "queued", "running", "stitching", "succeeded", "failed", "cancelled")


def state_key(state: str) -> str:
    return f"{PREFIX}:jobs:state:{state}"


def kind_key(kind: str) -> str:
    return f"{PREFIX}:jobs:kind:{kind}"


def waiting_on_key(job_id: str) -> str:
    return f"{PREFIX}:jobs:waiting-on:{job_id}"


T = TypeVar("T")
Record = JobRecord[Any, Any]


class JobNotFound(KeyError):
    """No job with this id (never submitted, or past its retention)."""

    def __str__(self) -> str:
        return f"no job {self.args[0]!r}"


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_keepalive=True)


KIND = re.compile(r'"kind":\s*"([^"]+)"')


def parse(raw: str) -> Record:
    """A stored record, read with its kind's spec and plan models.

    Note: the kind is read off the text before the record is parsed once, by its kind's model:
    a record is written with `id` then `kind` first, so the first `"kind"` is the record's.
    """
    found = KIND.search(raw)
    if found is None:
        raise ValueError("a stored job record without a kind")
    return kinds.get(found.group(1)).record.model_validate_json(raw)


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
        pipe.sadd(kind_key(record.kind), record.id)
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
        for state in STATES:
            if state != record.state:
                pipe.zrem(state_key(state), record.id)
        expires = time.time() + self.retention if record.finished else float("inf")
        pipe.zadd(state_key(record.state), {record.id: expires})
        if record.cleanup_at is not None:
            pipe.zadd(CLEANUP, {record.id: record.cleanup_at})
        else:
            pipe.zrem(CLEANUP, record.id)
        if record.frame_pool is not None:
            if record.frame_pool.remaining and not record.finished:
                pipe.sadd(pulling_key(record.priority), record.id)
            else:
                pipe.srem(pulling_key(record.priority), record.id)
        for upstream in record.after:
            if record.state == "waiting" and upstream in record.waiting_on:
                pipe.sadd(waiting_on_key(upstream), record.id)
            else:
                pipe.srem(waiting_on_key(upstream), record.id)

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
        """Newest first, filtered, one page; without per-item results (`get` has them).

        Note: filtered by the state and kind indexes first, so only matching records are read.
        """
        found: builtins.list[Record] = []
        skipped = 0
        self._prune()
        for record in self._newest_first(state, kind):
            if (state and record.state != state) or (kind and record.kind != kind):
                continue  # changed between the index and the read
            if skipped < offset:
                skipped += 1
                continue
            found.append(record)
            if len(found) >= limit:
                break
        return found

    def counts(self) -> dict[str, int]:
        """How many jobs are kept in each state, from the indexes (expired records dropped first)."""
        self._prune()
        pipe = self.redis.pipeline(transaction=False)
        for state in STATES:
            pipe.zcard(state_key(state))
        return {state: int(n) for state, n in zip(STATES, pipe.execute(), strict=True)}

    def _prune(self) -> None:
        """Drop finished jobs whose records have expired from every index."""
        pipe = self.redis.pipeline(transaction=False)
        for state in FINISHED:
            pipe.zrangebyscore(state_key(state), "-inf", time.time())
        expired = [i for ids in pipe.execute() for i in ids]
        if expired:
            self._forget(expired)

    def _forget(self, ids: builtins.list[str]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(JOBS, *ids)
        for state in STATES:
            pipe.zrem(state_key(state), *ids)
        for kind in kinds.names():
            pipe.srem(kind_key(kind), *ids)
        pipe.execute()

    def active(self) -> builtins.list[Record]:
        """Every unfinished job (from the index, not a scan of all records)."""
        ids = sorted(self.redis.smembers(ACTIVE))
        raws = self.redis.mget([self.key(i) for i in ids]) if ids else []
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self.redis.srem(ACTIVE, *gone)
        return [parse(raw) for raw in raws if raw is not None]

    def pulling_ids(self, priority: int) -> builtins.list[str]:
        """The ids of the pulled renders of this priority that still have frames to hand out."""
        return sorted(self.redis.smembers(pulling_key(priority)))

    def waiting_for(self, job_id: str) -> builtins.list[str]:
        """The ids of the jobs waiting for job `job_id` to finish."""
        return sorted(self.redis.smembers(waiting_on_key(job_id)))

    def forget_waiting(self, job_id: str, dependent: str) -> None:
        """Drop a dependent whose record is gone from the index of what waits for `job_id`."""
        self.redis.srem(waiting_on_key(job_id), dependent)

    def cleanup_due(self, now: float) -> builtins.list[str]:
        """Cancelled jobs whose leftovers are due to be removed."""
        return [str(i) for i in self.redis.zrangebyscore(CLEANUP, "-inf", now)]

    def _newest_first(self, state: str | None = None, kind: str | None = None, batch: int = 200) -> Iterator[Record]:
        start = 0
        while True:
            ids = self.redis.zrevrange(JOBS, start, start + batch - 1)
            if not ids:
                return
            start += batch
            wanted = ids
            if state or kind:
                pipe = self.redis.pipeline(transaction=False)
                if state:
                    pipe.zmscore(state_key(state), ids)
                if kind:
                    pipe.smismember(kind_key(kind), ids)
                replies = pipe.execute()
                keep = [all(r[i] for r in replies) for i in range(len(ids))]
                wanted = [i for i, ok in zip(ids, keep, strict=True) if ok]
            if not wanted:
                continue
            raws = self.redis.mget([self.key(i) for i in wanted])
            expired = [i for i, raw in zip(wanted, raws, strict=True) if raw is None]
            if expired:  # past retention: out of every index
                self._forget(expired)
                start -= len(expired)
            for raw in raws:
                if raw is not None:
                    yield parse(raw)
