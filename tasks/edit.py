"""`apply_edits`: a batch edit's operations on one timeline, on one Resolve host."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery import Task, shared_task
from pydantic import ValidationError

from bridge import BridgeError
from bridge.errors import CallTimeout, ConnectError, HelperDied
from orchestrator import metrics, routing
from orchestrator.models import EditSpec, JobRecord
from tasks.runtime import runtime

log = logging.getLogger(__name__)


def _settle(record: JobRecord) -> None:
    """Finish the job once every target has finished: failed if any failed."""
    if record.finished or any(t.state in ("pending", "running") for t in record.tasks):
        return
    record.state = "failed" if any(t.state == "failed" for t in record.tasks) else "succeeded"
    record.finished_at = time.time()
    record.errors = [f"{t.name}: {t.error}" for t in record.tasks if t.error]


@shared_task(bind=True, name="tasks.apply_edits", acks_late=True, time_limit=None)
def apply_edits(self: Task, job_id: str, name: str) -> dict[str, Any]:
    """Apply the job's operations to one target timeline; per-item results go into the record."""
    farm = runtime.farm()
    record = farm.store.get(job_id)
    piece = record.task(name)
    if record.finished or record.cancel_requested or piece.state == "done":
        return {"skipped": True}
    spec = EditSpec.model_validate(record.spec)
    target = piece.target or {}

    def start(rec: JobRecord) -> None:
        t = rec.task(name)
        t.state, t.node, t.attempts, t.started_at = "running", runtime.node, t.attempts + 1, time.time()
        if rec.state == "queued":
            rec.state, rec.started_at = "running", time.time()

    farm.store.update(job_id, start)
    try:
        session = runtime.session()
        database = target.get("database")
        db = (
            {"DbType": database["type"], "DbName": database["name"], "IpAddress": database["host"]}
            if database
            else None
        )
        drp = runtime.to_node(target["drp"]) if target.get("drp") else None
        session.open_project(target["project"], database=db, drp=drp)
        results = session.apply_edits(target["timeline"], spec.operations, dry_run=spec.dry_run)
        if not spec.dry_run and any(r["ok"] for r in results):
            session.save_project()
    except ValidationError as exc:
        # Refused before anything was touched: no point trying elsewhere.
        return _finish(job_id, name, "failed", [], f"invalid operations: {exc}")
    except BridgeError as exc:
        if isinstance(exc, (HelperDied, CallTimeout, ConnectError)):
            runtime.drop_session()
        attempts = farm.store.get(job_id).task(name).attempts
        retrying = attempts < int(record.plan.get("max_attempts", 1))
        metrics.record_failure(farm.redis, "edit", runtime.node, retried=retrying)
        if retrying:
            farm.store.update(job_id, lambda r: setattr(r.task(name), "state", "pending"))
            raise self.retry(
                countdown=0.5, queue=routing.resolve_queue("edit", spec.node, spec.tags), max_retries=None
            ) from exc
        return _finish(job_id, name, "failed", [], str(exc))
    failed = [r for r in results if not r["ok"]]
    error = f"{len(failed)} of {len(results)} item(s) refused" if failed else None
    return _finish(job_id, name, "done", results, error)


def _finish(job_id: str, name: str, state: str, results: list[dict[str, Any]], error: str | None) -> dict[str, Any]:
    def finish(rec: JobRecord) -> None:
        t = rec.task(name)
        t.state, t.finished_at, t.results, t.error = state, time.time(), results, error  # type: ignore[assignment]
        _settle(rec)

    runtime.farm().store.update(job_id, finish)
    return {"state": state, "items": len(results), "error": error}
