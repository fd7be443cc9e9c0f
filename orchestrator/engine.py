"""The engine: carries out what lifecycle transitions decide, by sending and revoking messages.

`advance` applies one transition to a job's record atomically and then acts on its outcome:
pieces that became ready are sent (each on its own queue, or on the node the transition
picked), messages nobody should run are revoked. The orchestrator's verbs and the tasks'
base class both go through it, so a piece is sent in one way only.

Note: a crash between the write and the send leaves a piece `pending` with no message; the
janitor finds it and sends it again. Sending twice is safe: a piece runs only for the
message id its record names, under its lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from orchestrator import kinds, routing
from orchestrator.farm import Farm
from orchestrator.lifecycle import Outcome, Send
from orchestrator.models import JobRecord

log = logging.getLogger(__name__)
Record = JobRecord[Any, Any]


def advance(farm: Farm, job_id: str, transition: Callable[[Record], Outcome]) -> tuple[Record, Outcome]:
    """Apply `transition` to the job and carry out its outcome; returns the record as written and the outcome."""
    record, outcome = farm.store.apply(job_id, transition)
    carry_out(farm, record, outcome)
    return record, outcome


def carry_out(farm: Farm, record: Record, outcome: Outcome) -> None:
    send(farm, record, outcome.send)
    if outcome.revoke:
        farm.app.control.revoke(outcome.revoke)


def send(farm: Farm, record: Record, sends: list[Send]) -> None:
    """Send each piece's current message: the piece's Celery task with (job, piece, generation)."""
    kind = kinds.get(record.kind)
    for item in sends:
        piece = record.task(item.piece)
        queue = routing.queue_for(piece.placement, item.node)
        farm.app.send_task(
            piece.task, args=(record.id, piece.name, record.generation), queue=queue, task_id=piece.celery_id,
            priority=record.priority, argsrepr=f"{kind.shown(record, piece)} | {queue}",
        )  # fmt: skip
        if item.node:
            log.info("%s of job %s sent to %s", piece.name, record.id, item.node)
