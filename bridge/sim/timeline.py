"""Simulated `Timeline` and `TimelineItem`.

Note: `Timeline.GetEndFrame()` is exclusive here (start + duration), like
`TimelineItem.GetEnd()`; the bridge's `ops` is the one place that turns it into an
inclusive last frame for MarkOut.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from bridge.sim import state as S
from bridge.sim.handles import Colored, Markers, put
from bridge.sim.library import Address, get_in, new_id

TIMELINE_SETTINGS = ("timelineFrameRate", "timelineResolutionWidth", "timelineResolutionHeight")
LUT_SUFFIXES = (".cube", ".3dl", ".dat", ".ilut", ".olut", ".davlut")


def _track_type(trackType: str) -> str | None:
    return trackType if trackType in S.TRACK_TYPES else None


class Timeline(Markers):
    """A timeline of a simulated project."""

    def __init__(self, state: S.SimState, project_id: str, timeline_id: str) -> None:
        super().__init__(state, project_id)
        self._tid = timeline_id

    def _address(self, data: dict[str, Any]) -> Address:
        return self._in_project(data, lambda proj: S.timeline_address(proj, self._tid))

    def GetUniqueId(self) -> str:
        return self._tid

    def GetName(self) -> str:
        return str(self._get()["name"])

    def SetName(self, timelineName: str) -> bool:
        if not timelineName:
            return False

        def rename(data: dict[str, Any]) -> bool:
            proj = self._project_of(data)
            if any(t["name"] == timelineName and t["id"] != self._tid for t in proj["timelines"]):
                return False  # timeline names are unique within a project
            S.timeline(proj, self._tid)["name"] = timelineName
            return True

        return self._state.library_for(self._pid).update(rename)

    def GetStartFrame(self) -> int:
        return int(self._get()["start_frame"])

    def GetEndFrame(self) -> int:
        tl = self._get()
        return int(tl["start_frame"] + tl["frames"])

    def GetStartTimecode(self) -> str:
        return str(self._get()["start_timecode"])

    def SetStartTimecode(self, timecode: str) -> bool:
        parts = timecode.replace(";", ":").split(":")
        if len(parts) != 4 or not all(p.isdigit() for p in parts):
            return False
        h, m, s, f = (int(p) for p in parts)
        fps = round(float(self.GetSetting("timelineFrameRate")))
        if m > 59 or s > 59 or f >= fps:
            return False
        start = ((h * 60 + m) * 60 + s) * fps + f

        def change(tl: dict[str, Any]) -> bool:
            shift = start - tl["start_frame"]
            tl["start_frame"], tl["start_timecode"] = start, timecode
            for kind in S.TRACK_TYPES:
                for track in tl["tracks"][kind]:
                    for it in track["items"]:
                        it["start"] += shift
                        it["end"] += shift
            return True

        return self._change(change)

    def GetSetting(self, settingName: str = "") -> Any:
        data = self._state.library_for(self._pid).read()
        merged = {**self._project_of(data)["settings"], **S.timeline(self._project_of(data), self._tid)["settings"]}
        if not settingName:
            return merged
        return merged.get(settingName, "")

    def SetSetting(self, settingName: str, settingValue: str) -> bool:
        if settingName not in TIMELINE_SETTINGS or not str(settingValue).replace(".", "", 1).isdigit():
            return False
        return self._change(put(settingName, value=str(settingValue)), "settings")

    def GetTrackCount(self, trackType: str) -> int:
        kind = _track_type(trackType)
        return len(self._get()["tracks"][kind]) if kind else 0

    def GetTrackName(self, trackType: str, trackIndex: int) -> str:
        kind = _track_type(trackType)
        tracks = self._get()["tracks"][kind] if kind else []
        return str(tracks[trackIndex - 1]["name"]) if 1 <= trackIndex <= len(tracks) else ""

    def SetTrackName(self, trackType: str, trackIndex: int, name: str) -> bool:
        kind = _track_type(trackType)
        if not kind:
            return False

        def change(tl: dict[str, Any]) -> bool:
            tracks = tl["tracks"][kind]
            if not 1 <= trackIndex <= len(tracks):
                return False
            tracks[trackIndex - 1]["name"] = name
            return True

        return self._change(change)

    def GetItemListInTrack(self, trackType: str, index: int) -> list[TimelineItem]:
        kind = _track_type(trackType)
        tracks = self._get()["tracks"][kind] if kind else []
        if kind is None or not 1 <= index <= len(tracks):
            return []
        return [
            TimelineItem(self._state, self._pid, self._tid, it["id"], ("tracks", kind, index - 1, "items", i))
            for i, it in enumerate(tracks[index - 1]["items"])
        ]

    def GetItemsInTrack(self, trackType: str, index: int) -> dict[int, TimelineItem]:
        return dict(enumerate(self.GetItemListInTrack(trackType, index), 1))

    def DuplicateTimeline(self, timelineName: str | None = None) -> Timeline | None:
        def duplicate(data: dict[str, Any]) -> str | None:
            proj = self._project_of(data)
            source = S.timeline(proj, self._tid)
            name = timelineName or f"{source['name']} copy"
            if any(t["name"] == name for t in proj["timelines"]):
                return None
            copied = copy.deepcopy(source)
            copied["id"], copied["name"] = new_id(), name
            for kind in S.TRACK_TYPES:
                for track in copied["tracks"][kind]:
                    for it in track["items"]:
                        it["id"] = new_id()
            proj["timelines"].append(copied)
            return str(copied["id"])

        new = self._state.library_for(self._pid).update(duplicate)
        return Timeline(self._state, self._pid, new) if new else None


class TimelineItem(Markers, Colored):
    """A clip on a track of a simulated timeline."""

    def __init__(self, state: S.SimState, project_id: str, timeline_id: str, item_id: str, hint: Address = ()) -> None:
        super().__init__(state, project_id)
        self._tid = timeline_id
        self._iid = item_id
        self._hint = hint  # where the item was last seen in its timeline

    def _address(self, data: dict[str, Any]) -> Address:
        def find(proj: dict[str, Any]) -> Address:
            timeline = S.timeline_address(proj, self._tid)
            self._hint = S.item_address(get_in(proj, timeline), self._iid, self._hint)
            return (*timeline, *self._hint)

        return self._in_project(data, find)

    def GetUniqueId(self) -> str:
        return self._iid

    def GetName(self) -> str:
        return str(self._get()["name"])

    def SetName(self, name: str) -> bool:
        return bool(name) and self._change(put("name", value=name))

    def GetStart(self, subframe_precision: bool = False) -> int | float:
        return self._get()["start"]

    def GetEnd(self, subframe_precision: bool = False) -> int | float:
        return self._get()["end"]

    def GetDuration(self, subframe_precision: bool = False) -> int | float:
        it = self._get()
        return it["end"] - it["start"]

    def GetLeftOffset(self, subframe_precision: bool = False) -> int | float:
        return int(self._get().get("left_offset", 0))

    def GetRightOffset(self, subframe_precision: bool = False) -> int | float:
        return int(self._get().get("right_offset", 0))

    def GetProperty(self, propertyKey: str | None = None) -> Any:
        props = {"Pan": 0.0, "Tilt": 0.0, "ZoomX": 1.0, "ZoomY": 1.0, "Opacity": 100.0, **self._get()["properties"]}
        return props if propertyKey is None else props.get(propertyKey)

    def SetProperty(self, propertyKey: str, propertyValue: Any) -> bool:
        if not isinstance(propertyValue, (int, float, str, bool)):
            return False
        return self._change(put("properties", propertyKey, value=propertyValue))

    def GetMediaPoolItem(self) -> Any:
        from bridge.sim.mediapool import MediaPoolItem

        clip_id = self._get().get("clip")
        return MediaPoolItem(self._state, self._pid, clip_id) if clip_id else None

    def GetNumNodes(self) -> int:
        return 1  # the simulator's grades are a single node

    def SetLUT(self, nodeIndex: int, lutPath: str) -> bool:
        if not 1 <= int(nodeIndex) <= self.GetNumNodes():
            return False
        if not lutPath.lower().endswith(LUT_SUFFIXES):
            return False
        if os.path.isabs(lutPath) and not os.path.isfile(lutPath):
            return False  # Resolve refuses a LUT file it cannot read
        return self._change(put("luts", str(int(nodeIndex)), value=lutPath))

    def GetLUT(self, nodeIndex: int) -> str:
        return str(self._get()["luts"].get(str(int(nodeIndex)), ""))

    def SetCDL(self, cdlMap: dict[str, Any]) -> bool:
        try:
            node = int(cdlMap["NodeIndex"])
            triples = {k: [float(v) for v in str(cdlMap[k]).split()] for k in ("Slope", "Offset", "Power")}
            saturation = float(cdlMap["Saturation"])
        except (KeyError, ValueError, TypeError):
            return False
        if not 1 <= node <= self.GetNumNodes() or any(len(v) != 3 for v in triples.values()):
            return False
        cdl = {**triples, "Saturation": saturation}
        return self._change(put("cdl", str(node), value=cdl))

    def SetClipEnabled(self, Bool: bool) -> bool:
        return self._change(put("enabled", value=bool(Bool)))

    def GetClipEnabled(self) -> bool:
        return bool(self._get().get("enabled", True))
