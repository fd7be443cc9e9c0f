"""The janitor: finds pieces of unfinished jobs that no message carries any more, and sends them again.

A message can be lost where no queue setting helps: a retry sent while Redis was down, a
chord count lost in a restart. The job record knows every piece that should exist; the
broker knows every message that does (its queues, and the delivered-but-unacknowledged
hash). A piece that is pending or "running" without a lock, with no message anywhere, is
sent again. Sending a piece twice is safe: its lock and the record make the second copy a
no-op.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

import redis

from orchestrator import routing
from orchestrator.farm import Farm
from orchestrator.models import EditSpec, JobRecord, RenderSpec, TaskRecord
from orchestrator.settings import VERSION_KEY

log = logging.getLogger(__name__)
UNACKED = "unacked"  # kombu's Redis transport keeps delivered, unacknowledged messages here
NAMES = {"segment": "tasks.render_segment", "render": "tasks.render_segment", "audio": "tasks.render_audio",
         "edit": "tasks.apply_edits", "stitch": "tasks.stitch"}  # fmt: skip


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


def _orphaned(farm: Farm, record: JobRecord, task: TaskRecord, flying: set[str], grace: float) -> bool:
    if task.celery_id in flying or farm.store.holder(record.id, task.name):
        return False
    if task.kind == "stitch":
        pieces = [t for t in record.tasks if t.kind != "stitch"]
        return task.state in ("pending", "running") and all(t.state == "done" for t in pieces)
    since = task.started_at or record.created_at
    return task.state in ("pending", "running") and time.time() - since > grace


def sweep(farm: Farm, grace: float | None = None) -> list[str]:
    """Send again every orphaned piece of every unfinished job; returns what was sent."""
    grace = grace if grace is not None else 3.0 * farm.settings.lock_ttl
    records = farm.store.list(limit=100_000)
    flying = in_flight(farm.redis)  # read after the records: a message cannot slip between the two
    sent: list[str] = []
    for record in records:
        if record.finished or record.cancel_requested:
            continue
        for task in record.tasks:
            if not _orphaned(farm, record, task, flying, grace):
                continue
            new_id = uuid.uuid4().hex

            def renew(rec: JobRecord, name: str = task.name, celery_id: str = new_id) -> None:
                rec.task(name).celery_id = celery_id

            farm.store.update(record.id, renew)
            args: tuple[object, ...] = ([], record.id) if task.kind == "stitch" else (record.id, task.name)
            farm.app.send_task(NAMES[task.kind], args=args, queue=_queue(record, task), task_id=new_id)
            sent.append(f"{record.id}:{task.name}")
            log.warning("janitor: %s of job %s had no message left; sent it again", task.name, record.id)
    return sent


def _queue(record: JobRecord, task: TaskRecord) -> str:
    if task.kind == "stitch":
        return routing.POST
    if record.kind == "edit":
        edit = EditSpec.model_validate(record.spec)
        return routing.resolve_queue("edit", edit.node, edit.tags)
    render = RenderSpec.model_validate(record.spec)
    return routing.resolve_queue("render", render.node, render.tags)
