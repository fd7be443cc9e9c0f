"""Submitting, cancelling, retrying and waiting for jobs: the orchestrator's verbs.

`submit_render` and `submit_edit` validate a spec against what the farm knows (storage
roots, the nodes' catalogs, the constraints), plan it, store its record and send its
Celery canvas, by task name. A refused spec raises `SubmitRefused` naming the field and the
reason, and nothing is stored or queued.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from celery import chord

from orchestrator import routing
from orchestrator.farm import Farm
from orchestrator.models import EditSpec, JobRecord, RenderSpec, TaskRecord
from orchestrator.paths import PathRefused, confine, plain_name
from orchestrator.planner import make_plan
from orchestrator.settings import VERSION_KEY

RENDER_SEGMENT = "tasks.render_segment"
RENDER_AUDIO = "tasks.render_audio"
STITCH = "tasks.stitch"
APPLY_EDITS = "tasks.apply_edits"
DISCARD = "tasks.discard"
IMAGE_SEQUENCES = frozenset({"tif", "dpx", "exr", "cin", "png", "jpg", "j2c"})


class SubmitRefused(ValueError):
    """A spec the farm cannot run; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def _known_nodes(farm: Farm, node: str | None, tags: list[str]) -> list[dict[str, Any]]:
    """Nodes of this release that satisfy the constraints, up or not (for the catalog)."""
    wanted = set(tags)
    found = [
        n for n in farm.nodes.all()
        if not n["version_mismatch"] and "resolve" in n.get("roles", [])
        and (node is None or n["name"] == node) and wanted <= set(n.get("tags", []))
    ]  # fmt: skip
    if not found:
        if node:
            raise SubmitRefused("node", f"no Resolve node named {node!r} has joined the farm")
        if tags:
            raise SubmitRefused("tags", f"no Resolve node has the tags {sorted(tags)}")
        raise SubmitRefused("node", "no Resolve node has joined the farm yet")
    return found


def _timeline(farm: Farm, spec: Any, timeline: str, names: list[str]) -> dict[str, Any] | None:
    database = spec.database.name if spec.database else None
    found = farm.catalog.timeline(names, spec.project, timeline, database)
    if found is not None:
        return found
    projects = farm.catalog.projects(names, database)
    if spec.project not in projects:
        if spec.drp:
            return None  # to be imported from the .drp on the node
        known = ", ".join(projects) or "none"
        raise SubmitRefused("project", f"unknown project {spec.project!r} (known: {known})")
    known = ", ".join(projects[spec.project]) or "none"
    raise SubmitRefused("timeline", f"unknown timeline {timeline!r} in project {spec.project!r} (known: {known})")


def _confined(farm: Farm, value: str | None, field: str) -> Path:
    try:
        return confine(value or ".", farm.settings.storage_roots, field)
    except PathRefused as exc:
        raise SubmitRefused(field, str(exc).split(": ", 1)[-1]) from None


def submit_render(farm: Farm, spec: RenderSpec | dict[str, Any]) -> JobRecord:
    """Validate, plan, record and queue a render."""
    spec = spec if isinstance(spec, RenderSpec) else RenderSpec.model_validate(spec)
    known = _known_nodes(farm, spec.node, spec.tags)
    names = [n["name"] for n in known]
    if spec.drp:
        _confined(farm, spec.drp, "drp")
    info = _timeline(farm, spec, spec.timeline, names)
    if info is None and spec.frames is None:
        raise SubmitRefused("frames", "a project imported from a .drp needs an explicit frame range")
    start, end = (spec.frames.start, spec.frames.end) if spec.frames else (info["start_frame"], info["end_frame"])  # type: ignore[index]
    if info is not None and not (info["start_frame"] <= start and end <= info["end_frame"]):
        raise SubmitRefused(
            "frames",
            f"{start}..{end} is outside timeline {spec.timeline!r} ({info['start_frame']}..{info['end_frame']})",
        )
    if spec.format_key in IMAGE_SEQUENCES:
        raise SubmitRefused("format", f"image-sequence renders ({spec.format_key}) are not supported by the farm yet")
    if spec.format_key:
        offered = farm.catalog.codecs(names)
        if offered and spec.format_key not in offered:
            raise SubmitRefused("format", f"unknown format {spec.format_key!r} (known: {', '.join(sorted(offered))})")
        if offered and spec.codec_key not in offered[spec.format_key]:
            codecs = ", ".join(sorted(offered[spec.format_key]))
            raise SubmitRefused("codec", f"unknown codec {spec.codec_key!r} for {spec.format_key} (known: {codecs})")
    output_dir = _confined(farm, spec.output_dir, "output_dir")
    try:
        output_name = plain_name(spec.output_name or f"{spec.project.split('/')[-1]}_{spec.timeline}", "output_name")
    except PathRefused as exc:
        raise SubmitRefused("output_name", str(exc).split(": ", 1)[-1]) from None
    live = [n["name"] for n in farm.nodes.eligible(spec.node, spec.tags)]
    job_id = uuid.uuid4().hex[:16]
    work_dir = farm.settings.storage_roots[0] / ".farm" / job_id
    plan = make_plan(
        spec, start, end, live or names[:1], work_dir, output_dir / output_name,
        farm.settings.min_segment_frames, farm.settings.segments_per_node,
    )  # fmt: skip
    width = len(str(len(plan.segments)))
    tasks = [
        TaskRecord(
            name="render" if plan.single_pass else f"segment {s.index:0{width}d}/{len(plan.segments)}",
            kind="render" if plan.single_pass else "segment",
            frames_total=s.frames, start=s.start, end=s.end, output=s.file, celery_id=uuid.uuid4().hex,
        )
        for s in plan.segments
    ]  # fmt: skip
    if plan.audio_file:
        tasks.insert(0, TaskRecord(name="audio", kind="audio", frames_total=0, start=start, end=end,
                                   output=plan.audio_file, celery_id=uuid.uuid4().hex))  # fmt: skip
    tasks.append(
        TaskRecord(name="stitch", kind="stitch", frames_total=0, output=plan.output, celery_id=uuid.uuid4().hex)
    )
    record = JobRecord(
        id=job_id, kind="render", spec=spec.model_dump(mode="json"), tasks=tasks, version_key=VERSION_KEY,
        plan={
            "frames": {"start": start, "end": end, "count": end - start + 1},
            "segments": len(plan.segments), "single_pass": plan.single_pass, "stitch": plan.stitch,
            "work_dir": plan.work_dir, "output": plan.output, "eligible_nodes": live, "known_nodes": names,
            "fps": info["fps"] if info else None, "audio": spec.audio,
            "max_attempts": spec.max_attempts or farm.settings.max_attempts,
        },
    )  # fmt: skip
    farm.store.create(record)
    _send_render(farm, record, [t.name for t in record.tasks if t.kind != "stitch"])
    return record


def _send_render(farm: Farm, record: JobRecord, names: list[str]) -> None:
    spec = RenderSpec.model_validate(record.spec)
    queue = routing.resolve_queue("render", spec.node, spec.tags)
    header = []
    for name in names:
        task = record.task(name)
        sig = farm.app.signature(
            RENDER_AUDIO if task.kind == "audio" else RENDER_SEGMENT, args=(record.id, name),
            queue=queue, priority=spec.priority,
        )  # fmt: skip
        # What Flower shows instead of the bare arguments.
        shown = f"job {record.id} | {spec.project}/{spec.timeline} {name} | frames {task.start}..{task.end} | {queue}"
        header.append(sig.set(task_id=task.celery_id, argsrepr=shown))
    stitch = record.task("stitch")
    body = farm.app.signature(STITCH, args=(record.id,), queue=routing.POST, priority=spec.priority)
    shown = f"job {record.id} | {spec.project}/{spec.timeline} stitch -> {record.plan['output']}"
    chord(header, app=farm.app)(body.set(task_id=stitch.celery_id, argsrepr=shown))


def submit_edit(farm: Farm, spec: EditSpec | dict[str, Any]) -> JobRecord:
    """Validate, record and queue a batch edit: one task per target timeline."""
    spec = spec if isinstance(spec, EditSpec) else EditSpec.model_validate(spec)
    known = _known_nodes(farm, spec.node, spec.tags)
    names = [n["name"] for n in known]
    tasks: list[TaskRecord] = []
    for i, target in enumerate(spec.targets):
        if target.drp:
            _confined(farm, target.drp, f"targets.{i}.drp")
        if target.timeline:
            _timeline(farm, target, target.timeline, names)
            timelines = [target.timeline]
        else:
            database = target.database.name if target.database else None
            projects = farm.catalog.projects(names, database)
            if target.project not in projects:
                raise SubmitRefused(f"targets.{i}.project", f"unknown project {target.project!r}")
            timelines = projects[target.project]
        for timeline in timelines:
            tasks.append(TaskRecord(
                name=f"{target.project}/{timeline}", kind="edit", celery_id=uuid.uuid4().hex,
                target={**target.model_dump(mode="json"), "timeline": timeline},
            ))  # fmt: skip
    if len({t.name for t in tasks}) != len(tasks):
        raise SubmitRefused("targets", "a timeline is targeted twice")
    record = JobRecord(kind="edit", spec=spec.model_dump(mode="json"), tasks=tasks, version_key=VERSION_KEY,
                       plan={"targets": len(tasks), "known_nodes": names, "dry_run": spec.dry_run,
                             "max_attempts": spec.max_attempts or farm.settings.max_attempts})  # fmt: skip
    farm.store.create(record)
    _send_edits(farm, record, [t.name for t in tasks])
    return record


def _send_edits(farm: Farm, record: JobRecord, names: list[str]) -> None:
    spec = EditSpec.model_validate(record.spec)
    queue = routing.resolve_queue("edit", spec.node, spec.tags)
    for name in names:
        shown = f"job {record.id} | edit {name} | {len(spec.operations)} operation(s){' (dry run)' * spec.dry_run}"
        farm.app.send_task(APPLY_EDITS, args=(record.id, name), queue=queue, priority=spec.priority,
                           task_id=record.task(name).celery_id, argsrepr=shown)  # fmt: skip


def cancel(farm: Farm, job_id: str, wait: float = 30.0) -> JobRecord:
    """Cancel a job: revoke what has not started, stop what runs, wait for it to clean up."""

    def mark(record: JobRecord) -> None:
        if record.finished:
            return
        record.cancel_requested = True
        record.state = "cancelled"
        record.finished_at = time.time()
        for task in record.tasks:
            if task.state == "pending":
                task.state = "cancelled"

    record = farm.store.update(job_id, mark)
    pending = [t.celery_id for t in record.tasks if t.state == "cancelled" and t.celery_id]
    if pending:
        farm.app.control.revoke(pending)
    if record.kind == "render":
        farm.app.send_task(DISCARD, args=(job_id,), queue=routing.POST)  # segments, audio, partial output
    deadline = time.monotonic() + wait
    while any(t.state == "running" for t in record.tasks) and time.monotonic() < deadline:
        time.sleep(0.1)
        record = farm.store.get(job_id)
    return record


def retry(farm: Farm, job_id: str) -> JobRecord:
    """Run again only what failed or was cancelled; what finished stays finished."""
    again: list[str] = []

    def reset(record: JobRecord) -> None:
        if record.state not in ("failed", "cancelled"):
            raise SubmitRefused("job", f"job {job_id} is {record.state}: only failed or cancelled jobs are retried")
        again.clear()
        for task in record.tasks:
            if task.state in ("failed", "cancelled", "pending") or (task.kind == "stitch" and task.state != "done"):
                task.state, task.error, task.attempts = "pending", None, 0
                task.frames_done, task.failed_on = 0, []
                task.celery_id = uuid.uuid4().hex
                again.append(task.name)
        record.state, record.cancel_requested, record.finished_at = "queued", False, None
        record.errors, record.blocked_nodes = [], {}
        record.plan["stitch_requested"] = False

    record = farm.store.update(job_id, reset)
    if record.kind == "render":
        _send_render(farm, record, [n for n in again if n != "stitch"])
    else:
        _send_edits(farm, record, again)
    return record


def wait(
    farm: Farm, job_id: str, timeout: float | None = None, interval: float = 0.2,
    on_progress: Callable[[JobRecord], None] | None = None,
) -> JobRecord:  # fmt: skip
    """Poll the record until the job finishes (or `timeout` passes); returns the latest record."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        record = farm.store.get(job_id)
        if on_progress is not None:
            on_progress(record)
        if record.finished and not any(t.state == "running" for t in record.tasks):
            return record
        if deadline is not None and time.monotonic() >= deadline:
            return record
        time.sleep(interval)


_rates: dict[int, tuple[float, float | None]] = {}  # id(farm) -> (computed at, frames/s of one node)
RATE_MAX_AGE = 10.0


def node_rate(farm: Farm, history: int = 20) -> float | None:
    """Median frames per second of one node over recently finished segments (cached for a few seconds)."""
    cached = _rates.get(id(farm))
    if cached is not None and time.monotonic() - cached[0] < RATE_MAX_AGE:
        return cached[1]
    rates = []
    for past in farm.store.list(kind="render", state="succeeded", limit=history):
        for task in past.tasks:
            if task.kind in ("segment", "render") and task.started_at and task.finished_at and task.frames_total:
                rates.append(task.frames_total / max(task.finished_at - task.started_at, 1e-3))
    rate = sorted(rates)[len(rates) // 2] if rates else None
    _rates[id(farm)] = (time.monotonic(), rate)
    return rate


def estimate_seconds(farm: Farm, record: JobRecord) -> float | None:
    """How long a render should take, from the speed of recently finished segments; None without history."""
    rate = node_rate(farm)
    if rate is None or record.kind != "render":
        return None
    longest = max((t.frames_total for t in record.tasks if t.kind in ("segment", "render")), default=0)
    return round(longest / rate, 1)


INSPECT = "tasks.inspect_resolve"


def inspect(farm: Farm, node: str | None, timeout: float) -> dict[str, Any]:
    """Ask a node's Resolve what it holds, through the queue; the node's catalog when it is busy."""
    known = {n["name"]: n for n in farm.nodes.all() if "resolve" in n.get("roles", [])}
    if node is not None and node not in known:
        raise SubmitRefused("node", f"no Resolve node named {node!r} (known: {', '.join(sorted(known)) or 'none'})")
    queue = routing.node_queue(node) if node else routing.RENDER
    task_id = uuid.uuid4().hex
    farm.app.send_task(INSPECT, queue=queue, task_id=task_id, priority=0)
    result = farm.app.AsyncResult(task_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.state == "SUCCESS":
            return {"live": True, **dict(result.result)}
        if result.state == "FAILURE":
            raise SubmitRefused("node", f"inspecting failed: {result.result}")
        time.sleep(0.1)
    farm.app.control.revoke(task_id)
    names = [node] if node else list(known)
    catalogs = farm.catalog.of(names)
    busy = {n: known[n].get("current_task") for n in names if known[n].get("current_task")}
    return {
        "live": False,
        "note": f"no answer within {timeout:g}s (busy: {busy or 'none'}); this is the catalog the node(s) published",
        "catalog": catalogs[0] if catalogs else {},
    }
