"""Edits under faults, as renders are tested: an edit piece's host killed mid-write, hung past the edit's hard
limit, and its message delivered twice. Each lands exactly once in the shared project, with attempts counted.

The edit is held mid-write by the simulator's `freeze-on:` on e-1 (at `Timeline.AddMarker`: its colours are
written, its marker not yet; or at the save: every change made): the whole application blocks there, deaf to
signals, until the test thaws it. e-2 joins once e-1 holds the piece, so that the piece's first host is known.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import running_farm, wait_until
from test_farm_leases import _shared_timelines
from test_sim_holds import shared_demo

from bridge import sim
from orchestrator import jobs, routing
from orchestrator.farm import Farm
from orchestrator.local.farm import LocalFarm
from orchestrator.models import JobRecord
from orchestrator.piecelog import PieceLog

BEFORE_MARKER = "freeze-on:Timeline.AddMarker"  # its colours written, its marker not
AFTER_MARKER = "freeze-on:ProjectManager.SaveProject"  # every change made, the project not saved
EDIT = {
    "targets": [{"project": "Demo", "timeline": "Teaser", "database": {"name": "Farm", "host": "127.0.0.1"}}],
    "operations": [
        {"op": "set_clip_color", "items": {"track": 1}, "color": "Violet"},
        {"op": "add_marker", "frame": 24, "color": "Blue", "name": "once"},
    ],
}


@contextlib.contextmanager
def held_edit(
    home: Path, held_at: str = BEFORE_MARKER, **extra: str
) -> Iterator[tuple[LocalFarm, Farm, JobRecord, sim.HostState]]:
    """A farm whose edit of Demo/Teaser (in the shared database) is held mid-write on e-1, with e-2 up beside it."""
    library = home / "sim" / "library.json"
    shared_demo(library)
    with running_farm(home, {"e-1": {"env": {"RESOLVE_SIM_QUIRKS": held_at}}}, **extra) as (local, farm):
        host = sim.HostState(library, "e-1")
        try:
            _knows_the_shared_project(farm, "e-1")
            record = jobs.submit_edit(farm, EDIT)
            wait_until(lambda: host.frozen, 60, f"e-1 never reached {held_at}")
            local.add_worker("e-2")
            local.wait_ready(["e-2"])
            _knows_the_shared_project(farm, "e-2")
            yield local, farm, record, host
        finally:
            host.thaw()


def _knows_the_shared_project(farm: Farm, node: str) -> None:
    """The node's catalog lists its disk database; it reaches the shared "Farm" too (as in test_farm_leases)."""
    local = farm.catalog.of([node])[0]["databases"]["Local Database"]["Demo"]
    farm.catalog.update_project(node, "Farm", "Demo", list(local.values()))


def _landed_once(farm: Farm, home: Path) -> dict[str, Any]:
    """The shared project holds the edit exactly once, no host holds it open, no lease is left; its timeline."""
    found = _shared_timelines(home / "sim" / "library.json")["Teaser"]
    assert found["colors"] == {"Violet"}
    assert {frame: m["name"] for frame, m in found["markers"].items()} == {24: "once"}
    holds = json.loads((home / "sim" / "library.json.holds").read_text() or "{}")
    assert holds == {}
    assert list(farm.redis.scan_iter("rf:lease:*")) == []
    return found


@pytest.mark.parametrize("held_at", [BEFORE_MARKER, AFTER_MARKER])
def test_an_edit_whose_host_dies_mid_write_lands_once_on_another(tmp_path: Path, held_at: str) -> None:
    # Killed with its colours written and its marker not, or with its marker written too: the retry finds
    # the very marker there and counts it done (a second marker on a frame Resolve refuses).
    with held_edit(tmp_path, held_at) as (local, farm, record, _host):
        local.kill_worker("e-1")
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "succeeded", final.errors
        piece = final.tasks[0]
        assert piece.node == "e-2" and piece.failed_on == ["e-1"] and piece.attempts == 2  # the lost attempt counted
        assert [r["ok"] for r in piece.results] == [True] * len(piece.results) and piece.results  # all of it, again
        _landed_once(farm, tmp_path)


def test_an_edit_hung_past_its_hard_limit_lands_once_on_another(tmp_path: Path) -> None:
    # Deaf to signals: only the edit's hard limit (10 s) ends it, by killing the pool process.
    with held_edit(tmp_path, RESOLVE_FARM_EDIT_TIME_LIMIT="10") as (_local, farm, record, _host):
        final = jobs.wait(farm, record.id, timeout=90)
        log = (tmp_path / "logs" / "e-1.log").read_text(errors="replace")
        assert final.state == "succeeded", final.errors
        piece = final.tasks[0]
        assert piece.node == "e-2" and "e-1" in piece.failed_on and piece.attempts == 2
        assert "TimeLimitExceeded" in log or "Hard time limit" in log
        _landed_once(farm, tmp_path)


def test_an_edit_delivered_twice_is_applied_once(tmp_path: Path) -> None:
    with held_edit(tmp_path) as (_local, farm, record, host):
        piece = farm.store.get(record.id).tasks[0]
        assert piece.state == "running" and piece.node == "e-1"
        # A duplicate delivery: the same message (id and arguments) a second time, to the free host.
        farm.app.send_task(piece.task, args=(record.id, piece.name, record.generation),
                           queue=routing.node_queue("e-2"), task_id=piece.celery_id)  # fmt: skip
        log = PieceLog(farm.redis, 60)
        wait_until(lambda: any("found the piece locked by" in line for line in log.read(record.id, piece.name)), 30,
                   "the copy never met the lock")  # fmt: skip
        host.thaw()  # the original goes on and finishes
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "succeeded", final.errors
        assert final.tasks[0].node == "e-1" and final.tasks[0].attempts == 1  # applied once, where it began
        _landed_once(farm, tmp_path)
        wait_until(lambda: any("not run: skip" in line for line in log.read(record.id, piece.name)), 30,
                   "the copy never took its last look")  # fmt: skip
