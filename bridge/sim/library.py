"""The simulator's project library: files that several simulated hosts share.

Real Resolve hosts of a farm share a project database; simulated ones share a snapshot
file (`library.json`, the whole library) and its journal (`library.json.journal`, one line
per change since the snapshot). A change to one object (a timeline item's colour, a clip's
metadata, a timeline's markers) appends one line: where the object sits and its new value.
A change to the library's shape (a project created, a timeline deleted) writes a new
snapshot and starts a new journal. Every write happens under an exclusive file lock after
catching up with what other hosts wrote, so concurrent hosts never lose each other's edits,
and a batch of 10,000 item edits costs 10,000 short appends instead of 10,000 rewrites of
the whole file.
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

from bridge.sim import media

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
NO_JOURNAL = "(no journal)"  # the generation of a journal that does not exist: never current
FORMAT = 1
LOCAL_DB = "Local Database"

Address = tuple[str | int, ...]
"""Where an object sits in the library: dict keys and list indices from the top."""


def new_id() -> str:
    return uuid.uuid4().hex[:12]


def get_in(data: Any, address: Address) -> Any:
    """The object at `address` in `data`."""
    for key in address:
        data = data[key]
    return data


def _set_in(data: Any, address: Address, value: Any) -> None:
    get_in(data, address[:-1])[address[-1]] = value


def _file_key(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class Library:
    """The shared library of one simulated farm: a snapshot, its journal and their lock.

    Note: a snapshot carries a generation id and its journal's first line names the same one.
    A new snapshot is renamed into place before its journal, so a journal of another
    generation is stale (its lines are already in the snapshot: a writer was stopped between
    the two renames, or a reader raced a writer) and is read as empty until a writer replaces
    it. A line torn by a writer killed mid-append is ignored by readers and cut off by the
    next writer. A change replaces the changed object in its parent: whoever holds the old
    object keeps that version of it.
    """

    compact_at = 1 << 20
    """Journal bytes (or the snapshot's size, if larger) past which a writer folds the journal into a new snapshot."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._journal_path = self.path.with_name(self.path.name + ".journal")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._thread_lock = threading.RLock()
        self._data: dict[str, Any] = {}
        self._snapshot_key: tuple[int, int, int] | None = None
        self._journal_offset = 0  # bytes of the journal already applied to _data
        self._stale_journal: str | None = None  # generation of a journal known to be stale
        self.ensure()

    def ensure(self) -> None:
        """Create the library with the demo project when it does not exist yet."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._thread_lock, self._locked():
            if not self.path.exists():
                self._compact(demo_library())

    def read(self) -> dict[str, Any]:
        """The current library. Callers must not modify it: use `update` or `update_at`."""
        with self._thread_lock:
            self._refresh()
            return self._data

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Change the library's shape: apply `change` to a copy of all of it and write a new snapshot.

        `change` returns a result; raising aborts the change and leaves the files untouched.
        """
        with self._thread_lock, self._locked():
            self._refresh()
            data = copy.deepcopy(self._data)
            result = change(data)
            self._compact(data)
            return result

    def update_at(self, address_of: Callable[[dict[str, Any]], Address], change: Callable[[Any], T]) -> T:
        """Change one object: apply `change` to a copy of the object at `address_of(library)` and journal it.

        `address_of` runs on the current library under the lock (it raises when the object is
        gone); `change` returns a result; raising aborts the change and leaves the files untouched.
        """
        with self._thread_lock, self._locked():
            journal_current = self._refresh()
            address = address_of(self._data)
            if not address:
                raise ValueError("update_at needs the address of an object inside the library: use update")
            value = copy.deepcopy(get_in(self._data, address))
            result = change(value)
            if journal_current and self._journal_offset < max(self.compact_at, self._snapshot_size()):
                self._append(address, value)
                _set_in(self._data, address, value)
            else:
                try:
                    _set_in(self._data, address, value)
                    self._compact(self._data)
                except BaseException:
                    self._snapshot_key = None  # memory may be ahead of the files: read them again
                    raise
            return result

    # --- reading ---------------------------------------------------------------------------

    def _refresh(self) -> bool:
        """Bring `_data` up to date; True when the journal on disk belongs to its snapshot."""
        if _file_key(os.stat(self.path)) != self._snapshot_key:
            self._load_snapshot()
        journal = self._catch_up()
        if journal != self._data.get("generation") and journal != self._stale_journal:
            # A writer replaced the snapshot, perhaps unseen by its stat (an inode reused at the
            # same size and time): read it again before calling this journal stale.
            self._load_snapshot()
            journal = self._catch_up()
            if journal != self._data.get("generation"):
                self._stale_journal = journal
        return journal == self._data.get("generation")

    def _load_snapshot(self) -> None:
        with open(self.path, encoding="utf-8") as f:
            key = _file_key(os.fstat(f.fileno()))
            self._data = json.load(f)
        self._snapshot_key, self._journal_offset = key, 0

    def _catch_up(self) -> str | None:
        """Apply the journal lines not applied yet, if the journal is of our generation; return its generation."""
        try:
            with open(self._journal_path, "rb") as f:
                header = f.readline()
                generation = json.loads(header).get("generation") if header.endswith(b"\n") else None
                if generation != self._data.get("generation"):
                    return generation
                f.seek(max(self._journal_offset, len(header)))
                tail = f.read()
        except FileNotFoundError:
            return NO_JOURNAL
        self._journal_offset = max(self._journal_offset, len(header))
        complete = tail[: tail.rfind(b"\n") + 1]  # a torn last line is not there yet
        for line in complete.splitlines():
            address, value = json.loads(line)
            _set_in(self._data, tuple(address), value)
        self._journal_offset += len(complete)
        return generation

    def _snapshot_size(self) -> int:
        return self._snapshot_key[2] if self._snapshot_key else 0

    # --- writing (under the lock) ---------------------------------------------------------

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

    def _append(self, address: Address, value: Any) -> None:
        line = (json.dumps([list(address), value], separators=(",", ":")) + "\n").encode()
        fd = os.open(self._journal_path, os.O_WRONLY | os.O_APPEND)
        try:
            if os.fstat(fd).st_size != self._journal_offset:
                os.ftruncate(fd, self._journal_offset)  # a line torn by a writer that was killed
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        self._journal_offset += len(line)

    def _compact(self, data: dict[str, Any]) -> None:
        """Write `data` as the new snapshot (a new generation), then an empty journal for it."""
        data["generation"] = new_id()
        header = json.dumps({"generation": data["generation"]}) + "\n"
        self._write_atomically(self.path, json.dumps(data, separators=(",", ":")))
        self._write_atomically(self._journal_path, header)
        self._data, self._snapshot_key = data, _file_key(os.stat(self.path))
        self._journal_offset = len(header.encode())

    def _write_atomically(self, path: Path, text: str) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".library-", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise


# --- the demo library -------------------------------------------------------------------

CLIP_COLORS = ["Orange", "Teal", "Violet", "Lime", "Navy", "Pink", "Tan", "Olive"]


def _clip(name: str, frames: int, fps: float, color: str) -> dict[str, Any]:
    """A demo clip whose source is a real movie (made on first use, `bridge.sim.media`)."""
    source = media.ensure(media.SourceClip(name, frames, fps, color))
    width, height = media.PICTURE
    return {
        "id": new_id(),
        "name": name,
        "color": color,
        "frames": frames,
        "properties": {
            "Clip Name": name,
            "File Path": str(source),
            "File Name": name,
            "FPS": fps,
            "Frames": str(frames),
            "Resolution": f"{width}x{height}",
            "Type": "Video + Audio",
            "Video Codec": "H.264",
            "Audio Codec": "AAC",
            "Audio Ch": "2",
            "Proxy": "None",
            "Proxy Media Path": "",
        },
        "metadata": {},
        "markers": {},
        "flags": [],
    }


def _timeline(
    name: str, seconds: int, fps: int, clips: list[dict[str, Any]], share: int = 2, trim: int = 0
) -> dict[str, Any]:
    """Clips one after another (each `1/share` of its length, from `trim` frames in) for `seconds`, titles on V2."""
    frames = seconds * fps
    start = 3600 * fps  # 01:00:00:00, as new Resolve timelines start
    v1, v2, a1 = [], [], []
    pos, i = 0, 0
    while pos < frames:
        clip = clips[i % len(clips)]
        length = min(frames - pos, max(fps * 2, clip["frames"] // share))
        v1.append(new_item(clip, start + pos, length, left_offset=trim))
        a1.append(new_item(clip, start + pos, length, left_offset=trim))
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
        # A second cut of Main: the same clips in another order, trimmed otherwise.
        _timeline("Main recut", 120, 24, clips[::-1], share=3, trim=24),
    ]
    return project


def demo_library() -> dict[str, Any]:
    """Project `Demo`: `Main` (2 min at 24 fps, 1080p), two shorter timelines and `Main recut` (a second cut of
    Main: its clips in another order and trims), over eight clips in bin `Footage` whose sources are real
    movies (`bridge.sim.media`)."""
    project = demo_project()
    return {
        "format": FORMAT,
        "databases": {
            LOCAL_DB: {"DbType": "Disk", "folders": [""], "projects": {project["id"]: project}},
            "Farm": {"DbType": "PostgreSQL", "IpAddress": "127.0.0.1", "folders": [""], "projects": {}},
        },
        "render_presets": {},
    }
