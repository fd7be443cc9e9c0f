"""Proxies on a real farm: two Resolve hosts and a transcode-only node, a shared (PostgreSQL) library.

One farm for the module: refusals at submit, then one project taken through a first run
(three clips made, verified and linked, one with a missing source failing on its own), a
re-run with nothing to do (through MCP), and a re-run after a source changed (only it redone).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import running_farm
from mcp import Client
from test_sim_holds import FARM_DB, shared_demo

from bridge.sim import media
from bridge.sim.config import SimConfig
from bridge.sim.library import Library
from bridge.sim.resolve import Resolve
from bridge.sim.state import SimState
from mcp_server.server import build_server
from orchestrator import jobs
from orchestrator.kinds import SubmitRefused
from orchestrator.kinds.proxies import PRESETS, proxy_path
from orchestrator.models import JobRecord, Placement

NODES: dict[str, dict[str, Any]] = {
    "sim-1": {},
    "sim-2": {},
    # No Resolve (and no scripting library to load: the native bridge would fail): transcodes only.
    "tc-1": {"resolve": False, "transcode": True, "bridge": "native"},
}
DATABASE = {"name": "Farm", "host": "127.0.0.1"}
CHOSEN = ["A00[1-3]*"]  # the three shortest demo clips: 168, 192 and 216 frames at 256x144


def _host(library: Path, name: str = "reader") -> Any:
    pm = Resolve(SimState(SimConfig(library=library, host=name), Library(library))).GetProjectManager()
    assert pm.SetCurrentDatabase(FARM_DB)
    return pm


def _footage(project: Any) -> Any:
    return next(b for b in project.GetMediaPool().GetRootFolder().GetSubFolderList() if b.GetName() == "Footage")


def _add_missing_clip(library: Path, folder: Path) -> str:
    """A clip in Footage whose source file is gone (imported, then deleted): its proxy cannot be made."""
    source = media.write_clip(folder / "Missing_C009.mov", media.SourceClip("Missing_C009.mov", 24))
    pm = _host(library, "setup")
    project = pm.LoadProject("Demo")
    pool = project.GetMediaPool()
    assert pool.SetCurrentFolder(_footage(project))
    assert [c.GetName() for c in pool.ImportMedia([str(source)])] == ["Missing_C009.mov"]
    assert pm.SaveProject() and pm.CloseProject(project)
    source.unlink()
    return str(source)


def _proxies_in_project(library: Path) -> dict[str, tuple[str, str]]:
    """Each Footage clip's (Proxy, Proxy Media Path), read by a host that opens the saved project afresh."""
    pm = _host(library)
    project = pm.LoadProject("Demo")
    found = {c.GetName(): (c.GetClipProperty("Proxy"), c.GetClipProperty("Proxy Media Path"))
             for c in _footage(project).GetClipList()}  # fmt: skip
    assert pm.CloseProject(project)
    return found


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("proxies")
    sources = home / "media"  # this farm's own demo sources: the test changes one
    os.environ["RESOLVE_SIM_MEDIA"] = str(sources)
    try:
        library = home / "sim" / "library.json"
        shared_demo(library)  # project Demo, also in the shared PostgreSQL library "Farm"
        missing = _add_missing_clip(library, sources)
        extra = {"RESOLVE_SIM_MEDIA": str(sources), "RESOLVE_FARM_TRANSCODE_FPS": "500"}
        with running_farm(home, NODES, **extra) as (_local, farm):
            for node in ("sim-1", "sim-2"):  # their catalogs list their disk database; they reach "Farm" too
                local = farm.catalog.of([node])[0]["databases"]["Local Database"]["Demo"]
                farm.catalog.update_project(node, "Farm", "Demo", list(local.values()))
                farm.catalog.update_bins(node, "Farm", "Demo", ["Footage"])
            yield farm, library, Path(missing)
    finally:
        os.environ.pop("RESOLVE_SIM_MEDIA", None)


def _run(farm: Any, spec: dict[str, Any], timeout: float = 60) -> JobRecord:
    record = jobs.submit(farm, "proxies", spec)
    final = jobs.wait(farm, record.id, timeout=timeout)
    assert final.finished, f"job {final.id} still {final.state}: {final.public()}"
    return final


def cli(farm: Any, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def test_bad_requests_are_refused_naming_the_field(farm) -> None:
    farm, _library, _missing = farm
    spec = {"project": "Demo", "database": DATABASE}
    for change, field in (
        ({"project": "Nope"}, "project"),
        ({"bin": "Rushes"}, "bin"),
        ({"preset": "dnxhr-444"}, "preset"),
        ({"drp": "demo.drp"}, "drp"),
        ({"output": "/etc/proxies"}, "output"),
    ):
        with pytest.raises(SubmitRefused) as refused:
            jobs.submit(farm, "proxies", {**spec, **change})
        assert refused.value.field == field, (change, refused.value)
    with pytest.raises(SubmitRefused, match="known: prores-proxy-half, prores-proxy-quarter, h264-half"):
        jobs.submit(farm, "proxies", {**spec, "preset": "dnxhr-444"})


def test_proxies_are_made_verified_linked_and_kept_current(farm) -> None:
    farm, library, missing = farm
    output = str(farm.settings.storage_roots[0] / "proxies")
    spec = {"project": "Demo", "database": DATABASE, "bin": "Footage", "clips": [*CHOSEN, "Missing*"]}

    # The first run: three proxies made and linked; the clip whose source is gone fails on its own.
    first = _run(farm, spec)
    transcodes = [t for t in first.tasks if t.kind == "transcode"]
    assert [t.name for t in first.tasks] == [
        "scan", "transcode A003_C003.mov", "transcode A002_C002.mov", "transcode A001_C001.mov",
        "transcode Missing_C009.mov", "link",
    ]  # largest first  # fmt: skip
    assert first.state == "failed"
    gone = first.task("transcode Missing_C009.mov")
    assert gone.state == "failed" and gone.attempts == 1 and str(missing) in (gone.error or "")
    assert any("Missing_C009.mov" in e and "missing" in e for e in first.errors), first.errors
    assert all(t.state == "done" for t in transcodes if t is not gone)
    assert "tc-1" in {t.node for t in transcodes}  # a node without Resolve transcoded
    link = first.task("link")
    assert link.state == "done" and link.lease == "Farm/Demo" and link.details["linked"] == 3
    assert link.node in ("sim-1", "sim-2")
    sources = {t.params["source"] for t in transcodes}
    preset = PRESETS["prores-proxy-half"]
    for t in transcodes:
        if t is gone:
            continue
        proxy = Path(proxy_path(output, t.params["source"], preset))
        assert t.output == str(proxy) and proxy.is_file()
        assert t.details["frames"] == t.frames_total and t.details["size"] == "128x72" and t.details["audio"]
        record = json.loads(Path(str(proxy) + ".source.json").read_text())
        assert record["preset"] == "prores-proxy-half" and record["source"] in sources
        assert record["proxy_size"] == proxy.stat().st_size
    linked = _proxies_in_project(library)
    for name in ("A001_C001.mov", "A002_C002.mov", "A003_C003.mov"):
        assert linked[name][0] == "128x72" and linked[name][1].startswith(output + "/"), (name, linked[name])
    assert linked["A004_C004.mov"] == ("None", "") and linked["Missing_C009.mov"] == ("None", "")
    holds = library.with_name("library.json.holds")
    assert json.loads(holds.read_text() or "{}") == {}  # scan and link closed the project
    assert list(farm.redis.scan_iter("rf:lease:*")) == []

    # A re-run with nothing to do, asked through MCP: the scan finds every proxy current.
    async def again() -> dict[str, Any]:
        async with Client(build_server(farm)) as client:
            submitted = await client.call_tool(
                "make_proxies", {"project": "Demo", "database": "Farm", "bin": "Footage", "clips": CHOSEN}
            )
            assert not submitted.is_error, submitted
            job = submitted.structured_content["job_id"]
            waited = await client.call_tool("wait_for_job", {"job_id": job, "timeout_seconds": 30})
            assert not waited.is_error and waited.structured_content["state"] == "succeeded", waited
            return {"job": job}

    rerun = farm.store.get(asyncio.run(again())["job"])
    assert [t.name for t in rerun.tasks] == ["scan"]
    found = rerun.task("scan").details
    assert (found["clips"], found["current"], found["make"], found["link"]) == (3, 3, 0, 0), found
    assert json.loads(holds.read_text() or "{}") == {}  # the scan only read: it let the project go

    # A source changes: only its proxy is made again (and linked where it was), asked from the command line.
    changed = Path(next(s for s in sources if s.endswith("A002_C002.mov")))
    media.write_clip(changed, media.SourceClip(changed.name, 192, 24.0, "Pink"))
    refused = cli(farm, "proxies", "Demo", "--database", "Farm", "--bin", "Rushes")
    assert refused.returncode == 2 and "bin: no bin 'Rushes'" in refused.stderr, refused.stderr
    done = cli(
        farm, "proxies", "Demo", "--database", "Farm", "--bin", "Footage", "--clip", CHOSEN[0], "--wait", "--json"
    )
    assert done.returncode == 0, done.stderr
    third = farm.store.get(json.loads(done.stdout)["id"])
    assert third.state == "succeeded", third.errors
    assert [t.name for t in third.tasks] == ["scan", "transcode A002_C002.mov", "link"]
    assert third.task("transcode A002_C002.mov").details["reason"].startswith("the source changed")
    record = json.loads(Path(proxy_path(output, str(changed), preset) + ".source.json").read_text())
    assert record["size"] == changed.stat().st_size and record["job"] == third.id
    assert _proxies_in_project(library)["A002_C002.mov"][0] == "128x72"


def test_a_transcode_only_node_marked_unhealthy_is_cleared_by_its_own_pool(farm) -> None:
    """A node without Resolve has no Resolve to ping: its pool answering the heartbeat task is the proof."""
    farm, _library, _missing = farm
    farm.nodes.heartbeat("tc-1", unhealthy="lost transcode x of job y")
    node = next(n for n in farm.nodes.all() if n.name == "tc-1")
    assert node.roles == ["transcode"] and node.bridge is None and node.unhealthy
    deadline = time.monotonic() + 20
    while next(n for n in farm.nodes.all() if n.name == "tc-1").unhealthy:
        assert time.monotonic() < deadline, "tc-1 stayed unhealthy"
        time.sleep(0.1)
    assert "tc-1" in farm.nodes.candidates(Placement(pool="transcode"))
