"""Edits: a batch of operations (markers, clip colours and properties, metadata, LUTs, CDLs, media,
timelines) applied to a timeline, each reported.

Note: standard library only (see `bridge/__init__.py`).
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable
from functools import partial
from typing import Any

from bridge.errors import OperationError
from bridge.ops.projects import _current_project, _timeline


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
