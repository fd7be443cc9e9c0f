"""The engine: carries out what lifecycle transitions decide, by sending and revoking messages.

`advance` applies one transition to a job's record atomically and then acts on its outcome:
pieces that became ready are sent (each on its own queue, or on the node the transition
picked), messages nobody should run are revoked. The orchestrator's verbs and the tasks'
base class both go through it, so a piece is sent in one way only.

A job that ends releases the jobs waiting for it (`release_dependents`), right after its last
transition: each is queued (its ready pieces sent) once every job it runs after succeeded, or
cancelled saying which job failed and why.

Note: a crash between the write and the send leaves a piece `pending` with no message; the
janitor finds it and sends it again. Sending twice is safe: a piece runs only for the
message id its record names, under its lock. Likewise a crash between a job's last write and
the release of what waits for it: the janitor releases them (`recheck_upstream`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from orchestrator import kinds, lifecycle, routing, telemetry
from orchestrator.farm import Farm
from orchestrator.lifecycle import Outcome, Send
from orchestrator.models import FINISHED, JobRecord
from orchestrator.store import JobNotFound

log = logging.getLogger(__name__)
Record = JobRecord[Any, Any]


def advance(farm: Farm, job_id: str, transition: Callable[[Record], Outcome]) -> tuple[Record, Outcome]:
    """Apply `transition` to the job and carry out its outcome; returns the record as written and the outcome."""
    record, outcome = farm.store.apply(job_id, transition)
    carry_out(farm, record, outcome)
    if record.finished:
        release_dependents(farm, record)
    return record, outcome


def carry_out(farm: Farm, record: Record, outcome: Outcome) -> None:
    send(farm, record, outcome.send)
    if outcome.revoke:
        farm.app.control.revoke(outcome.revoke)


def send(farm: Farm, record: Record, sends: list[Send]) -> None:
    """Send each piece's current message: the piece's Celery task with (job, piece, generation), in the job's trace."""
    kind = kinds.get(record.kind)
    for item in sends:
        piece = record.task(item.piece)
        queue = routing.queue_for(piece.placement, item.node)
        with telemetry.within(record.trace):  # in the job's trace, whoever sends it
            farm.app.send_task(
                piece.task, args=(record.id, piece.name, record.generation), queue=queue, task_id=piece.celery_id,
                priority=record.priority, argsrepr=f"{kind.shown(record, piece)} | {queue}",
                headers=dict(record.trace),  # a traced sender replaces it with its own span's context
            )  # fmt: skip
        if item.node:
            log.info("%s of job %s sent to %s", piece.name, record.id, item.node)


def _told(upstream: str, state: str, why: str, cleanup_after: float) -> Callable[[Record], Outcome]:
    return lambda rec: lifecycle.upstream_finished(rec, upstream, state, why, cleanup_after)


def release_dependents(farm: Farm, record: Record) -> list[str]:
    """Tell every job waiting for `record` (finished) how it ended; returns the ids of those released or cancelled.

    Note: runs after every transition that leaves a job finished, a late report included; the
    index it reads (`rf:jobs:waiting-on:<id>`) is empty again once they have been told.
    """
    told, tell = [], _told(record.id, record.state, "; ".join(record.errors), farm.settings.cancel_cleanup_delay)
    for dependent in farm.store.waiting_for(record.id):
        try:
            _, outcome = advance(farm, dependent, tell)
        except JobNotFound:
            farm.store.forget_waiting(record.id, dependent)
            continue
        if outcome.verdict != "skip":
            told.append(dependent)
            log.info("job %s: job %s %s (%s)", dependent, record.id, record.state, outcome.reason)
    return told


def recheck_upstream(farm: Farm, record: Record) -> Record:
    """Apply to a `waiting` job what the jobs it waits for have become meanwhile; the record as it is now.

    Note: closes the gap between reading an upstream job and writing the dependent's index
    (a submit, a retry), and catches a release lost with a process that died (the janitor).
    """
    for upstream in list(record.waiting_on):
        state: str
        try:
            seen = farm.store.get(upstream)
            state, why = seen.state, "; ".join(seen.errors)
        except JobNotFound:
            state, why = "gone", ""
        if state in FINISHED or state == "gone":
            record, _ = advance(farm, record.id, _told(upstream, state, why, farm.settings.cancel_cleanup_delay))
    return record
