"""Progress from a running render: into the job record, out as a Celery event, and back as cancel."""

from __future__ import annotations

import threading
import time
from typing import Any

from celery import Task

from orchestrator.models import JobRecord
from orchestrator.store import JobStore
from tasks.runtime import runtime


class Reporter:
    """The bridge's progress callback for one task of one job.

    Note: throttled to one record write per `progress_interval`; each write also reads the
    job's cancel flag, so a cancel reaches a running render within that interval.
    """

    def __init__(self, task: Task, job_id: str, name: str) -> None:
        self.task = task
        self.job_id = job_id
        self.name = name
        self.cancel = threading.Event()
        self._last = 0.0

    def __call__(self, done: int, total: int, status: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last < runtime.settings.progress_interval and done < total:
            return
        self._last = now
        farm = runtime.farm()

        def report(record: JobRecord) -> None:
            task = record.task(self.name)
            task.frames_done = max(task.frames_done, done)
            task.frames_total = total or task.frames_total
            if record.cancel_requested or record.finished:
                self.cancel.set()

        record = farm.store.update(self.job_id, report)
        self.task.send_event(
            "task-progress", job_id=self.job_id, task=self.name, node=runtime.node,
            frames_done=done, frames_total=total, job_progress=round(record.progress, 1),
        )  # fmt: skip

    @property
    def owner(self) -> str:
        return f"{runtime.node}:{self.task.request.id}"


class LockKeeper:
    """Keeps a task's lock alive from a thread while the task runs.

    Note: the lock's short TTL is what lets a redelivered copy take over soon after a
    worker dies; the keeper is what stops it lapsing under a live one.
    """

    def __init__(self, store: JobStore, job_id: str, name: str, owner: str, ttl: int) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, args=(store, job_id, name, owner, ttl), name="lock-keeper", daemon=True
        )
        self._thread.start()

    def _keep(self, store: JobStore, job_id: str, name: str, owner: str, ttl: int) -> None:
        while not self._stop.wait(ttl / 3):
            store.extend(job_id, name, owner, ttl)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
