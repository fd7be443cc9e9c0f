"""Simulated `MediaPool`, `Folder` (bins), `MediaPoolItem` (clips) and `MediaStorage`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from bridge.sim import state as S
from bridge.sim.handles import Colored, Handle, Markers, put
from bridge.sim.library import Address, new_id, new_item
from bridge.sim.timeline import Timeline, TimelineItem

PROXY, PROXY_PATH = "Proxy", "Proxy Media Path"  # clip properties: "None" and "" until a proxy is linked
READ_ONLY_PROPERTIES = ("File Path", "Frames", "Type", PROXY, PROXY_PATH)  # as in Resolve
MEDIA_SUFFIXES = (".mov", ".mp4", ".mxf", ".avi", ".mkv", ".wav", ".mp3", ".braw", ".r3d", ".dng", ".tif", ".png")


def _probe(path: str) -> dict[str, Any]:
    """A new clip record for a media file, with its real frame count and rate when readable."""
    import av

    name = os.path.basename(path)
    frames, fps, offline, resolution, kind = 24 * 5, 24.0, False, "1920x1080", "Video"
    try:
        with av.open(path) as container:
            if container.streams.video:
                stream = container.streams.video[0]
                fps = float(stream.average_rate or fps)
                frames = stream.frames or frames
                resolution = f"{stream.codec_context.width}x{stream.codec_context.height}"
                kind = "Video + Audio" if container.streams.audio else "Video"
            elif container.streams.audio:
                resolution, kind = "", "Audio"
    except (av.error.FFmpegError, OSError):
        offline = True  # Resolve imports media it cannot decode too, and shows it offline
    return {
        "id": new_id(),
        "name": name,
        "color": "",
        "frames": int(frames),
        "properties": {
            "Clip Name": name,
            "File Path": path,
            "File Name": name,
            "FPS": fps,
            "Frames": str(int(frames)),
            "Resolution": resolution,
            "Type": kind,
            "Offline": "Yes" if offline else "No",
            PROXY: "None",
            PROXY_PATH: "",
        },
        "metadata": {},
        "markers": {},
        "flags": [],
    }


def _import(state: S.SimState, project_id: str, bin_id: str, paths: list[str]) -> list[MediaPoolItem]:
    files = [p for p in paths if os.path.isfile(p) and p.lower().endswith(MEDIA_SUFFIXES)]
    records = [_probe(p) for p in files]

    def add(data: dict[str, Any]) -> None:
        proj = S.project(data, state, project_id)
        target = S.find_bin(proj, bin_id)
        for rec in records:
            proj["clips"][rec["id"]] = rec
            target["clips"].append(rec["id"])

    if records:
        state.library_for(project_id).update(add)
    return [MediaPoolItem(state, project_id, r["id"]) for r in records]


class MediaPool(Handle):
    """The media pool of a simulated project."""

    def _address(self, data: dict[str, Any]) -> Address:
        return self._project_address(data)

    def GetUniqueId(self) -> str:
        return f"{self._pid}:pool"

    def GetRootFolder(self) -> Folder:
        return Folder(self._state, self._pid, self._get()["root_bin"]["id"])

    def GetCurrentFolder(self) -> Folder:
        return Folder(self._state, self._pid, self._state.bin_ids.get(self._pid) or self._get()["root_bin"]["id"])

    def SetCurrentFolder(self, folder: Folder) -> bool:
        try:
            S.find_bin(self._get(), folder.GetUniqueId())
        except S.Gone:
            return False
        self._state.bin_ids[self._pid] = folder.GetUniqueId()
        return True

    def AddSubFolder(self, folder: Folder, name: str) -> Folder | None:
        if not name:
            return None
        new: dict[str, Any] = {"id": new_id(), "name": name, "clips": [], "bins": []}
        self._change(lambda proj: S.find_bin(proj, folder.GetUniqueId())["bins"].append(new))
        return Folder(self._state, self._pid, new["id"])

    def ImportMedia(self, items: list[Any]) -> list[MediaPoolItem]:
        paths = [i["FilePath"] if isinstance(i, dict) else str(i) for i in items]
        return _import(self._state, self._pid, self.GetCurrentFolder().GetUniqueId(), paths)

    def CreateEmptyTimeline(self, name: str) -> Timeline | None:
        def create(proj: dict[str, Any]) -> str | None:
            if not name or any(t["name"] == name for t in proj["timelines"]):
                return None
            fps = round(float(proj["settings"]["timelineFrameRate"]))
            tl = {
                "id": new_id(),
                "name": name,
                "start_frame": 3600 * fps,
                "frames": 0,
                "start_timecode": "01:00:00:00",
                "settings": {},
                "tracks": {
                    "video": [{"name": "Video 1", "items": []}],
                    "audio": [{"name": "Audio 1", "items": []}],
                    "subtitle": [],
                },
                "markers": {},
            }
            proj["timelines"].append(tl)
            return str(tl["id"])

        tid = self._change(create)
        return Timeline(self._state, self._pid, tid) if tid else None

    def AppendToTimeline(self, *args: Any) -> list[TimelineItem]:
        """Append clips (items, a list of items, or a list of clipInfo dicts) to the current timeline.

        Note: a clipInfo's endFrame is exclusive, as in Resolve.
        """
        entries = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
        tid = self._state.timeline_ids.get(self._pid)
        if not tid or not entries:
            return []

        def append(proj: dict[str, Any]) -> list[tuple[str, Address]]:
            tl = S.timeline(proj, tid)
            added: list[str] = []
            ends: dict[int, int] = {}  # track index -> end of its last item, kept as clips are added
            for entry in entries:
                info = entry if isinstance(entry, dict) else {"mediaPoolItem": entry}
                mpi = info.get("mediaPoolItem")
                if not isinstance(mpi, MediaPoolItem):
                    continue
                clip = S.clip(proj, mpi.GetUniqueId())
                first = int(info.get("startFrame", 0))
                last = int(info.get("endFrame", clip["frames"]))
                if last <= first:
                    continue
                tracks = tl["tracks"]["video"]
                index = int(info.get("trackIndex", 1))
                if not 1 <= index <= len(tracks):
                    continue
                items = tracks[index - 1]["items"]
                if index not in ends:
                    ends[index] = max([tl["start_frame"]] + [i["end"] for i in items])
                record = info.get("recordFrame")
                start = int(record) if record is not None else ends[index]
                item = new_item(clip, start, last - first, left_offset=first)
                items.append(item)
                ends[index] = max(ends[index], item["end"])
                tl["frames"] = max(tl["frames"], item["end"] - tl["start_frame"])
                added.append(item["id"])
            where: dict[str, Address] = {}  # so the new items' handles find them without a scan
            for index in ends:
                items = tl["tracks"]["video"][index - 1]["items"]
                items.sort(key=lambda i: i["start"])
                where.update((it["id"], ("tracks", "video", index - 1, "items", n)) for n, it in enumerate(items))
            return [(i, where[i]) for i in added]

        added = self._change(append)
        return [TimelineItem(self._state, self._pid, tid, i, hint) for i, hint in added]

    def DeleteTimelines(self, timeline: list[Timeline]) -> bool:
        doomed = {t.GetUniqueId() for t in timeline}

        def delete(proj: dict[str, Any]) -> bool:
            before = len(proj["timelines"])
            proj["timelines"] = [t for t in proj["timelines"] if t["id"] not in doomed]
            return len(proj["timelines"]) == before - len(doomed)

        return self._change(delete)

    def DeleteClips(self, clips: list[MediaPoolItem]) -> bool:
        doomed = {c.GetUniqueId() for c in clips}

        def delete(proj: dict[str, Any]) -> bool:
            stack = [proj["root_bin"]]
            while stack:
                b = stack.pop()
                b["clips"] = [c for c in b["clips"] if c not in doomed]
                stack.extend(b["bins"])
            for cid in doomed:
                proj["clips"].pop(cid, None)
            return True

        return self._change(delete)

    def MoveClips(self, clips: list[MediaPoolItem], targetFolder: Folder) -> bool:
        moving = [c.GetUniqueId() for c in clips]

        def move(proj: dict[str, Any]) -> bool:
            target = S.find_bin(proj, targetFolder.GetUniqueId())
            stack = [proj["root_bin"]]
            while stack:
                b = stack.pop()
                b["clips"] = [c for c in b["clips"] if c not in moving]
                stack.extend(b["bins"])
            target["clips"].extend(moving)
            return True

        return self._change(move)


class Folder(Handle):
    """A bin of a simulated media pool."""

    def __init__(self, state: S.SimState, project_id: str, bin_id: str) -> None:
        super().__init__(state, project_id)
        self._bid = bin_id

    def _address(self, data: dict[str, Any]) -> Address:
        return self._in_project(data, lambda proj: S.bin_address(proj, self._bid))

    def GetUniqueId(self) -> str:
        return self._bid

    def GetName(self) -> str:
        return str(self._get()["name"])

    def GetClipList(self) -> list[MediaPoolItem]:
        return [MediaPoolItem(self._state, self._pid, c) for c in self._get()["clips"]]

    def GetClips(self) -> dict[int, MediaPoolItem]:
        return dict(enumerate(self.GetClipList(), 1))

    def GetSubFolderList(self) -> list[Folder]:
        return [Folder(self._state, self._pid, b["id"]) for b in self._get()["bins"]]

    def GetIsFolderStale(self) -> bool:
        return False


class MediaPoolItem(Markers, Colored):
    """A clip in a simulated media pool."""

    def __init__(self, state: S.SimState, project_id: str, clip_id: str) -> None:
        super().__init__(state, project_id)
        self._cid = clip_id

    def _address(self, data: dict[str, Any]) -> Address:
        return self._in_project(data, lambda proj: S.clip_address(proj, self._cid))

    def GetUniqueId(self) -> str:
        return self._cid

    def GetMediaId(self) -> str:
        return self._cid

    def GetName(self) -> str:
        return str(self._get()["name"])

    def SetName(self, name: str) -> bool:
        return bool(name) and self._change(put("name", value=name))

    def GetMetadata(self, metadataType: str | None = None) -> Any:
        meta = dict(self._get()["metadata"])
        return meta if metadataType is None else meta.get(metadataType, "")

    def SetMetadata(self, metadataType: Any, metadataValue: str | None = None) -> bool:
        updates = dict(metadataType) if isinstance(metadataType, dict) else {metadataType: metadataValue}
        if not updates or not all(isinstance(k, str) and isinstance(v, str) for k, v in updates.items()):
            return False
        return self._change(put("metadata", value={**self._get()["metadata"], **updates}))

    def GetClipProperty(self, propertyName: str | None = None) -> Any:
        props = dict(self._get()["properties"])
        return props if propertyName is None else props.get(propertyName, "")

    def SetClipProperty(self, propertyName: str, propertyValue: Any) -> bool:
        if propertyName in READ_ONLY_PROPERTIES or not isinstance(propertyValue, (str, int, float)):
            return False  # read-only properties, as in Resolve

        def change(c: dict[str, Any]) -> bool:
            c["properties"][propertyName] = propertyValue
            if propertyName == "Clip Name":
                c["name"] = str(propertyValue)
            return True

        return self._change(change)

    def LinkProxyMedia(self, proxyMediaFilePath: str) -> bool:
        """Link a proxy file: False for a relative path, a missing or undecodable file, as Resolve refuses them.
        With the `proxy-by-name` quirk, a file of the same name with another extension beside it is linked."""
        path = proxyMediaFilePath
        if not isinstance(path, str) or not os.path.isabs(path) or not os.path.isfile(path):
            return False
        if self._state.config.quirks.proxy_by_name:
            stem, asked = os.path.splitext(os.path.basename(path))
            folder = os.path.dirname(path)
            clashing = sorted(f for f in os.listdir(folder) if os.path.splitext(f)[0] == stem and f != stem + asked)
            path = os.path.join(folder, clashing[0]) if clashing else path
        resolution = _video_resolution(path)
        if resolution is None:
            return False

        def link(c: dict[str, Any]) -> bool:
            c["properties"].update({PROXY: resolution, PROXY_PATH: path})
            return True

        return self._change(link)

    def UnlinkProxyMedia(self) -> bool:
        """Unlink the clip's proxy: False when it has none."""

        def unlink(c: dict[str, Any]) -> bool:
            if c["properties"].get(PROXY_PATH, "") == "":
                return False
            c["properties"].update({PROXY: "None", PROXY_PATH: ""})
            return True

        return self._change(unlink)


def _video_resolution(path: str) -> str | None:
    """ "WIDTHxHEIGHT" of a file's first video stream; None when it has none or cannot be decoded."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                return None
            stream = container.streams.video[0]
            return f"{stream.codec_context.width}x{stream.codec_context.height}"
    except (av.error.FFmpegError, OSError):
        return None


class MediaStorage:
    """The file system as Resolve's Media page sees it."""

    def __init__(self, state: S.SimState) -> None:
        self._state = state

    def GetMountedVolumeList(self) -> list[str]:
        return [str(Path(os.sep).resolve())]

    def GetSubFolderList(self, folderPath: str) -> list[str]:
        if not os.path.isdir(folderPath):
            return []
        return sorted(str(p) for p in Path(folderPath).iterdir() if p.is_dir())

    def GetFileList(self, folderPath: str) -> list[str]:
        if not os.path.isdir(folderPath):
            return []
        return sorted(str(p) for p in Path(folderPath).iterdir() if p.is_file())

    def AddItemListToMediaPool(self, *args: Any) -> list[MediaPoolItem]:
        entries = list(args[0]) if len(args) == 1 and isinstance(args[0], list) else list(args)
        pid = self._state.project_id
        if pid is None:
            return []
        paths = [e["media"] if isinstance(e, dict) else str(e) for e in entries]
        proj = S.project(self._state.library_for(pid).read(), self._state, pid)
        bin_id = self._state.bin_ids.get(pid) or proj["root_bin"]["id"]
        return _import(self._state, pid, bin_id, paths)
