"""`stitch`: join a render's segments into the final file, verify it, and only then show it.

A piece of the render kind that waits for every segment and the audio pass; runs on the
post queue. It decides how to join (`tasks.joinable.decide`: stream copy when the segments
form one stream, else encode again, with the reason recorded in its details). The final file
is written under a temporary name beside its destination and renamed into place after its
frame count (and audio length) match the plan and its content is proved (a copy: the
pieces' packets in frame order; a re-encode: the pieces' packets as read, then the output's
timestamps), so a partial or wrong file is never visible under the final name.
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

import redis
from celery import Task, shared_task

from orchestrator import metrics, telemetry
from orchestrator.kinds.render import RenderPlan
from orchestrator.models import JobRecord
from orchestrator.outputs import place
from tasks.base import PermanentFailure, PieceResult, PieceRun, PieceTask
from tasks.join import join_copy, join_reencode
from tasks.joinable import JoinDecision, decide
from tasks.proof import Mismatch, check_copy, check_timing, describe
from tasks.render import clear_work
from tasks.runtime import runtime

log = logging.getLogger(__name__)


class StitchError(Exception):
    """The joined file does not match the plan."""


class ContentMismatch(StitchError, PermanentFailure):
    """The joined file is not the pieces' pictures in frame order: its packets (or, for a re-encode, the
    segments read) are not the pieces' packets, or its timestamps do not run evenly from start to end.

    Note: permanent: the segments on disk differ from what their pieces rendered, and joining
    them again would make the same wrong file.
    """


def partial_name(final: Path, job_id: str, generation: int) -> Path:
    """The temporary file a generation's stitch writes beside the final one."""
    return final.with_name(f".{final.stem}.{job_id}.g{generation}.partial{final.suffix}")


class StitchPiece(PieceTask):
    """Joins the done pieces of a render in frame order; removes the job's segments once it succeeded."""

    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        started = time.monotonic()
        final, how = _join(run.record, runtime.farm().redis)
        details = stitch_details(how, time.monotonic() - started)
        if final != Path(run.record.plan.output + final.suffix):  # the name was taken meanwhile: never replaced
            details["renamed"] = f"{Path(run.record.plan.output).name}{final.suffix} existed; written as {final.name}"
        return PieceResult(output=str(final), details=details)

    def after_done(self, run: PieceRun, result: PieceResult, record: JobRecord[Any, Any]) -> None:
        if record.state == "succeeded":
            metrics.record_stitch(runtime.farm().redis, float(result.details["seconds"]))

    def after_job(self, record: JobRecord[Any, Any]) -> None:
        clear_work(record)

    def after_stale(self, run: PieceRun, result: PieceResult, record: JobRecord[Any, Any]) -> None:
        # Cancelled while joining: the job does not want this file. A job that succeeded meanwhile
        # (another copy stitched it) keeps the file under its name: it is that copy's output too,
        # unless this copy found the name taken (by the other's file) and wrote a version of it.
        if result.output and (record.state != "succeeded" or result.output not in record.outputs):
            with contextlib.suppress(FileNotFoundError):
                Path(result.output).unlink()


def stitch_details(how: JoinDecision, seconds: float) -> dict[str, Any]:
    """What the stitch records in its details: its time, how it joined (`stitch`) and why it re-encoded (`reason`)."""
    details: dict[str, Any] = {"seconds": round(seconds, 3), "stitch": how.method}
    if how.reason:
        details["reason"] = how.reason
    return details


def _join(record: JobRecord[Any, Any], client: redis.Redis | None = None) -> tuple[Path, JoinDecision]:
    """Join the record's pieces into its output, put in place without replacing a file of another's
    (`orchestrator.outputs.place`; `client`: the farm's Redis, where what a job placed is kept); where it
    went and how it was joined."""
    plan: RenderPlan = record.plan
    stitch = next(t for t in record.tasks if t.kind == "stitch")
    waited = [record.task(name) for name in stitch.after]
    pieces = sorted((t for t in waited if t.kind in ("segment", "render")), key=lambda t: t.start or 0)  # frame order
    audio = next((t.output for t in waited if t.kind == "audio"), None)
    files = [str(t.output) for t in pieces]
    ext = Path(files[0]).suffix
    final = Path(plan.output + ext)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = partial_name(final, record.id, record.generation)
    digests = [(t.name, t.details["video"]) for t in pieces if "video" in t.details]
    if plan.stitch != "move" and len(digests) != len(pieces):
        raise StitchError("a piece finished without the packet digest the stitch proves the joined file by")
    how = _how(record, digests)
    log.info("joining %d file(s) by %s%s", len(files), how.method, f": {how.reason}" if how.reason else "")
    try:
        with telemetry.span(f"join by {how.method}", files=len(files), frames=plan.frames.count):
            _write(plan, how, files, audio, temp, digests)
        with telemetry.span("place output", overwrite=plan.overwrite):
            placed = place(temp, final, plan.overwrite, client, record.id)  # the name only shows a verified file
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()  # a full disk, a failed check or a refused rename leaves not even the temporary file
        raise
    if placed != final:
        log.warning("%s appeared after job %s was submitted: the render is %s", final, record.id, placed.name)
    return placed, how


def _how(record: JobRecord[Any, Any], digests: list[tuple[str, dict[str, Any]]]) -> JoinDecision:
    """Move a single piece; stream copy when the plan allows it and the pieces form one stream; else re-encode."""
    plan: RenderPlan = record.plan
    if plan.stitch == "move":
        return JoinDecision("move")
    if plan.stitch == "reencode":
        spec = record.spec
        return JoinDecision(
            "reencode", f"{spec.codec_key} in {spec.format_key} is not known to join losslessly by stream copy"
        )
    return decide(digests)


def _write(plan: RenderPlan, how: JoinDecision, files: list[str], audio: str | None, temp: Path,
           digests: list[tuple[str, dict[str, Any]]]) -> None:  # fmt: skip
    """Join into `temp` and check it against the plan and the pieces."""
    expected = plan.frames.count
    try:
        if how.method == "move":
            shutil.copyfile(files[0], temp) if _other_device(files[0], temp.parent) else os.link(files[0], temp)
            found = describe(str(temp))
        elif how.method == "copy":
            join_copy(files, audio, str(temp))
            with telemetry.span("proof of joined file", pieces=len(digests)):
                found = check_copy(str(temp), digests)  # the proof's read also counts what the file holds
        else:
            rate = Fraction(plan.fps).limit_denominator(1001) if plan.fps else None
            join_reencode(files, audio, str(temp), rate, digests)
            check_timing(str(temp))
            found = describe(str(temp))
    except Mismatch as exc:
        raise ContentMismatch(str(exc)) from None
    log.info("joined %d file(s) by %s: %d frames (plan %d), audio %.3fs", len(files), how.method, found["frames"],
             expected, float(found["audio_seconds"] or 0))  # fmt: skip
    if found["frames"] != expected:
        raise StitchError(f"the joined file holds {found['frames']} frames; the plan has {expected}")
    if plan.audio and plan.fps:
        want = expected / float(plan.fps)
        if abs(float(found["audio_seconds"]) - want) > 2.0 / float(plan.fps) + 0.05:
            raise StitchError(f"the joined file holds {found['audio_seconds']:.3f}s of audio; {want:.3f}s expected")


def _other_device(path: str, folder: Path) -> bool:
    return os.stat(path).st_dev != os.stat(folder).st_dev


@shared_task(bind=True, base=StitchPiece, name="tasks.stitch")
def stitch(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Join, verify and publish a render job's output, once every segment and the audio are done."""
    return self.run_piece(job_id, name, generation)
