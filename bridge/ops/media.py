"""The media pool and proxies: bins, clips matched by name, proxy links made and read back.

Note: standard library only (see `bridge/__init__.py`).
"""

from __future__ import annotations

import fnmatch
from typing import Any

from bridge.errors import OperationError
from bridge.ops.common import _retry
from bridge.ops.projects import _current_project

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
