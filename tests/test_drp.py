"""A project given as a .drp on a real farm: each host imports one content once, reuses it for
later pieces and jobs, imports a changed file anew, and deletes imports unused for too long.

Every node has a project library of its own (`RESOLVE_SIM_LIBRARY` per node: a host's local
database), so what one host imported is invisible to the others, as on real hosts. Imports are
counted twice: in the pieces' logs (what the workers said) and in each host's library (what
Resolve holds).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import run, running_farm

from bridge.sim import scriptapp
from bridge.sim.library import LOCAL_DB, Library
from orchestrator import jobs
from orchestrator.local.demo import verify

FOLDER = "resolve-farm imports"
NODES = ("d-1", "d-2", "d-3")  # d-3 keeps unused imports an hour; the others delete them at the next import


@pytest.fixture(scope="module")
def farm_and_home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("drp")
    nodes: dict[str, dict[str, Any]] = {
        name: {"tags": ["drp"], "env": {"RESOLVE_SIM_LIBRARY": str(home / "hosts" / name / "library.json")}}
        for name in NODES
    }
    nodes["d-3"]["env"]["RESOLVE_FARM_DRP_IMPORT_MAX_AGE"] = "3600"
    with running_farm(home, nodes, RESOLVE_FARM_DRP_IMPORT_MAX_AGE="0") as (_, farm):
        yield farm, home


@pytest.fixture(scope="module")
def farm(farm_and_home):
    return farm_and_home[0]


def export_demo(path: Path, marker: int | None = None) -> str:
    """Export the client's Demo project (with a marker added first, when asked) as a .drp; its sha256."""
    project = scriptapp("Resolve").GetProjectManager().LoadProject("Demo")
    if marker is not None:
        assert project.GetTimelineByIndex(1).AddMarker(marker, "Red", "changed", "", 1)
    assert scriptapp("Resolve").GetProjectManager().ExportProject("Demo", str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def imports_on(home: Path, node: str) -> list[str]:
    """The projects in the imports folder of a node's own library."""
    data = Library(home / "hosts" / node / "library.json").read()
    return sorted(p["name"] for p in data["databases"][LOCAL_DB]["projects"].values() if p["folder"] == FOLDER)


def said(farm, job_id: str, what: str) -> dict[str, int]:
    """How many times each node said `what` ('imported' or 'reused') in the job's piece logs."""
    counts: dict[str, int] = {}
    for lines in jobs.piece_logs(farm, job_id).values():
        for line in lines:
            found = re.match(rf"\S+ (\S+) INFO {what} ", line)
            if found:
                counts[found.group(1)] = counts.get(found.group(1), 0) + 1
    return counts


def spec(drp: Path, name: str, **more: Any) -> dict[str, Any]:
    return {"project": "Show", "timeline": "Main", "drp": str(drp), "frames": {"start": 86400, "end": 86687},
            "audio": False, "tags": ["drp"], "output_name": name, **more}  # fmt: skip


def test_a_split_render_imports_the_drp_once_per_host_and_later_jobs_reuse_it(farm_and_home) -> None:
    farm, home = farm_and_home
    drp = farm.settings.storage_roots[0] / "projects" / "Show.drp"
    drp.parent.mkdir(parents=True, exist_ok=True)
    digest = export_demo(drp)
    record = run(farm, spec(drp, "show", split=9))
    assert record.state == "succeeded", record.errors
    assert verify(record.outputs[0], record.plan)["exact"]
    segments = [t for t in record.tasks if t.kind == "segment"]
    hosts = {t.node for t in segments}
    assert len(segments) == 9 and len(hosts) >= 2  # more pieces than hosts: some host ran several
    imported, reused = said(farm, record.id, "imported"), said(farm, record.id, "reused")
    assert imported == dict.fromkeys(hosts, 1), (imported, reused)  # one import per host, whatever it ran
    assert sum(reused.values()) == len(segments) - len(hosts)  # every other piece loaded the host's import
    name = f"Show-{digest[:12]}"
    for node in hosts:  # (the other test's Cut imports may be there too, whichever ran first)
        assert [p for p in imports_on(home, node) if p.startswith("Show-")] == [name]
    again = run(farm, spec(drp, "show-again", split=6))
    assert again.state == "succeeded", again.errors
    later = said(farm, again.id, "imported")
    assert not set(later) & hosts  # a host that imported it before imports it never again
    for node in {t.node for t in again.tasks if t.kind == "segment"}:
        assert [p for p in imports_on(home, node) if p.startswith("Show-")] == [name]


def test_a_changed_drp_is_imported_anew_and_old_imports_go_by_age(farm_and_home) -> None:
    farm, home = farm_and_home
    drp = farm.settings.storage_roots[0] / "projects" / "Cut.drp"
    drp.parent.mkdir(parents=True, exist_ok=True)
    first = export_demo(drp)
    for node in ("d-1", "d-3"):
        assert run(farm, spec(drp, f"cut-{node}", node=node)).state == "succeeded"
    second = export_demo(drp, marker=86500)  # the editor changed the project and exported it again
    assert second != first
    old, new = f"Cut-{first[:12]}", f"Cut-{second[:12]}"
    logs: dict[str, list[str]] = {}
    for node in ("d-1", "d-3"):
        record = run(farm, spec(drp, f"cut-{node}-v2", node=node))
        assert record.state == "succeeded", record.errors
        assert said(farm, record.id, "imported") == {node: 1}  # same path, another content: imported anew
        logs[node] = [line for lines in jobs.piece_logs(farm, record.id).values() for line in lines]
    assert new in imports_on(home, "d-1") and old not in imports_on(home, "d-1")  # unused past 0 s: deleted
    assert {old, new} <= set(imports_on(home, "d-3"))  # kept an hour: both stay
    assert any(f"deleted project {old!r}" in line for line in logs["d-1"])
    assert not any("deleted project" in line for line in logs["d-3"])
