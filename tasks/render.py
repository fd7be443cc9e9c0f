"""`render_segment` and `render_audio`: one piece of a render job on one Resolve host.

Idempotent: a redelivered copy finds the piece done (and skips), or its lock held by a
live copy (and leaves it alone). A failure is retried on another node, up to the job's
attempts; a node that fails the same job twice is blocked for that job.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import av
from celery import Task, current_app, shared_task
from celery.exceptions import SoftTimeLimitExceeded

from bridge import BridgeError
from bridge.errors import CallTimeout, ConnectError, HelperDied, RenderCancelled
from orchestrator import metrics, routing
from orchestrator.models import JobRecord, RenderSpec
from orchestrator.nodes import NodeRegistry
from tasks.progress import LockKeeper, Reporter
from tasks.runtime import runtime

log = logging.getLogger(__name__)
BLOCK_AFTER = 2  # failures of one node in one job
STITCH = "tasks.stitch"


class Moved(Exception):
    """The task was handed to another node; nothing more to do here."""


class Locked(Exception):
    """Another copy of the task holds its lock."""


class Superseded(Exception):
    """This copy's lock lapsed (its worker was cut off) and another copy owns the piece now."""


def count_frames(path: str) -> int:
    """Video frames in a file, counted from its packets (no decoding)."""
    with av.open(path) as container:
        if not container.streams.video:
            return 0
        return sum(1 for p in container.demux(video=0) if p.size)


def _other_node(nodes: NodeRegistry, record: JobRecord, spec: RenderSpec, avoid: set[str]) -> str | None:
    """A live eligible node not in `avoid` and not blocked for this job, least recently failing first."""
    for node in nodes.eligible(spec.node, spec.tags):
        name = node["name"]
        if name not in avoid and record.blocked_nodes.get(name, 0) < BLOCK_AFTER:
            return str(name)
    return None


def _begin(task: Task, job_id: str, name: str) -> tuple[JobRecord, RenderSpec] | None:
    """Claim the piece: None when there is nothing to do here (done, cancelled, moved, locked)."""
    farm = runtime.farm()
    record = farm.store.get(job_id)
    piece = record.task(name)
    if record.finished or record.cancel_requested:
        return None
    if piece.state == "done" and piece.output and os.path.exists(piece.output):
        log.info("%s of job %s is done already: skipping the redelivered copy", name, job_id)
        return None
    spec = RenderSpec.model_validate(record.spec)
    me = runtime.node
    if not set(spec.tags) <= set(runtime.settings.node_tags) or record.blocked_nodes.get(me, 0) >= BLOCK_AFTER:
        _move(task, record, spec, name, {me}, f"{me} cannot take it")
    ttl = runtime.settings.lock_ttl
    if not farm.store.acquire(job_id, name, f"{me}:{task.request.id}", ttl):
        # Another copy holds it: not rendering it twice. Look again later, in case its worker
        # died (its lock then lapses); dropping this copy could lose the piece.
        log.info("%s of job %s is locked by %s: checking again later", name, job_id, farm.store.holder(job_id, name))
        raise Locked(ttl)

    def start(rec: JobRecord) -> None:
        t = rec.task(name)
        if t.state == "running" and t.node:
            # The lock was free, so the attempt that said "running" died with its worker.
            t.failed_on.append(t.node)
            t.error = f"the worker on {t.node} was lost during attempt {t.attempts}"
            rec.blocked_nodes[t.node] = rec.blocked_nodes.get(t.node, 0) + 1
            if t.attempts >= int(rec.plan.get("max_attempts", 1)):
                t.state, t.finished_at = "failed", time.time()
                rec.state, rec.finished_at = "failed", time.time()
                rec.errors.append(f"{name}: {t.error} (after {t.attempts} attempt(s))")
                return
            t.state = "pending"
        if elsewhere is not None and (rec.blocked_nodes.get(me, 0) >= BLOCK_AFTER or me in t.failed_on[-1:]):
            return  # this node just lost it (or is blocked) and another can take it: leave it pending
        t.state, t.node, t.error = "running", me, None
        t.attempts += 1
        t.started_at, t.finished_at = time.time(), None
        t.frames_done = 0
        if rec.state == "queued":
            rec.state, rec.started_at = "running", rec.started_at or time.time()

    before = record.task(name)
    # With no other node able to take it, this one renders it after all: better late than never.
    elsewhere = _other_node(farm.nodes, record, spec, {me})
    record = farm.store.update(job_id, start)
    claimed = record.task(name)
    if before.state == "running" and before.node and before.node in claimed.failed_on[-1:]:
        # Its worker died or was killed mid-call: keep new work off it until Resolve answers again.
        farm.nodes.heartbeat(before.node, unhealthy=f"lost {name} of job {job_id}")
    if claimed.state != "running" or claimed.node != me:
        farm.store.release(job_id, name, f"{me}:{task.request.id}")
        if claimed.state == "pending":
            _move(task, record, spec, name, {me}, f"{me} lost this piece before")
            raise Locked(1)  # nowhere else to go right now: try again shortly
        return None
    farm.nodes.heartbeat(me, current_task=f"{job_id}:{name}")
    return record, spec


def _move(task: Task, record: JobRecord, spec: RenderSpec, name: str, avoid: set[str], why: str) -> None:
    other = _other_node(runtime.farm().nodes, record, spec, avoid)
    if other is None:
        return  # nowhere better to go: run here
    new_id = task.request.id + "+"  # a new message: keep the chord's own id for the chord
    runtime.farm().store.update(record.id, lambda r: setattr(r.task(name), "celery_id", new_id))
    task.app.send_task(task.name, args=(record.id, name), queue=routing.node_queue(other), task_id=new_id,
                       priority=spec.priority)  # fmt: skip
    log.info("%s of job %s moved to %s: %s", name, record.id, other, why)
    raise Moved(other)


def _open_project(spec: RenderSpec) -> None:
    session = runtime.session()
    database = spec.database.as_resolve() if spec.database else None
    drp = runtime.to_node(spec.drp) if spec.drp else None
    opened = session.open_project(spec.project, database=database, drp=drp)
    current = session.list_projects()["database"].get("DbName", "")
    runtime.farm().catalog.update_project(runtime.node, current, spec.project, opened["timelines"])


def _render(task: Task, job_id: str, name: str, audio_only: bool) -> dict[str, Any]:
    try:
        begun = _begin(task, job_id, name)
    except Moved as moved:
        return {"moved_to": str(moved)}
    except Locked as locked:
        raise task.retry(countdown=max(1, int(locked.args[0]) // 2), max_retries=None) from None
    if begun is None:
        return {"skipped": True}
    record, spec = begun
    farm = runtime.farm()
    piece = record.task(name)
    assert piece.output is not None and piece.start is not None and piece.end is not None
    output = Path(piece.output)
    reporter = Reporter(task, job_id, name)
    keeper = LockKeeper(farm.store, job_id, name, reporter.owner, runtime.settings.lock_ttl)
    # Each attempt renders under its own name and is renamed into place only when complete,
    # verified and still ours: a partial file never shows under the piece's name, and a worker
    # cut off from Redis can never delete or replace what another node made meanwhile.
    attempt = f"{output.stem}.{task.request.id[:8]}-{piece.attempts}"
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        _open_project(spec)
        settings: dict[str, Any] = dict(spec.settings)
        single = piece.kind == "render"
        settings["ExportVideo"] = not audio_only
        settings["ExportAudio"] = audio_only or (single and spec.audio)
        fmt, codec, preset = spec.format_key, spec.codec_key, spec.preset
        if audio_only:
            # MXF cannot hold audio alone: the audio pass renders PCM in QuickTime (AAC in MP4),
            # and the stitch copies it into the final container.
            fmt, codec, preset = ("mp4", "H264", None) if fmt == "mp4" else ("mov", "ProRes422HQ", None)
        result = runtime.session().render(
            spec.timeline,
            piece.start,
            piece.end,
            runtime.to_node(str(output.parent)),
            attempt,
            format=fmt,
            codec=codec,
            preset=preset,
            settings=settings,
            progress=reporter,
            cancel=reporter.cancel,
        )
        rendered = Path(runtime.from_node(result.outputs[0]))
        frames = piece.end - piece.start + 1
        if not audio_only:
            counted = count_frames(str(rendered))
            if counted != frames:
                raise BridgeError(f"{rendered} holds {counted} frames, {frames} were asked for")
        if farm.store.holder(job_id, name) != reporter.owner:
            raise Superseded(f"{name} of job {job_id} was taken over by another node while {runtime.node} rendered it")
        made = str(output.with_suffix(rendered.suffix))
        os.replace(rendered, made)
    except RenderCancelled:
        _remove_attempt(output.parent, attempt)
        _finish(job_id, name, "cancelled", None)
        return {"cancelled": True}
    except Superseded as exc:
        _remove_attempt(output.parent, attempt)
        log.warning("%s", exc)
        return {"superseded": True}
    except Exception as exc:
        _remove_attempt(output.parent, attempt)
        if isinstance(exc, (HelperDied, CallTimeout, ConnectError)):
            runtime.drop_session()
        return _failed(task, job_id, name, spec, exc)
    finally:
        keeper.stop()
        farm.store.release(job_id, name, reporter.owner)
        farm.nodes.heartbeat(runtime.node, current_task=None)
    _finish(job_id, name, "done", made, frames if not audio_only else 0)
    if not audio_only:
        metrics.record_render(farm.redis, runtime.node, frames, result.seconds)
    return {"output": made, "frames": frames, "node": runtime.node, "seconds": round(result.seconds, 3)}


def _finish(job_id: str, name: str, state: str, output: str | None, frames: int = 0) -> None:
    """Record the piece's end; the piece that completes the set asks for the stitch itself.

    Note: the chord's body normally does that, but a chord counts in Redis and can lose a
    count when Redis restarts under it; the record cannot. A second stitch finds the job
    done (or locked) and does nothing.
    """

    completed = [False]  # set by the one update that completes the set (a re-run resets it)

    def finish(rec: JobRecord) -> None:
        completed[0] = False
        t = rec.task(name)
        t.state, t.finished_at = state, time.time()  # type: ignore[assignment]
        if output:
            t.output = output
        if state == "done":
            t.frames_done = frames or t.frames_total
        pieces = [p for p in rec.tasks if p.kind != "stitch"]
        if all(p.state == "done" for p in pieces) and not rec.finished and not rec.plan.get("stitch_requested"):
            rec.plan["stitch_requested"] = completed[0] = True
            rec.task("stitch").celery_id = stitch_id

    stitch_id = uuid.uuid4().hex
    runtime.farm().store.update(job_id, finish)
    if completed[0]:
        current_app.send_task(STITCH, args=([], job_id), queue=routing.POST, task_id=stitch_id)


def _failed(task: Task, job_id: str, name: str, spec: RenderSpec, exc: BaseException) -> dict[str, Any]:
    """Record a failure; retry elsewhere while attempts remain, else fail the job with the reason."""
    me = runtime.node
    reason = f"{name} failed on {me}: {exc}"
    log.warning(reason)

    def fail(rec: JobRecord) -> None:
        t = rec.task(name)
        if rec.finished or t.state == "done" or (t.node != me and t.state == "running"):
            return  # a stale copy (this worker was cut off): the piece is someone else's now
        t.failed_on.append(me)
        t.error = str(exc)
        rec.blocked_nodes[me] = rec.blocked_nodes.get(me, 0) + 1
        if t.attempts >= int(rec.plan.get("max_attempts", 1)):
            t.state, t.finished_at = "failed", time.time()
            if not rec.finished:
                rec.state, rec.finished_at = "failed", time.time()
                rec.errors.append(f"{reason} (after {t.attempts} attempt(s))")
        else:
            t.state = "pending"

    record = runtime.farm().store.update(job_id, fail)
    if record.finished or record.task(name).state in ("done", "running"):
        return {"stale": reason}
    if isinstance(exc, (SoftTimeLimitExceeded, CallTimeout)):
        # A call into Resolve hung: keep new work off this host until Resolve answers again.
        runtime.farm().nodes.heartbeat(me, unhealthy=f"a call hung rendering {name} of job {job_id}")
    gave_up = record.task(name).state == "failed"
    metrics.record_failure(runtime.farm().redis, "render", me, retried=not gave_up)
    if gave_up:
        return {"failed": reason}
    other = _other_node(runtime.farm().nodes, record, spec, {me})
    queue = routing.node_queue(other) if other else routing.resolve_queue("render", spec.node, spec.tags)
    raise task.retry(exc=None, queue=queue, countdown=0.5, max_retries=None)


def _remove_attempt(folder: Path, attempt: str) -> None:
    """Delete what this attempt wrote (and nothing of any other attempt)."""
    for path in folder.glob(f"{attempt}.*"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@shared_task(bind=True, name="tasks.render_segment", acks_late=True, default_retry_delay=1)
def render_segment(self: Task, job_id: str, name: str) -> dict[str, Any]:
    """Render one segment (video only), or the whole range in one pass for unsplit jobs."""
    return _render(self, job_id, name, audio_only=False)


@shared_task(bind=True, name="tasks.render_audio", acks_late=True, default_retry_delay=1)
def render_audio(self: Task, job_id: str, name: str) -> dict[str, Any]:
    """Render the job's audio once, for the whole range, to be muxed at the stitch."""
    return _render(self, job_id, name, audio_only=True)
