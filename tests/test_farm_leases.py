"""Write leases on a real farm: an edit fanned out over one project's timelines on a shared library."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import run, running_farm
from test_sim_holds import FARM_DB, shared_demo

from bridge.sim.config import SimConfig
from bridge.sim.library import Library
from bridge.sim.resolve import Resolve
from bridge.sim.state import SimState
from orchestrator.leases import ProjectLeases, project_lease
from tasks.leases import LeaseKeeper

NODES: dict[str, dict[str, Any]] = {"sim-1": {}, "sim-2": {}, "sim-3": {}}
TIMELINES = ("Main", "Teaser", "Social")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("farm")
    shared_demo(home / "sim" / "library.json")  # project Demo in the shared PostgreSQL library "Farm"
    with running_farm(home, NODES) as (_local, farm):
        for node in NODES:  # the nodes' catalogs list their current (disk) database; they reach "Farm" too
            local = farm.catalog.of([node])[0]["databases"]["Local Database"]["Demo"]
            farm.catalog.update_project(node, "Farm", "Demo", list(local.values()))
        yield farm


def _shared_timelines(library: Path) -> dict[str, Any]:
    """Demo's timelines in the shared library, read by a host that closes the project after."""
    pm = Resolve(SimState(SimConfig(library=library, host="reader"), Library(library))).GetProjectManager()
    assert pm.SetCurrentDatabase(FARM_DB)
    project = pm.LoadProject("Demo")
    found = {}
    for index in range(1, project.GetTimelineCount() + 1):
        timeline = project.GetTimelineByIndex(index)
        found[timeline.GetName()] = {
            "markers": timeline.GetMarkers(),
            "colors": {i.GetClipColor() for i in timeline.GetItemListInTrack("video", 1)},
        }
    assert pm.CloseProject(project)
    return found


def test_a_fanned_out_edit_of_one_project_keeps_every_hosts_edits(farm) -> None:
    library = Path(os.environ["RESOLVE_SIM_LIBRARY"])
    database = {"name": "Farm", "host": "127.0.0.1"}
    marker = {"op": "add_marker", "frame": 24, "color": "Blue", "name": "leased"}
    # The second round finds the project closed by whoever wrote it last.
    for round_, color in enumerate(("Violet", "Olive")):
        ops = (
            [marker, {"op": "set_clip_color", "items": {"track": 1}, "color": color}]
            if round_ == 0
            else [{"op": "set_clip_color", "items": {"track": 1}, "color": color}]
        )
        targets = [{"project": "Demo", "timeline": t, "database": database} for t in TIMELINES]
        record = run(farm, {"targets": targets, "operations": ops}, kind="edit")
        assert record.state == "succeeded", record.errors
        assert all(t.lease == "Farm/Demo" for t in record.tasks)
        # Waiting for the project's lease cost no piece an attempt: no host ever wrote it read-only.
        assert [t.attempts for t in record.tasks] == [1] * len(TIMELINES), round_
        assert all(r["ok"] for t in record.tasks for r in t.results)
        found = _shared_timelines(library)
        for name in TIMELINES:
            assert found[name]["markers"][24]["name"] == "leased", name
            assert found[name]["colors"] == {color}, name
    # Every writer closed the project and gave its lease back.
    holds = json.loads(library.with_name("library.json.holds").read_text() or "{}")
    assert holds == {}
    assert list(farm.redis.scan_iter("rf:lease:*")) == []


def test_a_dry_run_takes_no_lease(farm) -> None:
    targets = [{"project": "Demo", "timeline": t, "database": {"name": "Farm"}} for t in TIMELINES]
    ops = [{"op": "add_marker", "frame": 30, "color": "Red", "name": "dry"}]
    record = run(farm, {"targets": targets, "operations": ops, "dry_run": True}, kind="edit")
    assert record.state == "succeeded", record.errors
    assert all(t.lease is None for t in record.tasks)
    library = Path(os.environ["RESOLVE_SIM_LIBRARY"])
    # A dry run only read the project, and let go of it as a render does.
    assert json.loads(library.with_name("library.json.holds").read_text() or "{}") == {}
    assert all(30 not in v["markers"] for v in _shared_timelines(library).values())


def _until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_a_lease_is_its_owners_alone_and_lapses_when_no_one_keeps_it(farm) -> None:
    leases = ProjectLeases(farm.redis)
    lease = project_lease("Farm", "Lapsing")
    assert lease == "Farm/Lapsing"
    assert leases.acquire(lease, "sim-1:m1", ttl=1)
    assert not leases.acquire(lease, "sim-2:m2", ttl=30)
    assert not leases.extend(lease, "sim-2:m2", ttl=30) and not leases.release(lease, "sim-2:m2")
    assert leases.holder(lease) == "sim-1:m1"
    _until(lambda: leases.holder(lease) is None)  # its holder stopped keeping it: it lapsed
    assert leases.acquire(lease, "sim-2:m2", ttl=30)
    assert leases.release(lease, "sim-2:m2") and leases.holder(lease) is None


def test_a_kept_lease_outlives_its_ttl(farm) -> None:
    leases = ProjectLeases(farm.redis)
    lease = project_lease("Farm", "Kept")
    assert leases.acquire(lease, "sim-1:m1", ttl=1)
    keeper = LeaseKeeper(leases, lease, "sim-1:m1", ttl=1)
    try:
        seen = [farm.redis.pttl(leases.key(lease))]

        def renewed() -> bool:
            now = farm.redis.pttl(leases.key(lease))
            rose = now > min(seen) + 100
            seen.append(now)
            return rose

        _until(renewed)  # the keeper renewed it: its time to live went up again
        assert leases.holder(lease) == "sim-1:m1"
    finally:
        keeper.stop()
    assert leases.release(lease, "sim-1:m1")


def test_a_render_lets_go_of_a_shared_project_so_a_later_edit_elsewhere_writes_it(farm) -> None:
    library = Path(os.environ["RESOLVE_SIM_LIBRARY"])
    database = {"name": "Farm", "host": "127.0.0.1"}
    render = {"project": "Demo", "timeline": "Main", "database": database, "node": "sim-1", "split": "none",
              "audio": False, "frames": {"start": 86400, "end": 86447}}  # fmt: skip
    record = run(farm, render)
    assert record.state == "succeeded", record.errors
    # The render only read the project: it closed it, so no host holds it now.
    assert json.loads(library.with_name("library.json.holds").read_text() or "{}") == {}
    marker = {"op": "add_marker", "frame": 36, "color": "Green", "name": "after-render"}
    targets = [{"project": "Demo", "timeline": "Main", "database": database}]
    record = run(farm, {"targets": targets, "operations": [marker]}, kind="edit")
    assert record.state == "succeeded", record.errors
    assert record.tasks[0].attempts == 1
    assert _shared_timelines(library)["Main"]["markers"][36]["name"] == "after-render"
