"""`discard`: remove what a cancelled job left on storage, when its cleanup is due.

The janitor sends it `cancel_cleanup_delay` after the cancel, with the job's generation then.
The lifecycle's `discard` decides first: only a job still cancelled at that generation is
touched (a retry meanwhile started the next generation, whose pieces and the ones it kept
stay). Then the generation folders up to it and the partial outputs of those generations go.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from orchestrator import lifecycle
from orchestrator.store import JobNotFound
from tasks.runtime import runtime


@shared_task(bind=True, name="tasks.discard", acks_late=True, max_retries=None)
def discard(self: Task, job_id: str, generation: int) -> dict[str, Any]:
    """Remove a cancelled generation's segments, audio and partial output (post queue: it sees the storage)."""
    farm = runtime.farm()
    try:
        record, outcome = farm.store.apply(job_id, lambda rec: lifecycle.discard(rec, generation))
    except JobNotFound:
        return {"skipped": f"no job {job_id}"}
    if outcome.verdict != "discard":
        return {"skipped": outcome.reason}
    plan = record.plan
    removed: list[str] = []
    work_dir = Path(plan.work_dir) if getattr(plan, "work_dir", None) else None
    if work_dir is not None and work_dir.exists():
        for folder in work_dir.glob("g*"):
            if folder.name[1:].isdigit() and int(folder.name[1:]) <= generation:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(str(folder))
        with contextlib.suppress(OSError):  # not empty: a retry has started writing its own generation
            work_dir.rmdir()
    output = Path(plan.output) if getattr(plan, "output", None) else None
    if output is not None:
        for partial in output.parent.glob(f".{output.name}.{job_id}.g*.partial*"):
            partial.unlink(missing_ok=True)
            removed.append(str(partial))
    return {"removed": removed}
