"""What one simulated Resolve holds between calls, and how API handles find their data.

API objects (`Project`, `Timeline`, ...) are thin handles: ids into the shared library. A
handle reads the object's current data on every call and changes it through
`Library.update`, so an edit made on one simulated host is seen by all the others.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bridge.colors import CLIP_COLORS, MARKER_COLORS
from bridge.sim.config import SimConfig
from bridge.sim.library import LOCAL_DB, Library
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
    renderer: Renderer = field(init=False)

    def __post_init__(self) -> None:
        self.renderer = Renderer(self.config)

    def render_state(self, project_id: str) -> ProjectRenderState:
        return self.render.setdefault(project_id, ProjectRenderState())


# --- locating data in a library snapshot ----------------------------------------------------


def database(data: dict[str, Any], name: str) -> dict[str, Any]:
    try:
        return data["databases"][name]
    except KeyError:
        raise Gone(f"database {name}") from None


def project(data: dict[str, Any], state: SimState, project_id: str) -> dict[str, Any]:
    try:
        return database(data, state.database)["projects"][project_id]
    except KeyError:
        raise Gone(f"project {project_id}") from None


def timeline(proj: dict[str, Any], timeline_id: str) -> dict[str, Any]:
    for tl in proj["timelines"]:
        if tl["id"] == timeline_id:
            return tl
    raise Gone(f"timeline {timeline_id}")


def item(tl: dict[str, Any], item_id: str) -> dict[str, Any]:
    for kind in TRACK_TYPES:
        for track in tl["tracks"][kind]:
            for it in track["items"]:
                if it["id"] == item_id:
                    return it
    raise Gone(f"timeline item {item_id}")


def clip(proj: dict[str, Any], clip_id: str) -> dict[str, Any]:
    try:
        return proj["clips"][clip_id]
    except KeyError:
        raise Gone(f"clip {clip_id}") from None


def find_bin(proj: dict[str, Any], bin_id: str) -> dict[str, Any]:
    stack = [proj["root_bin"]]
    while stack:
        b = stack.pop()
        if b["id"] == bin_id:
            return b
        stack.extend(b["bins"])
    raise Gone(f"bin {bin_id}")


def number(value: Any) -> int | float:
    """Marker frames come back as ints when whole, as Resolve's do."""
    f = float(value)
    return int(f) if f.is_integer() else f
