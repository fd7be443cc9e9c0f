"""Resolve's project rules in the simulator: one writer per project of a shared library."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

from bridge.sim.config import SimConfig
from bridge.sim.holds import COLLABORATION
from bridge.sim.library import LOCAL_DB, Library
from bridge.sim.resolve import Resolve
from bridge.sim.state import SimState

FARM_DB = {"DbType": "PostgreSQL", "DbName": "Farm", "IpAddress": "127.0.0.1"}


def shared_demo(library: Path, collaboration: bool = False) -> Library:
    """A library whose shared PostgreSQL database `Farm` holds a copy of project Demo."""
    lib = Library(library)

    def share(data: dict[str, Any]) -> None:
        demo = next(iter(data["databases"][LOCAL_DB]["projects"].values()))
        data["databases"]["Farm"]["projects"][demo["id"]] = copy.deepcopy(demo)
        data["databases"]["Farm"][COLLABORATION] = collaboration

    lib.update(share)
    return lib


def _host(library: Path, name: str, database: dict[str, str] = FARM_DB) -> Any:
    pm = Resolve(SimState(SimConfig(library=library, host=name), Library(library))).GetProjectManager()
    assert pm.SetCurrentDatabase(database)
    return pm


def _first_item_color(library: Path, timeline: int) -> str:
    pm = _host(library, "reader")
    color = pm.LoadProject("Demo").GetTimelineByIndex(timeline).GetItemListInTrack("video", 1)[0].GetClipColor()
    pm.CloseProject(pm.GetCurrentProject())
    return str(color)


def test_a_second_host_opens_a_held_project_read_only_and_its_edits_are_lost(tmp_path: Path) -> None:
    library = tmp_path / "library.json"
    shared_demo(library)
    a, b = _host(library, "host-a"), _host(library, "host-b")
    pa, pb = a.LoadProject("Demo"), b.LoadProject("Demo")
    item_b = pb.GetTimelineByIndex(2).GetItemListInTrack("video", 1)[0]
    assert item_b.SetClipColor("Navy") is True  # a read-only project still takes changes on its host
    assert item_b.GetClipColor() == "Navy"
    assert b.SaveProject() is False  # but cannot save them
    assert pa.GetTimelineByIndex(1).GetItemListInTrack("video", 1)[0].SetClipColor("Pink") is True
    assert a.SaveProject() is True
    assert _first_item_color(library, 1) == "Pink"
    assert _first_item_color(library, 2) != "Navy"  # host-b's edit never reached the library


def test_the_hold_passes_on_when_its_holder_closes_the_project(tmp_path: Path) -> None:
    library = tmp_path / "library.json"
    shared_demo(library)
    a, b = _host(library, "host-a"), _host(library, "host-b")
    assert a.CloseProject(a.LoadProject("Demo")) is True
    pb = b.LoadProject("Demo")
    assert pb.GetTimelineByIndex(2).GetItemListInTrack("video", 1)[0].SetClipColor("Navy") is True
    assert b.SaveProject() is True
    assert _first_item_color(library, 2) == "Navy"
    a.LoadProject("Demo")
    assert a.SaveProject() is False  # now host-b holds it


def test_the_hold_lapses_when_its_holders_process_dies(tmp_path: Path) -> None:
    library = tmp_path / "library.json"
    shared_demo(library)
    script = (
        "import sys; from pathlib import Path; from bridge.sim.config import SimConfig;"
        "from bridge.sim.library import Library; from bridge.sim.resolve import Resolve;"
        "from bridge.sim.state import SimState; p = Path(sys.argv[1]);"
        "pm = Resolve(SimState(SimConfig(library=p, host='gone'), Library(p))).GetProjectManager();"
        "pm.SetCurrentDatabase({'DbType': 'PostgreSQL', 'DbName': 'Farm', 'IpAddress': '127.0.0.1'});"
        "pm.LoadProject('Demo'); print(pm.SaveProject())"
    )
    done = subprocess.run([sys.executable, "-c", script, str(library)], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "True"
    assert "gone" in library.with_name("library.json.holds").read_text()
    b = _host(library, "host-b")
    b.LoadProject("Demo")
    assert b.SaveProject() is True


def test_a_collaboration_library_lets_every_host_write(tmp_path: Path) -> None:
    library = tmp_path / "library.json"
    shared_demo(library, collaboration=True)
    a, b = _host(library, "host-a"), _host(library, "host-b")
    a.LoadProject("Demo")
    pb = b.LoadProject("Demo")
    assert pb.GetTimelineByIndex(2).GetItemListInTrack("video", 1)[0].SetClipColor("Navy") is True
    assert a.SaveProject() is True and b.SaveProject() is True
    assert _first_item_color(library, 2) == "Navy"


def test_processes_of_one_host_share_its_hold(tmp_path: Path) -> None:
    library = tmp_path / "library.json"
    shared_demo(library)
    first, second = _host(library, "host-a"), _host(library, "host-a")
    first.LoadProject("Demo")
    second.LoadProject("Demo")
    assert second.SaveProject() is True


def test_a_disk_database_is_each_hosts_own_and_binds_no_one(tmp_path: Path) -> None:
    library = tmp_path / "library.json"
    local = {"DbType": "Disk", "DbName": LOCAL_DB}
    a, b = _host(library, "host-a", local), _host(library, "host-b", local)
    a.LoadProject("Demo")
    b.LoadProject("Demo")
    assert b.SaveProject() is True


def test_a_host_that_starts_in_a_shared_library_lets_go_of_what_its_catalog_opened(
    tmp_path: Path, monkeypatch: Any
) -> None:
    from bridge.sim.holds import ProjectHolds
    from tasks.runtime import runtime
    from tasks.worker import build_catalog

    library = tmp_path / "library.json"
    shared = shared_demo(library)
    demo_id = next(iter(shared.read()["databases"]["Farm"]["projects"]))
    for key, value in {"RESOLVE_SIM_LIBRARY": str(library), "RESOLVE_SIM_DATABASE": "Farm",
                       "RESOLVE_SIM_HOST": "cataloguer", "RESOLVE_SIM_QUIRKS": ""}.items():  # fmt: skip
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(runtime.settings, "bridge", "sim")
    monkeypatch.setattr(runtime, "_fresh", lambda: None)  # the catalog needs Resolve only, no broker
    runtime.drop_session()
    try:
        catalog, _ = build_catalog()
    finally:
        runtime.drop_session()
    assert "Main" in catalog["databases"]["Farm"]["Demo"]  # it read the shared library's projects
    # ... and holds none of them: a writer on another host gets Demo for writing.
    assert ProjectHolds(library).holder("Farm", demo_id) is None
    assert _host(library, "writer").LoadProject("Demo").GetName() == "Demo"
    assert ProjectHolds(library).holder("Farm", demo_id) == "writer"
