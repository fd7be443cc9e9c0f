"""The high-level operations the farm performs on a Resolve object.

Each function takes the object `scriptapp("Resolve")` returned (real or simulated) and plain
JSON-able arguments, and returns plain JSON-able results, so the same code runs in-process
(native, sim) and inside the fallback helper, whose pipe carries JSON. Failures raise
`OperationError` with a reason a person can act on.

Note: standard library only (see `bridge/__init__.py`). Arguments were validated in the
parent before they got here; the checks below are for what only Resolve can tell.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import time
from collections.abc import Callable
from functools import partial
from typing import Any, TypeVar

from bridge.errors import OperationError, ScriptingUnavailable

T = TypeVar("T")
UNTITLED = "Untitled Project"
IMPORTS_FOLDER = "resolve-farm imports"  # the project folder where .drp files are imported, one project per content
RETRY_DELAYS = (0.2, 0.5, 1.0)  # modal dialogs and autosave make calls fail for a moment
SCRIPTING_STUDIO_ONLY_SINCE = (21, 1)  # Resolve 21.1 made Python scripting a Studio feature

OPERATIONS = (
    "ping",
    "describe",
    "list_projects",
    "open_project",
    "open_drp",
    "delete_imports",
    "list_timelines",
    "timeline_info",
    "timeline_content",
    "render_options",
    "start_render",
    "render_status",
    "stop_render",
    "delete_render_job",
    "apply_edits",
    "save_project",
    "close_project",
    "list_bins",
    "list_clips",
    "link_proxies",
)


def _retry(call: Callable[[], T], ok: Callable[[T], bool] = bool) -> T:
    result = call()
    for delay in RETRY_DELAYS:
        if ok(result):
            return result
        time.sleep(delay)
        result = call()
    return result


# --- the application -------------------------------------------------------------------


def ping(resolve: Any) -> str:
    """The cheapest real call: proves Resolve still answers."""
    return str(resolve.GetVersionString())


def describe(resolve: Any) -> dict[str, Any]:
    """Product, version and edition; raises `ScriptingUnavailable` where scripting is refused.

    Note: every connection (native, helper, simulator) passes here first, so a free 21.1
    fails at connect with the plain reason instead of at its first project call with a None.
    """
    product = str(resolve.GetProductName())
    info = {
        "product": product,
        "version": str(resolve.GetVersionString()),
        "studio": "studio" in product.lower(),
    }
    if not info["studio"] and _version(resolve) >= SCRIPTING_STUDIO_ONLY_SINCE:
        raise ScriptingUnavailable(
            f"Python scripting is a Studio feature since DaVinci Resolve 21.1, and this host runs "
            f"{product} {info['version']} (the free edition): Resolve refuses every scripting call",
            fix="install DaVinci Resolve Studio on this host (a licence or dongle), or take the host off the farm",
        )
    return info


def _version(resolve: Any) -> tuple[int, int]:
    parts = list(resolve.GetVersion() or [])
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, TypeError, ValueError):
        return 0, 0  # an unreadable version: leave the verdict to the calls themselves


def _project_manager(resolve: Any) -> Any:
    pm = resolve.GetProjectManager()
    if pm is None:
        raise OperationError("Resolve gave no project manager", fix="close modal dialogs in Resolve and retry")
    return pm


def list_projects(resolve: Any) -> dict[str, Any]:
    """Every project of the current database, with folder paths ("Clients/Acme/Ad_2026")."""
    pm = _project_manager(resolve)
    found: list[str] = []

    def walk(prefix: str) -> None:
        found.extend(prefix + name for name in pm.GetProjectListInCurrentFolder())
        for folder in pm.GetFolderListInCurrentFolder():
            if pm.OpenFolder(folder):
                walk(f"{prefix}{folder}/")
                pm.GotoParentFolder()

    pm.GotoRootFolder()
    walk("")
    return {"database": dict(pm.GetCurrentDatabase()), "projects": found}


def open_project(resolve: Any, name: str, database: dict[str, str] | None = None) -> dict[str, Any]:
    """Make `name` the current project, from `database` or the current one.

    `name` may carry a folder path ("Clients/Acme/Ad_2026"). A project given as a .drp is opened
    with `open_drp`.
    """
    pm = _project_manager(resolve)
    _use_database(pm, database)
    *folders, project_name = name.split("/")
    pm.GotoRootFolder()
    for folder in folders:
        if not pm.OpenFolder(folder):
            raise OperationError(f"project folder {folder!r} does not exist (in {name!r})")
    # No GetCurrentProject() first: on a fresh host it conjures an untitled project.
    if project_name not in pm.GetProjectListInCurrentFolder():
        raise OperationError(f"project {name!r} does not exist in database {pm.GetCurrentDatabase().get('DbName')!r}")
    return _project_summary(_load(pm, project_name, name))


def _use_database(pm: Any, database: dict[str, str] | None) -> None:
    if not database:
        return
    current = pm.GetCurrentDatabase()
    same = (current.get("DbName"), current.get("DbType")) == (database.get("DbName"), database.get("DbType"))
    if not same and not _retry(lambda: pm.SetCurrentDatabase(database)):
        known = ", ".join(d.get("DbName", "?") for d in pm.GetDatabaseList())
        raise OperationError(f"database {database.get('DbName')!r} is not available (known: {known})")


def _load(pm: Any, project_name: str, shown: str) -> Any:
    project = _retry(lambda: pm.LoadProject(project_name))
    if not project:
        raise OperationError(f"Resolve could not load project {shown!r}", fix="is a render running, or a dialog open?")
    return project


def drp_digest(path: str) -> str:
    """The sha256 of a .drp file, hex: what names its import."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(partial(f.read, 1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_name(path: str, digest: str) -> str:
    """The project a .drp's content is imported as: `<file stem>-<first 12 hex digits of its sha256>`."""
    return f"{os.path.splitext(os.path.basename(path))[0]}-{digest[:12]}"


def _imports_folder(pm: Any, folder: str) -> None:
    """Go to `folder` under the root of the current database, creating it on first use."""
    pm.GotoRootFolder()
    if pm.OpenFolder(folder):
        return
    pm.CreateFolder(folder)  # may fail when another host of a shared database just made it: opening says
    if not pm.OpenFolder(folder):
        raise OperationError(f"Resolve could not create the project folder {folder!r} for imported .drp files")


def open_drp(
    resolve: Any, drp: str, database: dict[str, str] | None = None, folder: str = IMPORTS_FOLDER
) -> dict[str, Any]:
    """Open the project a .drp holds, importing it only if this content was never imported here.

    The import is named after the file's content (`import_name`) in `folder`, so later pieces
    and jobs find it and load it instead of importing again, and a changed file (another digest)
    is imported anew beside the old one. Returns the project's summary, plus `project` (its
    path, folder included), `digest`, `database` (its name) and `imported` (whether this call
    imported it).
    """
    pm = _project_manager(resolve)
    _use_database(pm, database)
    if not os.path.isfile(drp):
        raise OperationError(f"project file {drp!r} does not exist on this host")
    digest = drp_digest(drp)
    name = import_name(drp, digest)
    _imports_folder(pm, folder)
    imported = False
    if name not in pm.GetProjectListInCurrentFolder():
        imported = bool(pm.ImportProject(drp, name))
        # Refused: a host sharing this database imported the same content meanwhile, or the file is no project.
        if not imported and name not in pm.GetProjectListInCurrentFolder():
            raise OperationError(f"Resolve could not import {drp!r} as {name!r}", fix="is it a Resolve .drp file?")
    project = _load(pm, name, f"{folder}/{name}")
    return {
        **_project_summary(project), "project": f"{folder}/{name}", "digest": digest, "imported": imported,
        "database": str(pm.GetCurrentDatabase().get("DbName", "")),
    }  # fmt: skip


def delete_imports(resolve: Any, names: list[str], folder: str = IMPORTS_FOLDER) -> dict[str, list[str]]:
    """Delete imported .drp projects from `folder` of the current database.

    Returns `deleted`, `missing` (not there any more) and `kept` (Resolve refused: the open
    project, or one open elsewhere).
    """
    pm = _project_manager(resolve)
    pm.GotoRootFolder()
    if not pm.OpenFolder(folder):
        return {"deleted": [], "missing": list(names), "kept": []}
    present = set(pm.GetProjectListInCurrentFolder())
    done: dict[str, list[str]] = {"deleted": [], "missing": [], "kept": []}
    for name in names:
        if name not in present:
            done["missing"].append(name)
        else:
            done["deleted" if pm.DeleteProject(name) else "kept"].append(name)
    pm.GotoRootFolder()
    return done


def _project_summary(project: Any) -> dict[str, Any]:
    return {"name": project.GetName(), "timelines": [_timeline_info(t) for t in _timelines(project)]}


def _current_project(resolve: Any) -> Any:
    project = _project_manager(resolve).GetCurrentProject()
    if project is None:
        raise OperationError("no project is open", fix="open a project first")
    return project


def _timelines(project: Any) -> list[Any]:
    return [project.GetTimelineByIndex(i) for i in range(1, int(project.GetTimelineCount()) + 1)]


def _timeline(project: Any, name: str) -> Any:
    for tl in _timelines(project):
        if tl.GetName() == name:
            return tl
    raise OperationError(f"timeline {name!r} does not exist in project {project.GetName()!r}")


def _timeline_info(tl: Any) -> dict[str, Any]:
    start = int(tl.GetStartFrame())
    end = int(tl.GetEndFrame())  # exclusive
    return {
        "name": tl.GetName(),
        "start_frame": start,
        "end_frame": end - 1,  # inclusive: what MarkOut takes
        "frames": end - start,
        "fps": float(tl.GetSetting("timelineFrameRate")),
        "width": int(tl.GetSetting("timelineResolutionWidth")),
        "height": int(tl.GetSetting("timelineResolutionHeight")),
        "start_timecode": tl.GetStartTimecode(),
    }


def list_timelines(resolve: Any) -> list[dict[str, Any]]:
    return [_timeline_info(t) for t in _timelines(_current_project(resolve))]


def timeline_info(resolve: Any, timeline: str) -> dict[str, Any]:
    return _timeline_info(_timeline(_current_project(resolve), timeline))


def timeline_content(resolve: Any, timeline: str) -> dict[str, Any]:
    """What is on a timeline of the current project, as far as the API shows it, and its fingerprint.

    Per video track (the first is track 1), its enabled items: `media` (the clip's media id;
    "" for a generator or title without one), `start`/`end` (timeline frames, end exclusive),
    `in` (the first source frame used), `nodes` (the grade's node count) and `luts` (each node's
    LUT, "" for none). The fingerprint is a digest of all of it: an edit that keeps the
    timeline's name changes it.
    Note: a CDL cannot be read back through the scripting API (there is `SetCDL` only), so a
    grade's CDL is not part of the content; nor are effects the API does not list.
    """
    tl = _timeline(_current_project(resolve), timeline)
    tracks: list[list[dict[str, Any]]] = []
    for index in range(1, int(tl.GetTrackCount("video")) + 1):
        items = []
        for item in tl.GetItemListInTrack("video", index) or []:
            if not item.GetClipEnabled():
                continue
            clip = item.GetMediaPoolItem()
            nodes = int(item.GetNumNodes() or 0)
            items.append({
                "media": str(clip.GetMediaId()) if clip else "",
                "start": int(item.GetStart()), "end": int(item.GetEnd()), "in": int(item.GetLeftOffset()),
                "nodes": nodes, "luts": [str(item.GetLUT(n) or "") for n in range(1, nodes + 1)],
            })  # fmt: skip
        tracks.append(items)
    text = json.dumps(tracks, sort_keys=True, separators=(",", ":"))
    return {"name": tl.GetName(), "fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16], "tracks": tracks}


def render_options(resolve: Any) -> dict[str, Any]:
    project = _current_project(resolve)
    formats = dict(project.GetRenderFormats())
    return {
        "formats": formats,
        "codecs": {key: dict(project.GetRenderCodecs(key)) for key in formats.values()},
        "presets": list(project.GetRenderPresetList()),
    }


def close_project(resolve: Any) -> bool:
    """Close the current project, so another host can open it for writing.

    Note: in a shared library the first host to open a project holds it; every later opener
    gets it read-only until the holder closes it. The untitled project is nobody's to close.
    """
    pm = _project_manager(resolve)
    project = pm.GetCurrentProject()
    if project is None or project.GetName() == UNTITLED:
        return False
    if not _retry(lambda: pm.CloseProject(project)):
        raise OperationError(f"Resolve could not close project {project.GetName()!r}", fix="stop any render first")
    return True


def save_project(resolve: Any) -> bool:
    """Save the current project.

    Note: never on a never-saved "Untitled Project": Resolve would open a modal dialog and block.
    """
    project = _current_project(resolve)
    if project.GetName() == UNTITLED:
        raise OperationError("refusing to save the untitled project: Resolve would block on a name dialog")
    if not _retry(lambda: _project_manager(resolve).SaveProject()):
        raise OperationError(f"Resolve could not save project {project.GetName()!r}")
    return True


# --- rendering -------------------------------------------------------------------------


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


# --- edits -----------------------------------------------------------------------------


def apply_edits(
    resolve: Any, timeline: str, operations: list[dict[str, Any]], dry_run: bool = False
) -> list[dict[str, Any]]:
    """Apply validated edit operations to a timeline of the current project.

    Returns one result per item touched: {"op", "kind", "target", "ok", "change", "error"}.
    With `dry_run` nothing changes and each result says what would.
    """
    project = _current_project(resolve)
    tl = _timeline(project, timeline)
    results: list[dict[str, Any]] = []
    for index, operation in enumerate(operations):
        kind = operation["op"]
        handler = EDITS.get(kind)
        if handler is None:
            results.append(_result(index, kind, timeline, False, "", f"unknown operation {kind!r}"))
            continue
        for target, change, apply in handler(project, tl, operation):
            if dry_run:
                results.append({**_result(index, kind, target, True, change, ""), "dry_run": True})
                continue
            try:
                ok = bool(apply())
            except OperationError as exc:
                results.append(_result(index, kind, target, False, change, exc.message))
                continue
            results.append(_result(index, kind, target, ok, change, "" if ok else "Resolve refused the change"))
    return results


def _result(index: int, kind: str, target: str, ok: bool, change: str, error: str) -> dict[str, Any]:
    return {"op": index, "kind": kind, "target": target, "ok": ok, "change": change, "error": error}


Change = tuple[str, str, Callable[[], Any]]


def _items(tl: Any, selector: dict[str, Any]) -> list[tuple[str, Any]]:
    kind = selector.get("track_type", "video")
    tracks = [selector["track"]] if selector.get("track") else range(1, int(tl.GetTrackCount(kind)) + 1)
    pattern, color = selector.get("name"), selector.get("color")
    found = []
    for index in tracks:
        track_name = tl.GetTrackName(kind, index) or f"{kind} {index}"
        for item in tl.GetItemListInTrack(kind, index) or []:
            if pattern and not fnmatch.fnmatchcase(item.GetName(), pattern):
                continue
            if color and item.GetClipColor() != color:
                continue
            found.append((f"{tl.GetName()}/{track_name}/{item.GetName()}@{item.GetStart()}", item))
    return found


def _clips(project: Any, selector: dict[str, Any]) -> list[tuple[str, Any]]:
    pattern, bin_name = selector.get("name"), selector.get("bin")
    found = []
    stack = [(project.GetMediaPool().GetRootFolder(), "")]
    while stack:
        folder, path = stack.pop()
        here = f"{path}{folder.GetName()}"
        if not bin_name or folder.GetName() == bin_name:
            for clip in folder.GetClipList() or []:
                if not pattern or fnmatch.fnmatchcase(clip.GetName(), pattern):
                    found.append((f"{here}/{clip.GetName()}", clip))
        stack.extend((sub, here + "/") for sub in folder.GetSubFolderList() or [])
    return found


def _bin(project: Any, name: str | None) -> Any:
    pool = project.GetMediaPool()
    root = pool.GetRootFolder()
    if not name:
        return root
    stack = [root]
    while stack:
        folder = stack.pop()
        if folder.GetName() == name:
            return folder
        stack.extend(folder.GetSubFolderList() or [])
    return None


def _edit_add_marker(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    frame = int(op["frame"])
    args = (
        frame,
        op["color"],
        op.get("name", ""),
        op.get("note", ""),
        op.get("duration", 1),
        op.get("custom_data", ""),
    )
    wanted = {"color": args[1], "name": args[2], "note": args[3], "duration": args[4], "customData": args[5]}

    def add() -> bool:
        # An attempt killed after this marker was added leaves it there: the retry finds the very marker
        # and counts it done (Resolve refuses a second marker on a frame), so the edit lands once.
        if tl.AddMarker(*args):
            return True
        there = (tl.GetMarkers() or {}).get(frame)
        return there is not None and all(there.get(k) == v for k, v in wanted.items())

    return [(f"{tl.GetName()}@{frame}", f"add {op['color']} marker {op.get('name', '')!r}", add)]


def _edit_delete_markers(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    if op.get("frame") is not None:
        frame = int(op["frame"])
        return [(f"{tl.GetName()}@{frame}", "delete marker", lambda: tl.DeleteMarkerAtFrame(frame))]
    color = op.get("color", "All")
    count = sum(1 for m in tl.GetMarkers().values() if color == "All" or m["color"] == color)
    return [(tl.GetName(), f"delete {count} {color} marker(s)", lambda: count == 0 or tl.DeleteMarkersByColor(color))]


def _edit_set_clip_color(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    color = op["color"]
    return [(t, f"clip color -> {color}", partial(i.SetClipColor, color)) for t, i in _items(tl, op.get("items", {}))]


def _edit_set_clip_property(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    prop, value = op["property"], op["value"]
    return [
        (t, f"{prop} = {value!r}", partial(c.SetClipProperty, prop, value))
        for t, c in _clips(project, op.get("clips", {}))
    ]


def _edit_set_metadata(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    meta = dict(op["metadata"])
    return [
        (t, f"metadata {sorted(meta)}", partial(c.SetMetadata, meta)) for t, c in _clips(project, op.get("clips", {}))
    ]


def _edit_rename_timeline(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    return [(tl.GetName(), f"rename to {op['name']!r}", lambda: tl.SetName(op["name"]))]


def _edit_duplicate_timeline(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    return [(tl.GetName(), f"duplicate as {op['name']!r}", lambda: tl.DuplicateTimeline(op["name"]) is not None)]


def _edit_apply_lut(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    path, node = op["path"], int(op.get("node", 1))

    def apply(item: Any) -> bool:
        if os.path.isabs(path) and not os.path.isfile(path):
            raise OperationError(f"LUT file {path!r} does not exist on this host")
        return bool(item.SetLUT(node, path))

    return [(t, f"LUT {path} on node {node}", partial(apply, i)) for t, i in _items(tl, op.get("items", {}))]


def _edit_set_cdl(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    cdl = {
        "NodeIndex": str(int(op.get("node", 1))),
        "Slope": " ".join(str(v) for v in op["slope"]),
        "Offset": " ".join(str(v) for v in op["offset"]),
        "Power": " ".join(str(v) for v in op["power"]),
        "Saturation": str(op["saturation"]),
    }
    return [(t, f"CDL {cdl}", partial(i.SetCDL, cdl)) for t, i in _items(tl, op.get("items", {}))]


def _edit_import_media(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    pool = project.GetMediaPool()

    def apply(path: str) -> bool:
        if not os.path.isfile(path):
            raise OperationError(f"media file {path!r} does not exist on this host")
        target = _bin(project, op.get("bin"))
        if target is None:
            target = pool.AddSubFolder(pool.GetRootFolder(), op["bin"])
        pool.SetCurrentFolder(target)
        return len(pool.ImportMedia([path]) or []) == 1

    where = op.get("bin") or "Master"
    return [(p, f"import into bin {where!r}", partial(apply, p)) for p in op["paths"]]


def _edit_append_clips(project: Any, tl: Any, op: dict[str, Any]) -> list[Change]:
    pool = project.GetMediaPool()
    track = int(op.get("track", 1))

    def apply(clip: Any) -> bool:
        project.SetCurrentTimeline(tl)
        return len(pool.AppendToTimeline([{"mediaPoolItem": clip, "trackIndex": track}]) or []) == 1

    return [
        (t, f"append to {tl.GetName()} V{track}", partial(apply, c)) for t, c in _clips(project, op.get("clips", {}))
    ]


EDITS: dict[str, Callable[[Any, Any, dict[str, Any]], list[Change]]] = {
    "add_marker": _edit_add_marker,
    "delete_markers": _edit_delete_markers,
    "set_clip_color": _edit_set_clip_color,
    "set_clip_property": _edit_set_clip_property,
    "set_metadata": _edit_set_metadata,
    "rename_timeline": _edit_rename_timeline,
    "duplicate_timeline": _edit_duplicate_timeline,
    "apply_lut": _edit_apply_lut,
    "set_cdl": _edit_set_cdl,
    "import_media": _edit_import_media,
    "append_clips": _edit_append_clips,
}


# --- the media pool and proxies ---------------------------------------------------------

PROXY_PROPERTY, PROXY_PATH_PROPERTY = "Proxy", "Proxy Media Path"


def _walk_bins(root: Any) -> list[tuple[str, Any]]:
    """Every bin under `root` with its path from the root ("Footage/Day 1"), parents first."""
    found: list[tuple[str, Any]] = []
    stack = [(sub, str(sub.GetName())) for sub in reversed(root.GetSubFolderList() or [])]
    while stack:
        folder, path = stack.pop()
        found.append((path, folder))
        stack.extend((sub, f"{path}/{sub.GetName()}") for sub in reversed(folder.GetSubFolderList() or []))
    return found


def list_bins(resolve: Any) -> list[str]:
    """The bins of the current project's media pool, as paths from its root ("Footage", "Footage/Day 1")."""
    return [path for path, _ in _walk_bins(_current_project(resolve).GetMediaPool().GetRootFolder())]


def list_clips(resolve: Any, bin: str | None = None, patterns: list[str] | None = None) -> dict[str, Any]:
    """The video clips of the current project's media pool (or of one bin and the bins inside it) whose
    names match one of `patterns` (case-insensitive shell patterns; none: every clip).

    Returns `clips`: each with its `id`, `name`, `bin`, source `path`, `type`, `frames`, `fps`,
    `resolution`, and its proxy as Resolve shows it (`proxy`, `proxy_path`); and `skipped`: how
    many matching clips are not video (audio, timelines, generators) or have no file.
    """
    root = _current_project(resolve).GetMediaPool().GetRootFolder()
    bins = _walk_bins(root)
    if bin:
        wanted = bin.strip("/")
        chosen = [(p, f) for p, f in bins if p == wanted or p.startswith(wanted + "/")]
        if not chosen:
            known = ", ".join(p for p, _ in bins) or "none"
            raise OperationError(f"bin {bin!r} does not exist in the media pool (bins: {known})")
    else:
        chosen = [("", root), *bins]
    lowered = [p.lower() for p in patterns or []]
    clips: list[dict[str, Any]] = []
    skipped = 0
    for path, folder in chosen:
        for clip in folder.GetClipList() or []:
            name = str(clip.GetName())
            if lowered and not any(fnmatch.fnmatchcase(name.lower(), p) for p in lowered):
                continue
            props = clip.GetClipProperty() or {}
            source = str(props.get("File Path") or "")
            kind = str(props.get("Type") or "")
            if not source or "Video" not in kind:
                skipped += 1
                continue
            try:
                frames = int(float(props.get("Frames") or 0))
            except ValueError:
                frames = 0
            clips.append({
                "id": str(clip.GetUniqueId()), "name": name, "bin": path, "path": source, "type": kind,
                "frames": frames, "fps": str(props.get("FPS") or ""),
                "resolution": str(props.get("Resolution") or ""), "proxy": str(props.get(PROXY_PROPERTY) or "None"),
                "proxy_path": str(props.get(PROXY_PATH_PROPERTY) or ""),
            })  # fmt: skip
    return {"clips": clips, "skipped": skipped}


def link_proxies(resolve: Any, links: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Link each clip (`clip_id`) of the current project to its proxy file (`path`, absolute, as this host sees it).

    A clip already linked to that file is left as it is; one linked elsewhere is linked anew.
    Each result says whether the clip's "Proxy Media Path" reads back as the file: `clip_id`,
    `clip`, `path`, `ok`, `error`. Save the project after.
    """
    root = _current_project(resolve).GetMediaPool().GetRootFolder()
    by_id: dict[str, Any] = {}
    for _, folder in [("", root), *_walk_bins(root)]:
        for clip in folder.GetClipList() or []:
            by_id[str(clip.GetUniqueId())] = clip
    results: list[dict[str, Any]] = []
    for link in links:
        clip, path = by_id.get(link["clip_id"]), link["path"]
        if clip is None:
            results.append({"clip_id": link["clip_id"], "clip": link.get("clip", ""), "path": path, "ok": False,
                            "error": "the clip is no longer in the media pool"})  # fmt: skip
            continue
        error = _link(clip, path)
        results.append({"clip_id": link["clip_id"], "clip": str(clip.GetName()), "path": path, "ok": not error,
                        "error": error})  # fmt: skip
    return results


def _link(clip: Any, path: str) -> str:
    """Link `clip` to the proxy at `path` unless it is already; what went wrong, or "" (read back to be sure)."""
    if clip.GetClipProperty(PROXY_PATH_PROPERTY) != path and not _retry(lambda: clip.LinkProxyMedia(path)):
        return "Resolve refused the proxy (is the file readable from this host?)"
    shown = clip.GetClipProperty(PROXY_PATH_PROPERTY)
    return "" if shown == path else f"Resolve shows another proxy: {shown!r}"
