"""`discard`: remove what a cancelled job left on storage, when its cleanup is due.

The janitor sends it `cancel_cleanup_delay` after the cancel, with the job's generation then.
The lifecycle's `discard` decides first: only a job still cancelled at that generation is
touched (a retry meanwhile started the next generation, whose pieces and the ones it kept
stay). Then what the job's kind says those generations left goes (`JobKind.leftovers`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
from typing import Any

from celery import Task, shared_task

from orchestrator import kinds, lifecycle
from orchestrator.store import JobNotFound
from tasks.runtime import runtime


@shared_task(bind=True, name="tasks.discard", acks_late=True, max_retries=None)
def discard(self: Task, job_id: str, generation: int) -> dict[str, Any]:
    """Remove a cancelled generation's leftovers (on the post queue: post workers see the storage)."""
    farm = runtime.farm()
    try:
        record, outcome = farm.store.apply(job_id, lambda rec: lifecycle.discard(rec, generation))
    except JobNotFound:
        return {"skipped": f"no job {job_id}"}
    if outcome.verdict != "discard":
        return {"skipped": outcome.reason}
    leftovers = kinds.get(record.kind).leftovers(record, generation)
    removed: list[str] = []
    for pattern in leftovers.remove:
        for path in glob.glob(pattern):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            removed.append(path)
    for folder in leftovers.if_empty:
        with contextlib.suppress(OSError):  # not empty (a retry has started writing), or gone already
            os.rmdir(folder)
    return {"removed": removed}
