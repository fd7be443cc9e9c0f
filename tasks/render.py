"""`render_segment` and `render_audio`: one piece of a render job on one Resolve host.

Each attempt renders under a name of its own, in the folder of the job's current
generation, and is renamed into place only when complete, verified and still this copy's:
a partial file never shows under the piece's name, and a worker cut off from Redis can
never delete or replace what another node made meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from bridge import BridgeError
from bridge.errors import RenderCancelled
from orchestrator import metrics, telemetry
from orchestrator.kinds.render import RenderSpec
from orchestrator.models import JobRecord
from orchestrator.pull.costs import BIN, StretchClock
from orchestrator.pull.fit import spread
from orchestrator.pull.sizing import AUDIO_KEY
from tasks.base import PieceResult, PieceRun, Superseded
from tasks.progress import Reporter
from tasks.proof import video_digest
from tasks.resolve import PUBLISHED_KEPT, SESSION_LOST, ResolvePiece, publish_content, reading
from tasks.runtime import runtime

log = logging.getLogger(__name__)


def generation_dir(work_dir: str, generation: int) -> Path:
    """Where a generation's pieces are written: a cleanup of one generation never touches the next's."""
    return Path(work_dir) / f"g{generation}"


_looked: dict[tuple[str, int], None] = {}  # (job, generation): decided whether to publish before a claim here
WALKED = "rf:content-walked"  # "<job>:<generation>:<node>": the walk before a claim was begun there once


class RenderPiece(ResolvePiece):
    """Renders a piece's frame range (video only, or the whole range in one pass) through the bridge."""

    abstract = True
    audio_only = False

    def prepare(self, job_id: str, name: str, generation: int) -> None:
        """Before this host's first claim of a pulled render's frames, publish what is on its timeline, so that
        even the first round's pieces are sized by what their frames show (`CostBook.steps`).

        Note: the walk is the one the render makes anyway (`publish_content`: once per render
        and host), made before the claim instead of after it. It is begun once per render and
        host (`WALKED`): a walk that hangs and takes the worker with it is not tried again
        before a claim, so the render's own walk meets the hang with its attempt counted and
        the piece fails over. A failure here (a soft time limit included) is left to the
        render, which opens the project again and fails as any render does.
        """
        if self.audio_only or (job_id, generation) in _looked:
            return
        _looked[job_id, generation] = None
        while len(_looked) > PUBLISHED_KEPT:
            del _looked[next(iter(_looked))]
        farm = runtime.farm()
        record = farm.store.get(job_id)
        piece = next((t for t in record.tasks if t.name == name), None)
        if not record.plan.pulled or piece is None or piece.kind != "segment":
            return
        if not farm.redis.set(f"{WALKED}:{job_id}:{generation}:{runtime.node}", "1", nx=True,
                              ex=farm.settings.job_retention):  # fmt: skip
            return
        spec: RenderSpec = record.spec
        # A soft time limit too: raised from here, before the claim, it would leave the message
        # unacknowledged until the broker's visibility timeout, the piece never claimed.
        caught: tuple[type[BaseException], ...] = (BridgeError, *self.hung_errors)
        try:
            with reading(spec):
                publish_content(spec, spec.timeline, once_for=(job_id, generation))
        except caught as exc:
            log.warning("node %s could not publish %s of %s before its claim: %s", runtime.node, spec.timeline,
                        spec.project, exc)  # fmt: skip
            if isinstance(exc, SESSION_LOST):
                runtime.drop_session()

    def perform(self, run: PieceRun) -> PieceResult:
        spec: RenderSpec = run.record.spec
        piece = run.piece
        assert piece.output is not None and piece.start is not None and piece.end is not None
        planned = Path(piece.output)
        folder = generation_dir(run.record.plan.work_dir, run.record.generation)
        output = folder / planned.name
        reporter = Reporter(run.task, run.job_id, piece.name, run.record.generation, piece.attempts)
        reporter.clock = None if self.audio_only else StretchClock(piece.start)
        fingerprint = ""
        attempt = f"{output.stem}.{str(run.task.request.id)[:8]}-{piece.attempts}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fmt, codec, preset = self._format(spec)
            with reading(spec):
                fingerprint = publish_content(spec, spec.timeline, once_for=(run.job_id, run.record.generation))
                result = runtime.session().render(
                    spec.timeline, piece.start, piece.end, runtime.to_node(str(folder)), attempt, format=fmt,
                    codec=codec, preset=preset, settings=self._settings(spec, single=piece.kind == "render"),
                    progress=reporter, cancel=reporter.cancel,
                )  # fmt: skip
            fps, start_seconds = reporter.speed(piece.end - piece.start + 1, time.monotonic())
            fps, firm, unsteady = self._learn(run, reporter, fps, fingerprint)
            rendered = Path(runtime.from_node(result.outputs[0]))
            frames = piece.end - piece.start + 1
            digest = None if self.audio_only else _check_range(rendered, frames)
            if runtime.farm().locks.holder(run.job_id, piece.name) != run.owner:
                raise Superseded(
                    f"{piece.name} of job {run.job_id} was taken over by another node while {runtime.node} rendered it"
                )
            made = str(output.with_suffix(rendered.suffix))
            os.replace(rendered, made)
        except RenderCancelled:
            _remove_attempt(folder, attempt)
            measured = reporter.speed_so_far()
            if measured and not self.audio_only and run.record.plan.speed_key:  # a slow node stopped is still slow
                fps, firm, unsteady = self._learn(run, reporter, measured[0], fingerprint)
                runtime.farm().speeds.record(runtime.node, run.record.plan.speed_key, fps, measured[1], firm, unsteady)
            raise reporter.stopped("stopped in Resolve") from None
        except BaseException:
            _remove_attempt(folder, attempt)
            raise
        if not self.audio_only:
            metrics.record_render(runtime.farm().redis, runtime.node, frames, result.seconds)
        details: dict[str, Any] = {"seconds": round(result.seconds, 3), "range": f"{piece.start}..{piece.end}",
                                   "fps": round(fps, 3), "start_seconds": round(start_seconds, 3),
                                   "firm": firm}  # fmt: skip
        if unsteady is not None:
            details["spread"] = round(unsteady, 4)
        if digest is not None:
            details["video"] = digest  # what the stitch proves the joined file holds for this piece
        return PieceResult(output=made, frames=0 if self.audio_only else frames, details=details)

    def after_done(self, run: PieceRun, result: PieceResult, record: JobRecord[Any, Any]) -> None:
        fps = result.details.get("fps")
        if fps and record.plan.speed_key:
            key = record.plan.speed_key + (AUDIO_KEY if self.audio_only else "")
            firm = bool(result.details.get("firm", True))
            runtime.farm().speeds.record(runtime.node, key, fps, result.details["start_seconds"], firm,
                                         result.details.get("spread"))  # fmt: skip

    def after_job(self, record: JobRecord[Any, Any]) -> None:
        # A tail copy settling after the stitch (done second, stopped, lost) is what succeeds the job then.
        clear_work(record)

    def _learn(
        self, run: PieceRun, reporter: Reporter, fps: float, fingerprint: str
    ) -> tuple[float, bool, float | None]:
        """Tell the farm how long each stretch this render went through took here (of the timeline's content
        with `fingerprint`), fit the timeline's costs and the nodes' speeds to all it was told so far
        (`CostBook.settle`, which shares the costs out to the looks on the timeline), and settle the speeds;
        return this node's speed (work per second; `fps` is its frames per second), whether it is firm
        (`SpeedBook`), and how unsteady this render was against the fit (`orchestrator.pull.fit.spread`).

        Note: a heavy stretch is told from a slow node only by setting nodes against each other
        where their pieces met and stretches against each other on one node: one render alone
        tells neither, so every node's speed may change after any node's piece.
        """
        plan, farm, clock = run.record.plan, runtime.farm(), reporter.clock
        if self.audio_only or not plan.cost_key or clock is None or not clock.times:
            return fps, True, None
        spec: RenderSpec = run.record.spec
        farm.costs.observe(plan.cost_key, runtime.node, clock.times, fingerprint)
        content = farm.catalog.content(spec.database.name if spec.database else None, spec.project, spec.timeline)
        fitted = farm.costs.settle(plan.cost_key, farm.speeds.firm_speeds(plan.speed_key), content)
        farm.speeds.settle(plan.speed_key, fitted.speeds, fitted.firm)
        unsteady = spread(fitted, runtime.node, clock.times, BIN)
        return fitted.speeds.get(runtime.node, fps), runtime.node in fitted.firm, unsteady

    def _format(self, spec: RenderSpec) -> tuple[str | None, str | None, str | None]:
        if self.audio_only:
            # MXF cannot hold audio alone: the audio pass renders PCM in QuickTime (AAC in MP4),
            # and the stitch copies it into the final container.
            return ("mp4", "H264", None) if spec.format_key == "mp4" else ("mov", "ProRes422HQ", None)
        return spec.format_key, spec.codec_key, spec.preset

    def _settings(self, spec: RenderSpec, single: bool) -> dict[str, Any]:
        settings: dict[str, Any] = dict(spec.settings)
        settings["ExportVideo"] = not self.audio_only
        settings["ExportAudio"] = self.audio_only or (single and spec.audio)
        return settings


class AudioPiece(RenderPiece):
    """The audio pass: the whole range, sound only, muxed in at the stitch."""

    abstract = True
    audio_only = True


def clear_work(record: JobRecord[Any, Any]) -> None:
    """Remove a render job's work folder (its segments and audio) once it succeeded.

    Note: called by whichever piece's transition finished the job (`PieceTask.after_job`): the
    stitch's, or a tail copy's that was still running when the stitch was done.
    """
    if record.state == "succeeded" and record.plan.work_dir:
        shutil.rmtree(record.plan.work_dir, ignore_errors=True)


def _check_range(rendered: Path, frames: int) -> dict[str, Any]:
    """The piece's file against its planned range: one video packet per frame, each later than the last.

    Returns the digest the stitch compares the joined file with.
    """
    with telemetry.span("proof of piece", frames=frames) as proving:
        digest = video_digest(str(rendered))
        proving.set_attribute("resolve_farm.packets", digest["packets"])
    if digest["packets"] != frames:
        raise BridgeError(f"{rendered} holds {digest['packets']} frames, {frames} were asked for")
    return digest


def _remove_attempt(folder: Path, attempt: str) -> None:
    """Delete what this attempt wrote (and nothing of any other attempt)."""
    for path in folder.glob(f"{attempt}.*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@shared_task(bind=True, base=RenderPiece, name="tasks.render_segment", default_retry_delay=1)
def render_segment(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Render one segment (video only), or the whole range in one pass for unsplit jobs."""
    return self.run_piece(job_id, name, generation)


@shared_task(bind=True, base=AudioPiece, name="tasks.render_audio", default_retry_delay=1)
def render_audio(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Render the job's audio once, for the whole range, to be muxed at the stitch."""
    return self.run_piece(job_id, name, generation)
