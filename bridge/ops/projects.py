"""The application, its projects and their timelines: describe Resolve, open a project (or a .drp), read
timelines and what is on them, save and close.

Note: standard library only (see `bridge/__init__.py`).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import partial
from typing import Any

from bridge.errors import OperationError, ScriptingUnavailable
from bridge.ops.common import _retry

UNTITLED = "Untitled Project"
IMPORTS_FOLDER = "resolve-farm imports"  # the project folder where .drp files are imported, one project per content
SCRIPTING_STUDIO_ONLY_SINCE = (21, 1)  # Resolve 21.1 made Python scripting a Studio feature


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
