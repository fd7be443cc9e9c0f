"""The base of every simulated API object: a handle that finds its data in the library."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from bridge.sim import state as S
from bridge.sim.library import Address, get_in

T = TypeVar("T")


def put(*path: str, value: Any) -> Callable[[dict[str, Any]], bool]:
    """A change for `Handle._change` that sets obj[path[0]]...[path[-1]] = value."""

    def change(obj: dict[str, Any]) -> bool:
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value
        return True

    return change


class Handle:
    """An id into the shared library, read fresh on every call.

    Note: a handle whose object was deleted (here or by another host) raises `Gone` from
    then on; Resolve's own proxies go stale the same way.
    """

    def __init__(self, state: S.SimState, project_id: str) -> None:
        self._state = state
        self._pid = project_id

    def _address(self, data: dict[str, Any]) -> Address:
        """Where this handle's object sits in the library `data`."""
        raise NotImplementedError

    def _project_address(self, data: dict[str, Any]) -> Address:
        return S.project_address(data, self._state, self._pid)

    def _in_project(self, data: dict[str, Any], find: Callable[[dict[str, Any]], Address]) -> Address:
        """The address of what `find` locates inside this handle's project (given the project)."""
        project = self._project_address(data)
        return (*project, *find(get_in(data, project)))

    def _project_of(self, data: dict[str, Any]) -> dict[str, Any]:
        return S.project(data, self._state, self._pid)

    def _locate(self, data: dict[str, Any]) -> dict[str, Any]:
        return get_in(data, self._address(data))

    def _get(self) -> dict[str, Any]:
        return self._locate(self._state.library_for(self._pid).read())

    def _change(self, change: Callable[[Any], T], *within: str) -> T:
        """Apply `change` to this handle's object (or to its part `within`, e.g. "markers") and save it."""
        return self._state.library_for(self._pid).update_at(lambda data: (*self._address(data), *within), change)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.GetUniqueId() == self.GetUniqueId()  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(self.GetUniqueId())  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"<sim {type(self).__name__} {self.GetUniqueId()}>"  # type: ignore[attr-defined]


class Markers(Handle):
    """Markers, as Timeline, TimelineItem and MediaPoolItem all carry them."""

    def AddMarker(
        self, frameId: float, color: str, name: str, note: str, duration: float, customData: str | None = None
    ) -> bool:
        if color not in S.MARKER_COLORS or float(duration) < 1 or float(frameId) < 0:
            return False
        key = str(S.number(frameId))

        def add(markers: dict[str, Any]) -> bool:
            if key in markers:
                return False  # Resolve refuses a second marker on the same frame
            markers[key] = {
                "color": color,
                "duration": S.number(duration),
                "note": note,
                "name": name,
                "customData": customData or "",
            }
            return True

        return self._change(add, "markers")

    def GetMarkers(self) -> dict[float, dict[str, Any]]:
        return {S.number(k): dict(v) for k, v in sorted(self._get()["markers"].items(), key=lambda kv: float(kv[0]))}

    def GetMarkerByCustomData(self, customData: str) -> dict[float, dict[str, Any]]:
        return {k: v for k, v in self.GetMarkers().items() if v["customData"] == customData}

    def GetMarkerCustomData(self, frameId: float) -> str:
        marker = self._get()["markers"].get(str(S.number(frameId)))
        return marker["customData"] if marker else ""

    def UpdateMarkerCustomData(self, frameId: float, customData: str) -> bool:
        key = str(S.number(frameId))

        def update(markers: dict[str, Any]) -> bool:
            if key not in markers:
                return False
            markers[key]["customData"] = customData
            return True

        return self._change(update, "markers")

    def _delete_markers(self, keep: Callable[[str, dict[str, Any]], bool]) -> bool:
        def delete(markers: dict[str, Any]) -> bool:
            doomed = [k for k, v in markers.items() if not keep(k, v)]
            for k in doomed:
                del markers[k]
            return bool(doomed)

        return self._change(delete, "markers")

    def DeleteMarkersByColor(self, color: str) -> bool:
        if color != "All" and color not in S.MARKER_COLORS:
            return False
        return self._delete_markers(lambda k, v: color != "All" and v["color"] != color)

    def DeleteMarkerAtFrame(self, frameNum: float) -> bool:
        key = str(S.number(frameNum))
        return self._delete_markers(lambda k, v: k != key)

    def DeleteMarkerByCustomData(self, customData: str) -> bool:
        return self._delete_markers(lambda k, v: v["customData"] != customData)


class Colored(Handle):
    """Clip colour and flags, as TimelineItem and MediaPoolItem carry them."""

    def GetClipColor(self) -> str:
        return str(self._get().get("color", ""))

    def SetClipColor(self, colorName: str) -> bool:
        if colorName not in S.CLIP_COLORS:
            return False
        return self._change(put("color", value=colorName))

    def ClearClipColor(self) -> bool:
        return self._change(put("color", value=""))

    def AddFlag(self, color: str) -> bool:
        if color not in S.MARKER_COLORS:
            return False

        def add(obj: dict[str, Any]) -> bool:
            if color not in obj["flags"]:
                obj["flags"].append(color)
            return True

        return self._change(add)

    def GetFlagList(self) -> list[str]:
        return list(self._get()["flags"])

    def ClearFlags(self, color: str) -> bool:
        def clear(obj: dict[str, Any]) -> bool:
            obj["flags"] = [] if color == "All" else [f for f in obj["flags"] if f != color]
            return True

        return self._change(clear)
