"""A project whose timeline holds many items, for load tests, built through the API as a script would."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any


def many_items_project(resolve: Any, project: str, timeline: str, items: int, frames_per_item: int = 12) -> int:
    """Copy the Demo project as `project` and give it a timeline of `items` clips on track V1.

    Returns the number of items on the new timeline.
    """
    pm = resolve.GetProjectManager()
    with tempfile.TemporaryDirectory() as scratch:
        drp = str(Path(scratch) / "Demo.drp")
        if not (pm.ExportProject("Demo", drp) and pm.ImportProject(drp, project)):
            raise RuntimeError(f"could not copy the Demo project as {project!r}")
    opened = pm.LoadProject(project)
    pool = opened.GetMediaPool()
    clips = pool.GetRootFolder().GetSubFolderList()[0].GetClipList()
    new = pool.CreateEmptyTimeline(timeline)
    if new is None or not opened.SetCurrentTimeline(new):
        raise RuntimeError(f"could not create timeline {timeline!r} in {project!r}")
    infos = [
        {"mediaPoolItem": clips[n % len(clips)], "startFrame": 0, "endFrame": frames_per_item} for n in range(items)
    ]
    added = len(pool.AppendToTimeline(infos))
    pm.SaveProject()
    return added
