"""What one simulated Resolve holds between calls, and how API handles find their data.

API objects (`Project`, `Timeline`, ...) are thin handles: ids into the shared library. A
handle reads the object's current data on every call and changes it through
`Library.update`, so an edit made on one simulated host is seen by all the others.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from bridge.colors import CLIP_COLORS, MARKER_COLORS
from bridge.sim.config import SimConfig
from bridge.sim.holds import COLLABORATION, ProjectHolds, ReadOnlyCopy
from bridge.sim.library import LOCAL_DB, Address, Library, get_in
from bridge.sim.renderer import Renderer, RenderJob

__all__ = ["CLIP_COLORS", "MARKER_COLORS"]  # re-exported for the API handles
TRACK_TYPES = ("video", "audio", "subtitle")


class Gone(LookupError):
    """The object a handle points at no longer exists (deleted by this or another host)."""


@dataclass
class ProjectRenderState:
    """A project's render page: current format, codec, settings and queue (per host)."""

    format: str = "mov"
    codec: str = "ProRes422HQ"
    mode: int = 1
    settings: dict[str, Any] = field(default_factory=dict)
    jobs: list[RenderJob] = field(default_factory=list)


@dataclass
class SimState:
    """One simulated Resolve application: its library, session state and renderer."""

    config: SimConfig
    library: Library
    database: str = LOCAL_DB
    folder: str = ""
    project_id: str | None = None
    timeline_ids: dict[str, str] = field(default_factory=dict)  # project id -> current timeline
    bin_ids: dict[str, str] = field(default_factory=dict)  # project id -> current bin
    render: dict[str, ProjectRenderState] = field(default_factory=dict)
    read_only: dict[str, ReadOnlyCopy] = field(default_factory=dict)  # project id -> this host's copy
    renderer: Renderer = field(init=False)
    holds: ProjectHolds = field(init=False)

    def __post_init__(self) -> None:
        self.database = self.config.database or self.database
        self.renderer = Renderer(self.config)
        self.holds = ProjectHolds(self.library.path)

    def library_for(self, project_id: str) -> Library | ReadOnlyCopy:
        """Where a project's handles read and write: the shared library, or this host's read-only copy."""
        return self.read_only.get(project_id) or self.library

    def open_project(self, project_id: str) -> None:
        """Open a project on this host: for writing when it may hold it, else read-only (Resolve's rules)."""
        db = database(self.library.read(), self.database)
        # A disk database is each host's own in Resolve (the simulator shares it only for
        # convenience): the rules bind projects of shared (PostgreSQL) libraries.
        shared = db["DbType"] == "PostgreSQL" and not db.get(COLLABORATION)
        writable = self.holds.open(self.database, project_id, self.config.host, not shared)
        if writable:
            self.read_only.pop(project_id, None)
        elif project_id not in self.read_only:
            self.read_only[project_id] = ReadOnlyCopy(self.library)
        self.project_id = project_id

    def close_project(self, project_id: str) -> None:
        """Close a project on this host: its hold ends, a read-only copy is dropped."""
        if self.read_only.pop(project_id, None) is None:
            self.holds.close(self.database, project_id, self.config.host)
        if self.project_id == project_id:
            self.project_id = None

    def render_state(self, project_id: str) -> ProjectRenderState:
        return self.render.setdefault(project_id, ProjectRenderState())


# --- locating data in the library -------------------------------------------------------
# Each `*_address` finds where an object sits (for `Library.update_at`), relative to its
# container, and raises `Gone` when it is not there; the plain function returns the object.


def database(data: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return data["databases"][name]
    except KeyError:
        raise Gone(f"database {name}") from None


def project_address(data: dict[str, Any], state: SimState, project_id: str) -> Address:
    if project_id not in database(data, state.database)["projects"]:
        raise Gone(f"project {project_id}")
    return ("databases", state.database, "projects", project_id)


def project(data: dict[str, Any], state: SimState, project_id: str) -> dict[str, Any]:
    return get_in(data, project_address(data, state, project_id))


def timeline_address(proj: dict[str, Any], timeline_id: str) -> Address:
    for index, tl in enumerate(proj["timelines"]):
        if tl["id"] == timeline_id:
            return ("timelines", index)
    raise Gone(f"timeline {timeline_id}")


def timeline(proj: dict[str, Any], timeline_id: str) -> dict[str, Any]:
    return get_in(proj, timeline_address(proj, timeline_id))


def item_address(tl: dict[str, Any], item_id: str, hint: Address = ()) -> Address:
    """Where item `item_id` sits in `tl`; `hint`, where it was last seen, is tried first.

    Note: items are found by a scan otherwise, so a caller going through thousands of items
    passes hints to keep each lookup constant-time.
    """
    if len(hint) == 5:
        with contextlib.suppress(LookupError, TypeError):
            if get_in(tl, hint)["id"] == item_id:
                return hint
    for kind in TRACK_TYPES:
        for t, track in enumerate(tl["tracks"][kind]):
            for i, it in enumerate(track["items"]):
                if it["id"] == item_id:
                    return ("tracks", kind, t, "items", i)
    raise Gone(f"timeline item {item_id}")


def item(tl: dict[str, Any], item_id: str) -> dict[str, Any]:
    return get_in(tl, item_address(tl, item_id))


def clip_address(proj: dict[str, Any], clip_id: str) -> Address:
    if clip_id not in proj["clips"]:
        raise Gone(f"clip {clip_id}")
    return ("clips", clip_id)


def clip(proj: dict[str, Any], clip_id: str) -> dict[str, Any]:
    return get_in(proj, clip_address(proj, clip_id))


def bin_address(proj: dict[str, Any], bin_id: str) -> Address:
    stack: list[tuple[Address, dict[str, Any]]] = [(("root_bin",), proj["root_bin"])]
    while stack:
        address, b = stack.pop()
        if b["id"] == bin_id:
            return address
        stack.extend(((*address, "bins", i), sub) for i, sub in enumerate(b["bins"]))
    raise Gone(f"bin {bin_id}")


def find_bin(proj: dict[str, Any], bin_id: str) -> dict[str, Any]:
    return get_in(proj, bin_address(proj, bin_id))


def number(value: Any) -> int | float:
    """Marker frames come back as ints when whole, as Resolve's do."""
    f = float(value)
    return int(f) if f.is_integer() else f
