"""Job records in Redis: the source of truth for what users see.

Each record is one JSON value at `rf:job:<id>`, listed in the sorted set `rf:jobs` by
creation time, read typed by its kind's record model (the store is given the models of the
registered kinds: `Farm.store`; one discriminated union parses any of them). Every change is
a lifecycle transition applied inside a WATCH/MULTI transaction (`apply`), retried on
conflict, so two workers finishing pieces at once never lose or corrupt each other's update.

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
- `rf:jobs:holders:<priority>`: who holds what, per priority: job -> what its kind's rules say of it
  (`KindRules.dispatch`: the nodes rendering its pieces, whether a piece waits for a node, ...), kept in the
  same transaction, so that a claim reads one index instead of every rival job's record.
- `rf:job:<id>:live` and `rf:job:<id>:control`: running pieces' reports, and what they read back
  (`orchestrator.live`); the control entry is written in the same transaction as the record.
"""

from __future__ import annotations

import builtins
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Annotated, Any, TypeVar, Union

import pydantic
import redis

from orchestrator.live import LiveProgress, live_key, merge
from orchestrator.models import FINISHED, JOB_STATES, JobRecord, JobState
from orchestrator.refusals import Refused

PREFIX = "rf"
JOBS = f"{PREFIX}:jobs"
ACTIVE = f"{PREFIX}:jobs:active"
CLEANUP = f"{PREFIX}:jobs:cleanup"
HOLDERS = f"{PREFIX}:jobs:holders"  # per priority: job -> what its kind's rules say it holds (`KindRules.dispatch`)


def holders_key(priority: int) -> str:
    return f"{HOLDERS}:{priority}"


STATES: tuple[JobState, ...] = JOB_STATES


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


class AmbiguousJob(Refused):
    """A job id prefix that starts more than one job's id; `candidates` are their ids."""

    def __init__(self, prefix: str, candidates: builtins.list[str], field: str = "job") -> None:
        shown = ", ".join(candidates[:10]) + (f" and {len(candidates) - 10} more" if len(candidates) > 10 else "")
        super().__init__(field, f"{prefix!r} starts {len(candidates)} jobs' ids ({shown}): give more of it")
        self.candidates = candidates


SHORT_ID = 8  # characters of a job id the CLI shows; any unique prefix of MIN_PREFIX or more names the job
MIN_PREFIX = 4
_HEX = re.compile(r"[0-9a-f]+")


def short_ids(ids: builtins.list[str]) -> dict[str, str]:
    """Each id shortened to `SHORT_ID` characters, or to as many more as tell it from every other of `ids`."""
    ordered = sorted(set(ids))

    def common(a: str, b: str) -> int:
        return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    shown = {}
    for i, job in enumerate(ordered):
        neighbours = ordered[max(i - 1, 0) : i] + ordered[i + 1 : i + 2]  # sorted: the nearest share the most
        shown[job] = job[: max(SHORT_ID, *(common(job, n) + 1 for n in neighbours), 0)]
    return shown


def connect(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, decode_responses=True, health_check_interval=30, socket_keepalive=True)


Models = Callable[[], Mapping[str, type[Record]]]  # kind name -> its record model, as registered now


class RecordReader:
    """Parses a stored record with its kind's model, picked by the `kind` field (a discriminated union).

    Note: built from the models registered when first needed, and again when a record names a
    kind registered since (a plugin loaded later in the process).
    """

    def __init__(self, models: Models) -> None:
        self.models = models
        self._known: frozenset[str] = frozenset()
        self._adapter: pydantic.TypeAdapter[Any] | None = None

    def parse(self, raw: str) -> Record:
        if self._adapter is None:
            self._build()
        assert self._adapter is not None
        try:
            return self._adapter.validate_json(raw)
        except pydantic.ValidationError as exc:
            if not any(e["type"] in ("union_tag_invalid", "union_tag_not_found") for e in exc.errors()):
                raise
            if frozenset(self.models()) == self._known:
                kind = exc.errors()[0].get("input", {})
                raise ValueError(f"a stored job record of an unknown kind (known: {', '.join(sorted(self._known))}):"
                                 f" {str(kind)[:200]}") from None  # fmt: skip
            self._build()
            return self.parse(raw)

    def _build(self) -> None:
        models = dict(self.models())
        self._known = frozenset(models)
        union = Union[tuple(models.values())] if len(models) > 1 else next(iter(models.values()))  # noqa: UP007
        self._adapter = pydantic.TypeAdapter(Annotated[union, pydantic.Field(discriminator="kind")])  # type: ignore[arg-type]

    def kinds(self) -> builtins.list[str]:
        return sorted(self.models())


class JobStore:
    """Create, read, change (through lifecycle transitions) and list job records."""

    def __init__(self, client: redis.Redis, retention: int, models: Models) -> None:
        self.redis = client
        self.retention = retention
        self.reader = RecordReader(models)
        self.live = LiveProgress(client, retention)

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

    def resolve(self, ref: str, field: str = "job") -> str:
        """The id of the job `ref` names: its whole id, or the start of one (at least `MIN_PREFIX` characters)
        that no other kept job's id starts with. `JobNotFound` when none does; `AmbiguousJob` (naming `field`)
        with the candidates when several do."""
        if self.redis.exists(self.key(ref)):
            return ref
        if len(ref) < MIN_PREFIX or not _HEX.fullmatch(ref):
            raise JobNotFound(ref)
        started = sorted(job for job, _ in self.redis.zscan_iter(JOBS, match=f"{ref}*"))
        pipe = self.redis.pipeline(transaction=False)
        for job in started:
            pipe.exists(self.key(job))
        kept = [job for job, exists in zip(started, pipe.execute(), strict=True) if exists]  # not past retention
        if not kept:
            raise JobNotFound(ref)
        if len(kept) > 1:
            raise AmbiguousJob(ref, kept, field)
        return kept[0]

    def get(self, job_id: str) -> Record:
        """The record as it is now: its per-item results and its running pieces' reports merged in."""
        pipe = self.redis.pipeline()
        raw, stored, live = pipe.get(self.key(job_id)).hgetall(self.results_key(job_id)).hgetall(
            live_key(job_id)).execute()  # fmt: skip
        record = self._record(job_id, raw, stored, live)
        record.refresh_progress()
        return record

    def _record(self, job_id: str, raw: str | None, stored: dict[str, str], live: dict[str, str]) -> Record:
        """A record read back, with the per-item results stored beside it (JSON per piece name) and the
        reports of its running pieces folded in."""
        if raw is None:
            raise JobNotFound(job_id)
        record = self.reader.parse(raw)
        for task in record.tasks:
            if task.name in stored:
                task.results = json.loads(stored[task.name])
        merge(record, live)
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
        holds = record.rules.dispatch(record)
        if holds is not None:
            pipe.hset(holders_key(record.priority), record.id, json.dumps(holds, separators=(",", ":")))
        elif nx is False:
            pipe.hdel(holders_key(record.priority), record.id)
        self.live.write(pipe, record, self.retention)
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
            record = self._record(job_id, pipe.get(key), stored, self.live.read(job_id))
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
        for kind in self.reader.kinds():
            pipe.srem(kind_key(kind), *ids)
        pipe.execute()

    def active(self) -> builtins.list[Record]:
        """Every unfinished job (from the index, not a scan of all records)."""
        ids = sorted(self.redis.smembers(ACTIVE))
        raws = self.redis.mget([self.key(i) for i in ids]) if ids else []
        gone = [i for i, raw in zip(ids, raws, strict=True) if raw is None]
        if gone:
            self.redis.srem(ACTIVE, *gone)
        return [self.reader.parse(raw) for raw in raws if raw is not None]

    def holders(self, priority: int) -> dict[str, dict[str, Any]]:
        """Who holds what among the jobs of this priority: job -> its kind's entry (`KindRules.dispatch`)."""
        return {job: json.loads(raw) for job, raw in self.redis.hgetall(holders_key(priority)).items()}

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
            pipe = self.redis.pipeline(transaction=False)
            pipe.mget([self.key(i) for i in wanted])
            for job_id in wanted:
                pipe.hgetall(live_key(job_id))
            raws, *lives = pipe.execute()
            expired = [i for i, raw in zip(wanted, raws, strict=True) if raw is None]
            if expired:  # past retention: out of every index
                self._forget(expired)
                start -= len(expired)
            for raw, live in zip(raws, lives, strict=True):
                if raw is not None:
                    record = self.reader.parse(raw)
                    if live:
                        merge(record, live)
                        record.refresh_progress()
                    yield record
