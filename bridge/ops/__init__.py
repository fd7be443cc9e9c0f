"""The high-level operations the farm performs on a Resolve object.

Each function takes the object `scriptapp("Resolve")` returned (real or simulated) and plain
JSON-able arguments, and returns plain JSON-able results, so the same code runs in-process
(native, sim) and inside the fallback helper, whose pipe carries JSON. Failures raise
`OperationError` with a reason a person can act on.

Note: standard library only (see `bridge/__init__.py`). Arguments were validated in the
parent before they got here; the checks below are for what only Resolve can tell.

One module per vocabulary: `projects` (the application, projects, timelines), `render`, `edits`,
`media` (the media pool, proxies); `OPERATIONS` is the one table of what a session may call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bridge.ops.edits import (
    Change,
    apply_edits,
)
from bridge.ops.media import (
    link_proxies,
    list_bins,
    list_clips,
)
from bridge.ops.projects import (
    IMPORTS_FOLDER,
    SCRIPTING_STUDIO_ONLY_SINCE,
    UNTITLED,
    close_project,
    delete_imports,
    describe,
    drp_digest,
    import_name,
    list_projects,
    list_timelines,
    open_drp,
    open_project,
    ping,
    render_options,
    save_project,
    timeline_content,
    timeline_info,
)
from bridge.ops.render import (
    IMAGE_SEQUENCE_FORMATS,
    delete_render_job,
    known_state,
    render_status,
    start_render,
    stop_render,
)

OPERATIONS: dict[str, Callable[..., Any]] = {
    "ping": ping,
    "describe": describe,
    "list_projects": list_projects,
    "open_project": open_project,
    "open_drp": open_drp,
    "delete_imports": delete_imports,
    "list_timelines": list_timelines,
    "timeline_info": timeline_info,
    "timeline_content": timeline_content,
    "render_options": render_options,
    "start_render": start_render,
    "render_status": render_status,
    "stop_render": stop_render,
    "delete_render_job": delete_render_job,
    "apply_edits": apply_edits,
    "save_project": save_project,
    "close_project": close_project,
    "list_bins": list_bins,
    "list_clips": list_clips,
    "link_proxies": link_proxies,
}

__all__ = [
    "IMAGE_SEQUENCE_FORMATS",
    "IMPORTS_FOLDER",
    "OPERATIONS",
    "SCRIPTING_STUDIO_ONLY_SINCE",
    "UNTITLED",
    "Change",
    "apply_edits",
    "close_project",
    "delete_imports",
    "delete_render_job",
    "describe",
    "drp_digest",
    "import_name",
    "known_state",
    "link_proxies",
    "list_bins",
    "list_clips",
    "list_projects",
    "list_timelines",
    "open_drp",
    "open_project",
    "ping",
    "render_options",
    "render_status",
    "save_project",
    "start_render",
    "stop_render",
    "timeline_content",
    "timeline_info",
]
