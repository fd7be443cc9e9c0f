"""The simulator's project library: one JSON file that several simulated hosts share.

Real Resolve hosts of a farm share a project database; simulated ones share this file.
Every change is a read-modify-write under an exclusive file lock, written to a temporary
file and renamed into place, so concurrent hosts never lose each other's edits and a
reader never sees half a file.

Note: readers cache the parsed file keyed by (inode, mtime, size) and re-read only when
another host has replaced it; a write always re-reads under the lock first.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import sys
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

if sys.platform == "win32":  # pragma: no cover - exercised on Windows hosts only
    import msvcrt

    def _lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_LOCK, 1)

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


T = TypeVar("T")
FORMAT = 1
LOCAL_DB = "Local Database"


def new_id() -> str:
    return uuid.uuid4().hex[:12]


class Library:
    """The shared library file of one simulated farm."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.RLock()
        self._cache_key: tuple[int, int, int] | None = None
        self._cache: dict[str, Any] = {}
        self.ensure()

    def ensure(self) -> None:
        """Create the file with the demo library when it does not exist yet."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked():
            if not self.path.exists():
                self._write(demo_library())

    def read(self) -> dict[str, Any]:
        """The current library. Callers must not modify it: use `update`."""
        with self._thread_lock:
            st = os.stat(self.path)
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            if key != self._cache_key:
                with open(self.path, encoding="utf-8") as f:
                    self._cache = json.load(f)
                self._cache_key = key
            return self._cache

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Apply `change` to a fresh copy of the library under the lock and save it.

        `change` returns a result; raising aborts the change and leaves the file untouched.
        """
        with self._thread_lock, self._locked():
            self._cache_key = None
            data = copy.deepcopy(self.read())
            result = change(data)
            self._write(data)
            return result

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
            try:
                yield
            finally:
                _unlock(fd)
        finally:
            os.close(fd)

    def _write(self, data: dict[str, Any]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".library-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, separators=(",", ":"))
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


# --- the demo library -------------------------------------------------------------------

CLIP_COLORS = ["Orange", "Teal", "Violet", "Lime", "Navy", "Pink", "Tan", "Olive"]


def _clip(name: str, frames: int, fps: float, color: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "name": name,
        "color": color,
        "frames": frames,
        "properties": {
            "Clip Name": name,
            "File Path": f"/media/demo/{name}",
            "File Name": name,
            "FPS": fps,
            "Frames": str(frames),
            "Resolution": "1920x1080",
            "Type": "Video + Audio",
            "Video Codec": "Apple ProRes 422 HQ",
            "Audio Ch": "2",
        },
        "metadata": {},
        "markers": {},
        "flags": [],
    }


def _timeline(name: str, seconds: int, fps: int, clips: list[dict[str, Any]]) -> dict[str, Any]:
    frames = seconds * fps
    start = 3600 * fps  # 01:00:00:00, as new Resolve timelines start
    v1, v2, a1 = [], [], []
    pos, i = 0, 0
    while pos < frames:
        clip = clips[i % len(clips)]
        length = min(frames - pos, max(fps * 2, clip["frames"] // 2))
        v1.append(new_item(clip, start + pos, length))
        a1.append(new_item(clip, start + pos, length))
        pos += length
        i += 1
    # Titles on V2 over part of the timeline.
    for k in range(0, frames, fps * 20):
        clip = clips[(k // fps) % len(clips)]
        v2.append(new_item(clip, start + k, min(fps * 4, frames - k), name=f"Title {k // fps}s"))
    return {
        "id": new_id(),
        "name": name,
        "start_frame": start,
        "frames": frames,
        "start_timecode": "01:00:00:00",
        "settings": {},
        "tracks": {
            "video": [{"name": "Video 1", "items": v1}, {"name": "Video 2", "items": v2}],
            "audio": [{"name": "Audio 1", "items": a1}],
            "subtitle": [],
        },
        "markers": {},
    }


def new_item(
    clip: dict[str, Any], start: int, length: int, name: str | None = None, left_offset: int = 0
) -> dict[str, Any]:
    """A timeline item of `length` frames from `start` showing `clip` from `left_offset`."""
    return {
        "id": new_id(),
        "name": name or clip["name"],
        "clip": clip["id"],
        "start": start,
        "end": start + length,
        "left_offset": left_offset,
        "color": clip["color"],
        "properties": {},
        "markers": {},
        "flags": [],
        "luts": {},
        "cdl": {},
        "enabled": True,
    }


def new_project(name: str, folder: str = "") -> dict[str, Any]:
    root = {"id": new_id(), "name": "Master", "clips": [], "bins": []}
    return {
        "id": new_id(),
        "name": name,
        "folder": folder,
        "settings": {
            "timelineFrameRate": "24",
            "timelineResolutionWidth": "1920",
            "timelineResolutionHeight": "1080",
            "timelinePlaybackFrameRate": "24",
        },
        "timelines": [],
        "clips": {},
        "root_bin": root,
        "saved": False,
    }


def demo_project() -> dict[str, Any]:
    project = new_project("Demo")
    project["saved"] = True
    clips = [_clip(f"A{n:03d}_C{n:03d}.mov", 24 * (6 + n), 24.0, c) for n, c in enumerate(CLIP_COLORS, 1)]
    project["clips"] = {c["id"]: c for c in clips}
    project["root_bin"]["bins"] = [{"id": new_id(), "name": "Footage", "clips": [c["id"] for c in clips], "bins": []}]
    project["timelines"] = [
        _timeline("Main", 120, 24, clips),
        _timeline("Teaser", 15, 24, clips[2:]),
        _timeline("Social", 30, 24, clips[4:]),
    ]
    return project


def demo_library() -> dict[str, Any]:
    """Project `Demo`: `Main` (2 min at 24 fps, 1080p) and two shorter timelines."""
    project = demo_project()
    return {
        "format": FORMAT,
        "databases": {
            LOCAL_DB: {"DbType": "Disk", "folders": [""], "projects": {project["id"]: project}},
            "Farm": {"DbType": "PostgreSQL", "IpAddress": "127.0.0.1", "folders": [""], "projects": {}},
        },
        "render_presets": {},
    }
