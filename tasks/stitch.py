"""`stitch`: join a job's segments into the final file, verify it, and only then show it.

Runs on the post queue. The final file is written under a temporary name beside its
destination and renamed into place after its frame count (and audio length) match the
plan, so a partial or wrong file is never visible under the final name.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from orchestrator import metrics
from orchestrator.models import JobRecord
from tasks.join import describe, join_copy, join_reencode
from tasks.progress import LockKeeper
from tasks.runtime import runtime

log = logging.getLogger(__name__)
WAIT_FOR_PIECES = 1.0  # seconds between checks while a redelivered piece still runs


class StitchError(Exception):
    """The joined file does not match the plan."""


def _pieces_ready(record: JobRecord) -> bool | None:
    """True when every piece is done, False while some still run, None when the job cannot finish."""
    pieces = [t for t in record.tasks if t.kind != "stitch"]
    if any(t.state in ("failed", "cancelled") for t in pieces):
        return None
    return all(t.state == "done" for t in pieces)


@shared_task(bind=True, name="tasks.stitch", acks_late=True, max_retries=None)
def stitch(self: Task, results: Any, job_id: str) -> dict[str, Any]:
    """Join, verify and publish a render job's output (the chord's body; `results` unused)."""
    farm = runtime.farm()
    record = farm.store.get(job_id)
    if record.finished or record.cancel_requested:
        return {"skipped": record.state}
    ready = _pieces_ready(record)
    if ready is None:
        return {"skipped": "a piece failed"}
    if not ready:
        # The chord fired early (a redelivered piece reported twice): wait for the record.
        raise self.retry(countdown=WAIT_FOR_PIECES)
    owner = f"{runtime.node}:{self.request.id}"
    ttl = runtime.settings.lock_ttl
    if not farm.store.acquire(job_id, "stitch", owner, ttl):
        raise self.retry(countdown=max(1, ttl // 2))  # another copy stitches; look again later
    if farm.store.get(job_id).finished:  # another copy finished while this one waited for the lock
        farm.store.release(job_id, "stitch", owner)
        return {"skipped": "done by another copy"}
    keeper = LockKeeper(farm.store, job_id, "stitch", owner, ttl)
    started = time.monotonic()
    try:

        def begin(rec: JobRecord) -> None:
            t = rec.task("stitch")
            t.state, t.node, t.started_at = "running", runtime.node, time.time()
            t.attempts += 1
            if not rec.finished:
                rec.state = "stitching"

        record = farm.store.update(job_id, begin)
        final = _join(record)
        seconds = time.monotonic() - started

        def succeed(rec: JobRecord) -> None:
            t = rec.task("stitch")
            t.state, t.finished_at, t.output = "done", time.time(), str(final)
            if not rec.finished:
                rec.state, rec.finished_at, rec.outputs = "succeeded", time.time(), [str(final)]
                rec.plan["stitch_seconds"] = round(seconds, 3)

        record = farm.store.update(job_id, succeed)
        if record.state != "succeeded":  # cancelled while joining: take the file back
            with contextlib.suppress(FileNotFoundError):
                final.unlink()
            return {"skipped": record.state}
        shutil.rmtree(record.plan["work_dir"], ignore_errors=True)
        metrics.record_stitch(farm.redis, seconds)
        return {"output": str(final), "seconds": round(seconds, 3)}
    except Exception as exc:  # _join has removed its temporary file already
        return _failed(self, job_id, exc)
    finally:
        keeper.stop()
        farm.store.release(job_id, "stitch", owner)


def _join(record: JobRecord) -> Path:
    plan = record.plan
    pieces = [t for t in record.tasks if t.kind in ("segment", "render")]
    audio = next((t.output for t in record.tasks if t.kind == "audio"), None)
    files = [str(t.output) for t in pieces]
    ext = Path(files[0]).suffix
    final = Path(plan["output"] + ext)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = final.with_name(f".{final.stem}.{record.id}.partial{ext}")
    expected = int(plan["frames"]["count"])
    try:
        _write(plan, files, audio, temp, expected)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # a full disk or a failed check leaves nothing behind, not even the temporary file
        raise
    os.replace(temp, final)  # atomic: the final name only ever shows a verified file
    return final


def _write(plan: dict[str, Any], files: list[str], audio: str | None, temp: Path, expected: int) -> None:
    """Join into `temp` and check it against the plan."""
    if plan["stitch"] == "move":
        shutil.copyfile(files[0], temp) if _other_device(files[0], temp.parent) else os.link(files[0], temp)
    elif plan["stitch"] == "copy":
        join_copy(files, audio, str(temp))
    else:
        rate = Fraction(plan["fps"]).limit_denominator(1001) if plan.get("fps") else None
        join_reencode(files, audio, str(temp), rate)
    found = describe(str(temp))
    if found["frames"] != expected:
        raise StitchError(f"the joined file holds {found['frames']} frames; the plan has {expected}")
    if plan.get("audio") and plan.get("fps"):
        want = expected / float(plan["fps"])
        if abs(float(found["audio_seconds"]) - want) > 2.0 / float(plan["fps"]) + 0.05:
            raise StitchError(f"the joined file holds {found['audio_seconds']:.3f}s of audio; {want:.3f}s expected")


def _other_device(path: str, folder: Path) -> bool:
    return os.stat(path).st_dev != os.stat(folder).st_dev


def _failed(task: Task, job_id: str, exc: BaseException) -> dict[str, Any]:
    reason = f"stitch failed on {runtime.node}: {exc}"
    log.warning(reason)

    def fail(rec: JobRecord) -> None:
        t = rec.task("stitch")
        if rec.finished:
            return  # a late copy: the job's outcome stands
        t.error = str(exc)
        if t.attempts >= int(rec.plan.get("max_attempts", 1)):
            t.state, t.finished_at = "failed", time.time()
            if not rec.finished:
                rec.state, rec.finished_at = "failed", time.time()
                rec.errors.append(reason)
        else:
            t.state = "pending"

    record = runtime.farm().store.update(job_id, fail)
    if record.finished:
        return {"skipped": record.state}
    gave_up = record.task("stitch").state == "failed"
    metrics.record_failure(runtime.farm().redis, "stitch", runtime.node, retried=not gave_up)
    if gave_up:
        return {"failed": reason}
    raise task.retry(countdown=1)


@shared_task(bind=True, name="tasks.discard", acks_late=True, max_retries=None)
def discard(self: Task, job_id: str) -> dict[str, Any]:
    """Remove what a cancelled job left on storage: its segments, audio and any partial output.

    Note: runs on the post queue (post workers see the storage); waits until none of the
    job's tasks is running, so nothing is written after it has cleaned.
    """
    record = runtime.farm().store.get(job_id)
    if any(t.state == "running" for t in record.tasks):
        raise self.retry(countdown=WAIT_FOR_PIECES)
    if record.plan.get("work_dir"):
        shutil.rmtree(record.plan["work_dir"], ignore_errors=True)
    output = Path(record.plan["output"]) if record.plan.get("output") else None
    removed = []
    if output is not None:
        for partial in output.parent.glob(f".{output.name}.{job_id}.partial*"):
            partial.unlink(missing_ok=True)
            removed.append(str(partial))
    return {"removed": removed, "work_dir": record.plan.get("work_dir")}
