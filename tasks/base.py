"""`PieceTask`: the one way a piece of any job kind runs on a worker.

A piece's message carries (job id, piece name, generation). The base class takes the
piece's lock, claims the piece through the lifecycle (which may skip it, move it to another
node, or record that a previous worker died with it), runs the subclass's `perform`, and
reports the outcome through the lifecycle again: done (dependents are sent), failed (sent
elsewhere or given up), cancelled. Subclasses only say what the work is, and may hook in at
named moments, as Dramatiq's middleware does:

| hook | runs |
|---|---|
| `prepare(job_id, name, generation)` | before the piece is locked and claimed (what to tell the farm first) |
| `perform(run)` | the work; returns a `PieceResult` or raises |
| `after_done(run, result, record)` | the piece is recorded done |
| `after_stale(run, result, record)` | the work finished but the record no longer wanted it (undo what it made) |
| `after_failure(run, exc)` | an attempt failed, before it is recorded |

What the job's kind needs from the farm for its own rules at the claim and when the piece is
done (a pulled render's speeds, costs and rivals) is read by the kind (`JobKind.claim_context`),
inside the record's transaction: a piece reads its record twice, at the claim and when done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from celery import Task
from celery.exceptions import Retry, SoftTimeLimitExceeded

from orchestrator import engine, kinds, lifecycle, metrics, telemetry
from orchestrator.farm import Farm
from orchestrator.live import GENERATION, LEASE, STATE
from orchestrator.models import FINISHED, JobRecord, TaskRecord
from orchestrator.outcome import Outcome
from orchestrator.piecelog import PieceLog
from tasks.deadline import PieceDeadline, PieceOverdue
from tasks.leases import LeaseKeeper
from tasks.piece_log import PieceLogHandler
from tasks.progress import LockKeeper
from tasks.runtime import runtime

log = logging.getLogger(__name__)
Record = JobRecord[Any, Any]


class PieceCancelled(Exception):
    """The work stopped because the job was cancelled or finished meanwhile."""


class PieceGivenBack(PieceCancelled):
    """The work stopped because this node's worker is stopping: the piece goes back to the queue, uncounted."""


class Superseded(Exception):
    """This copy's lock lapsed (its worker was cut off) and another copy owns the piece now."""


class PermanentFailure(Exception):
    """A failure no other node or attempt can fix (the request itself is wrong)."""


@dataclass
class PieceRun:
    """One attempt at one piece, as `perform` sees it."""

    task: Task
    record: Record
    piece: TaskRecord
    owner: str  # the lock's owner: <node>:<message id>

    @property
    def job_id(self) -> str:
        return self.record.id


@dataclass
class PieceResult:
    """What a finished piece made: its output, frames, per-item results, an error it finished with, and
    the pieces it found its job must run now (added after it: `lifecycle.piece_done`)."""

    output: str | None = None
    frames: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    results: list[dict[str, Any]] | None = None
    error: str | None = None
    pieces: list[TaskRecord] = field(default_factory=list)


class PieceTask(Task):
    """Base class of every piece task: claim, perform, report, by the lifecycle's rules.

    Note: acknowledged late and idempotent: a redelivered copy finds the piece done (and
    skips), its lock held by a live copy (and looks again later, in case that worker dies),
    or a message id its record no longer names (and skips).
    """

    abstract = True
    acks_late = True
    hung_errors: tuple[type[BaseException], ...] = (SoftTimeLimitExceeded, PieceOverdue)
    permanent_errors: tuple[type[BaseException], ...] = (PermanentFailure,)

    def prepare(self, job_id: str, name: str, generation: int) -> None:
        return None

    def perform(self, run: PieceRun) -> PieceResult:
        raise NotImplementedError(f"{self.name} does not say what its work is")

    def after_done(self, run: PieceRun, result: PieceResult, record: Record) -> None:
        return None

    def after_stale(self, run: PieceRun, result: PieceResult, record: Record) -> None:
        return None

    def after_failure(self, run: PieceRun, exc: BaseException) -> None:
        return None

    def after_job(self, record: Record) -> None:
        """A transition of this piece (any: its claim, its end, a copy's) finished its job (default: nothing)."""
        return None

    def end_write(self, run: PieceRun) -> None:
        """A piece holding a write lease ended: let the project go before the lease does (default: nothing)."""
        return None

    # --- the one path every piece takes ------------------------------------------------

    def run_piece(self, job_id: str, name: str, generation: int) -> dict[str, Any]:
        """Run the piece this message names, in a span of the job's trace (its context came with the message)."""
        with telemetry.span(f"piece {name}", ok=(Retry,), job=job_id, piece=name, generation=generation,
                            node=runtime.node) as span:  # fmt: skip
            said = self._claim_and_run(job_id, name, generation)
            span.set_attribute("resolve_farm.outcome", next(iter(said), ""))
            return said

    def _claim_and_run(self, job_id: str, name: str, generation: int) -> dict[str, Any]:
        farm = runtime.farm()
        me = runtime.node
        message_id = str(self.request.id)
        owner = f"{me}:{message_id}"
        ttl = runtime.settings.lock_ttl
        state, current, lease = _control(farm, job_id, name)
        said = PieceLog(farm.redis, farm.settings.job_retention)  # what this message did, in the piece's log
        if state in FINISHED or current != generation:
            why = f"the job is {state} at generation {current}"
            said.append(job_id, name, me, "INFO", f"message {message_id} not run: skip ({why})")
            return {"skipped": why}
        self.prepare(job_id, name, generation)
        if not farm.locks.acquire(job_id, name, owner, ttl):
            # Another copy holds it: not running it twice. Look again later, in case its worker
            # died (its lock then lapses); dropping this copy could lose the piece.
            holder = farm.locks.holder(job_id, name)
            said.append(job_id, name, me, "INFO", f"message {message_id} found the piece locked by {holder}: later")
            raise self.retry(countdown=max(1, ttl // 2), max_retries=None)
        leased = False
        try:
            if lease:
                leased = farm.leases.acquire(lease, owner, ttl)
                if not leased:
                    # Another host writes this project: wait, unclaimed, so the wait costs no attempt.
                    said.append(job_id, name, me, "INFO",
                                f"message {message_id} waits for project {lease} (written by "
                                f"{farm.leases.holder(lease)})")  # fmt: skip
                    raise self.retry(countdown=1, max_retries=None)

            def claim(rec: Record) -> Outcome:
                candidates = farm.nodes.candidates(rec.task(name).placement)
                context = kinds.get(rec.kind).claim_context(farm, rec, name, me, candidates)
                return lifecycle.claim(rec, name, me, message_id, generation, runtime.settings.node_tags, candidates,
                                       context=context)  # fmt: skip

            with telemetry.span("claim") as claiming:
                record, outcome = self._advance(farm, job_id, claim)
                claiming.set_attribute("resolve_farm.verdict", outcome.verdict)
            if outcome.lost_on:
                # Its worker died or was killed mid-call: keep new work off it until Resolve answers again.
                farm.nodes.mark(outcome.lost_on, unhealthy=f"lost {name} of job {job_id}")
            if outcome.verdict == "failed":
                metrics.record_failure(farm.redis, _label(record, name), outcome.lost_on or me, retried=False)
            if outcome.verdict == "wait":
                raise self.retry(countdown=1, max_retries=None)
            if outcome.verdict != "run":
                said.append(
                    job_id, name, me, "INFO", f"message {message_id} not run: {outcome.verdict} ({outcome.reason})"
                )
                return {outcome.verdict: outcome.reason}
            return self._run(PieceRun(self, record, record.task(name), owner))
        finally:
            if leased and lease:
                farm.leases.release(lease, owner)
            farm.locks.release(job_id, name, owner)

    def _advance(self, farm: Farm, job_id: str, transition: Callable[[Record], Outcome]) -> tuple[Record, Outcome]:
        record, outcome = engine.advance(farm, job_id, transition)
        if record.finished:
            self.after_job(record)
        return record, outcome

    def _run(self, run: PieceRun) -> dict[str, Any]:
        farm, me, name = runtime.farm(), runtime.node, run.piece.name
        with PieceLogHandler(PieceLog(farm.redis, farm.settings.job_retention), run.job_id, name, me):
            log.info("%s of job %s: attempt %d on %s (generation %d)", name, run.job_id, run.piece.attempts, me,
                     run.record.generation)  # fmt: skip
            return self._attempt(run)

    def _attempt(self, run: PieceRun) -> dict[str, Any]:
        farm, me, name = runtime.farm(), runtime.node, run.piece.name
        generation = run.record.generation
        farm.nodes.heartbeat(me, current_task=f"{run.job_id}:{name}")
        keeper = LockKeeper(farm.locks, run.job_id, name, run.owner, runtime.settings.lock_ttl)
        lease = run.piece.lease
        lease_keeper = LeaseKeeper(farm.leases, lease, run.owner, runtime.settings.lock_ttl) if lease else None
        deadline = PieceDeadline.start(self.time_limit or self.app.conf.task_time_limit,
                                       f"{name} of job {run.job_id}", runtime.abort_session)  # fmt: skip
        try:
            with telemetry.span("perform", attempt=run.piece.attempts):
                result = self.perform(run)
        except PieceGivenBack as back:
            why = str(back)
            self._advance(farm, run.job_id, lambda rec: lifecycle.piece_given_back(rec, name, me, generation, why))
            log.warning("%s given back: %s", name, why)
            return {"given_back": why}
        except PieceCancelled as stopped:
            self._advance(farm, run.job_id, lambda rec: lifecycle.piece_cancelled(rec, name, me, generation))
            log.info("%s stopped: %s", name, stopped)
            return {"cancelled": True}
        except Superseded as exc:
            log.warning("%s", exc)
            return {"superseded": True}
        except Exception as exc:
            return self._failed(run, deadline.overdue(exc) if deadline else exc)
        finally:
            if deadline:
                deadline.stop()
            if lease_keeper:
                self.end_write(run)
                lease_keeper.stop()
            keeper.stop()
            farm.nodes.heartbeat(me, current_task=None)

        def done(rec: Record) -> Outcome:
            context = kinds.get(rec.kind).claim_context(farm, rec, name, me, farm.nodes.candidates(run.piece.placement))
            return lifecycle.piece_done(rec, name, me, generation, output=result.output, frames=result.frames,
                                        details=result.details, results=result.results, error=result.error,
                                        context=context, pieces=result.pieces)  # fmt: skip

        record, outcome = self._advance(farm, run.job_id, done)
        if outcome.verdict == "stale":
            log.warning("%s", outcome.reason)
            self.after_stale(run, result, record)
            return {"stale": outcome.reason}
        self.after_done(run, result, record)
        log.info("%s done: %s", name, result.output or result.details or "ok")
        return {"output": result.output, "frames": result.frames, "node": me, **result.details}

    def _failed(self, run: PieceRun, exc: Exception) -> dict[str, Any]:
        farm, me, name = runtime.farm(), runtime.node, run.piece.name
        log.warning("%s of job %s failed on %s: %s", name, run.job_id, me, exc)
        self.after_failure(run, exc)
        candidates = farm.nodes.candidates(run.piece.placement)
        hung = isinstance(exc, self.hung_errors)
        permanent = isinstance(exc, self.permanent_errors)
        record, outcome = self._advance(
            farm, run.job_id,
            lambda rec: lifecycle.piece_failed(rec, name, me, run.record.generation, str(exc), candidates,
                                               permanent=permanent, hung=hung),
        )  # fmt: skip
        if outcome.unhealthy:
            farm.nodes.heartbeat(me, unhealthy=outcome.unhealthy)
        if outcome.count_failure:
            metrics.record_failure(farm.redis, _label(record, name), me, retried=outcome.verdict == "retry")
        if outcome.verdict == "retry":
            where = outcome.send[0].node or "any eligible node"
            log.warning("%s will run again on %s (attempt %d of %d)", name, where, run.piece.attempts + 1,
                        record.max_attempts)  # fmt: skip
        elif outcome.verdict == "failed":
            log.error("%s gave up: %s", name, outcome.reason)
        return {outcome.verdict: outcome.reason or str(exc)}


def _control(farm: Farm, job_id: str, name: str) -> tuple[str, int, str | None]:
    """(the job's state, its generation, the piece's write lease) from the job's control entry, which the
    store writes with the record; from the record itself when it was written before control entries."""
    control = farm.store.live.control(job_id)
    if control:
        return control[STATE], int(control[GENERATION]), control.get(f"{LEASE}{name}")
    record = farm.store.get(job_id)
    return record.state, record.generation, record.task(name).lease


def _label(record: Record, name: str) -> str:
    """The metrics' kind of a piece: its job's kind, or its own for post-queue pieces (the stitch)."""
    piece = record.task(name)
    return piece.kind if piece.placement.pool == "post" else record.kind
