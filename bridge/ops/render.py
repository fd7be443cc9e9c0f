"""Rendering: a range of a timeline started as a render job, its status read, stopped, deleted.

Note: standard library only (see `bridge/__init__.py`).
"""

from __future__ import annotations

from typing import Any

from bridge.errors import OperationError
from bridge.ops.common import _retry
from bridge.ops.projects import _current_project, _timeline, _timeline_info


def start_render(
    resolve: Any,
    timeline: str,
    mark_in: int,
    mark_out: int,
    target_dir: str,
    name: str,
    format: str | None = None,
    codec: str | None = None,
    preset: str | None = None,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Queue and start one render job of frames mark_in..mark_out (inclusive)."""
    project = _current_project(resolve)
    tl = _timeline(project, timeline)
    info = _timeline_info(tl)
    if not info["start_frame"] <= mark_in <= mark_out <= info["end_frame"]:
        raise OperationError(
            f"frames {mark_in}..{mark_out} are outside timeline {timeline!r} "
            f"({info['start_frame']}..{info['end_frame']})"
        )
    if project.IsRenderingInProgress():
        raise OperationError("Resolve is already rendering", fix="Resolve renders one job at a time per host")
    if not project.SetCurrentTimeline(tl):
        raise OperationError(f"Resolve could not switch to timeline {timeline!r}")
    # The Deliver page is sticky: whatever an earlier job or preset left applies to this job
    # unless this job sets it. A preset replaces the whole page; a plain job sets every key
    # the farm relies on, so nothing of the page's past shows in its output.
    if preset and not project.LoadRenderPreset(preset):
        raise OperationError(f"render preset {preset!r} does not exist (known: {list(project.GetRenderPresetList())})")
    fmt = project.GetCurrentRenderFormatAndCodec()["format"] if preset else (format or DEFAULT_FORMAT)
    if format or codec or not preset:
        cod = codec or (project.GetCurrentRenderFormatAndCodec()["codec"] if preset else _default_codec(project, fmt))
        if not project.SetCurrentRenderFormatAndCodec(fmt, cod):
            raise OperationError(f"Resolve refused format {fmt!r} with codec {cod!r}")
    wanted = {
        **({} if preset else known_state(info, fmt)),
        **(settings or {}),
        "SelectAllFrames": False,
        "MarkIn": int(mark_in),
        "MarkOut": int(mark_out),
        "TargetDir": target_dir,
        "CustomName": name,
    }
    if not project.SetRenderSettings(wanted):
        refused = [k for k, v in wanted.items() if not project.SetRenderSettings({k: v})]
        raise OperationError(f"Resolve refused render settings: {', '.join(refused) or 'the combination'}")
    job_id = _retry(project.AddRenderJob)
    if not job_id:
        raise OperationError("Resolve could not add the render job")
    if not _retry(lambda: project.StartRendering([job_id])):
        project.DeleteRenderJob(job_id)
        raise OperationError("Resolve could not start rendering")
    job: dict[str, Any] = next((j for j in project.GetRenderJobList() if j.get("JobId") == job_id), {})
    fmt_key = project.GetCurrentRenderFormatAndCodec()["format"]
    return {
        "job_id": job_id,
        "frames": mark_out - mark_in + 1,
        "target_dir": job.get("TargetDir", target_dir),
        "output": job.get("OutputFilename", ""),
        "image_sequence": fmt_key in IMAGE_SEQUENCE_FORMATS,
    }


IMAGE_SEQUENCE_FORMATS = frozenset({"tif", "dpx", "exr", "cin", "png", "jpg", "j2c"})
DEFAULT_FORMAT, DEFAULT_CODEC = "mov", "ProRes422HQ"  # what a job naming neither preset nor format gets


def known_state(timeline: dict[str, Any], fmt: str) -> dict[str, Any]:
    """The settings a plain render job means, whatever the Deliver page held before it.

    Video and audio on, the timeline's own picture size and frame rate (segments rendered on
    different hosts must match to be joined), and uncompressed audio except in MP4 (the audio
    pass is muxed by stream copy: AAC would click at joins elsewhere). The caller's settings
    and the range are applied over these.
    """
    state: dict[str, Any] = {
        "ExportVideo": True,
        "ExportAudio": True,
        "FormatWidth": int(timeline["width"]),
        "FormatHeight": int(timeline["height"]),
        "FrameRate": float(timeline["fps"]),
    }
    if fmt not in IMAGE_SEQUENCE_FORMATS:
        state["AudioCodec"] = "aac" if fmt == "mp4" else "lpcm"
    return state


def _default_codec(project: Any, fmt: str) -> str:
    codecs = list(dict(project.GetRenderCodecs(fmt) or {}).values())
    return DEFAULT_CODEC if DEFAULT_CODEC in codecs or not codecs else str(codecs[0])


def render_status(resolve: Any, job_id: str) -> dict[str, Any]:
    project = _current_project(resolve)
    status = dict(project.GetRenderJobStatus(job_id) or {})
    if not status:
        raise OperationError(f"render job {job_id} is not in Resolve's queue")
    return {
        "status": status.get("JobStatus", ""),
        "percent": float(status.get("CompletionPercentage", 0)),
        "eta_ms": int(status.get("EstimatedTimeRemainingInMs", 0) or 0),
        "elapsed_ms": int(status.get("TimeTakenToRenderInMs", 0) or 0),
        "error": str(status.get("Error", "") or ""),
        "in_progress": bool(project.IsRenderingInProgress()),
    }


def stop_render(resolve: Any, job_id: str | None = None) -> bool:
    """Stop the render in progress; with `job_id`, only if that job is the one rendering.

    Note: Resolve's `StopRendering` stops whatever renders; a late stop for a job that has
    finished must not stop the next job started on the host. Returns whether a render stopped.
    """
    project = _current_project(resolve)
    if not project.IsRenderingInProgress():
        return False
    if job_id is not None:
        status = project.GetRenderJobStatus(job_id) or {}
        if status.get("JobStatus") != "Rendering":
            return False
    project.StopRendering()
    return True


def delete_render_job(resolve: Any, job_id: str) -> bool:
    return bool(_current_project(resolve).DeleteRenderJob(job_id))
