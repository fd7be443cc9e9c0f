"""The janitor: sends again the pieces that no message carries any more, and asks for due cleanups.

A message can be lost where no queue setting helps: a piece made ready while Redis was
down, a sender that died between writing the record and sending. The record knows every
piece that should be carried by a message; the broker knows every message that exists (its
queues, and the delivered-but-unacknowledged hash). A piece that is `pending`, or `running`
without a lock, with no message anywhere, gets a new message, by the same rule for every
kind; so does a piece left `running` without a lock by a node that is down, whose message
Redis would only hand out again after the visibility timeout. Sending a piece twice is safe:
only the message its record names may run it, under its lock.

A `waiting` job whose upstream job finished without releasing it (the process that finished it
died between its last write and the release) is released or cancelled here, from the records
alone (`engine.recheck_upstream`).

Cancelled jobs whose leftovers are due (`cancel_cleanup_delay` after the cancel) get a
`tasks.discard` message on the post queue, carrying the generation it may clean.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import redis

from orchestrator import engine, lifecycle, routing
from orchestrator.farm import Farm
from orchestrator.models import JobRecord, TaskRecord
from orchestrator.settings import VERSION_KEY
from orchestrator.store import CLEANUP, JobNotFound

log = logging.getLogger(__name__)
UNACKED = "unacked"  # kombu's Redis transport keeps delivered, unacknowledged messages here
DISCARD = "tasks.discard"
CLEANUP_RETRY = 60.0  # seconds before a cleanup whose message was lost is asked for again


def in_flight(client: redis.Redis) -> set[str]:
    """Ids of every task message waiting in a queue or delivered and not yet acknowledged."""
    ids: set[str] = set()
    for key in client.scan_iter(f"v{VERSION_KEY}.*"):
        if client.type(key) == "list":
            for raw in client.lrange(key, 0, -1):
                ids.add(str(json.loads(raw).get("headers", {}).get("id", "")))
    for raw in client.hvals(UNACKED):
        message = json.loads(raw)[0]
        ids.add(str(message.get("headers", {}).get("id", "")))
    return ids


def _orphaned(
    farm: Farm, record: JobRecord[Any, Any], piece: TaskRecord, flying: set[str], down: set[str], grace: float
) -> bool:
    """No live worker will ever finish this piece: no message carries it, or it ran on a node that is down.

    Note: the message of a piece whose host died stays delivered-but-unacknowledged until the
    visibility timeout (hours, above the longest render); its lapsed lock and its silent node
    say sooner that nobody works on it.
    """
    if piece.state not in ("pending", "running") or farm.locks.holder(record.id, piece.name):
        return False
    if piece.celery_id in flying and not (piece.state == "running" and piece.node in down):
        return False
    since = piece.started_at or record.started_at or record.created_at
    return time.time() - since > grace


def sweep(farm: Farm, grace: float | None = None) -> list[str]:
    """Send again every orphaned piece of every unfinished job; returns what was sent."""
    grace = grace if grace is not None else 3.0 * farm.settings.lock_ttl
    records = farm.store.active()
    flying = in_flight(farm.redis)  # read after the records: a message cannot slip between the two
    down = {n.name for n in farm.nodes.all() if not n.up}
    sent: list[str] = []
    for record in records:
        if record.state == "waiting":
            released = engine.recheck_upstream(farm, record)
            if released.state != "waiting":
                log.warning("janitor: job %s was left waiting on finished jobs: now %s", record.id, released.state)
            continue
        if record.finished or record.cancel_requested:
            continue
        for piece in record.tasks:
            if not _orphaned(farm, record, piece, flying, down, grace):
                continue
            _, outcome = engine.advance(farm, record.id, _resend(piece))
            if outcome.send:
                sent.append(f"{record.id}:{piece.name}")
                log.warning("janitor: %s of job %s had no message left; sent it again", piece.name, record.id)
    return sent


def _resend(piece: TaskRecord) -> Callable[[JobRecord[Any, Any]], lifecycle.Outcome]:
    return lambda record: lifecycle.resend(record, piece.name, piece.celery_id)


def ask_for_cleanups(farm: Farm, now: float | None = None) -> list[str]:
    """Send a discard for every cancelled job whose leftovers are due; returns the job ids."""
    now = now or time.time()
    asked = []
    for job_id in farm.store.cleanup_due(now):
        try:
            record, outcome = farm.store.apply(job_id, lambda rec: lifecycle.postpone_cleanup(rec, now + CLEANUP_RETRY))
        except JobNotFound:
            farm.redis.zrem(CLEANUP, job_id)
            continue
        if outcome.verdict == "skip":
            continue
        farm.app.send_task(DISCARD, args=(job_id, record.generation), queue=routing.POST, task_id=uuid.uuid4().hex,
                           argsrepr=f"job {job_id} | discard generation {record.generation}")  # fmt: skip
        asked.append(job_id)
    return asked
