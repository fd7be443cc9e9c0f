"""Proof across hosts: a split render over network namespaces, and a host cut off mid-render."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from netns_farm import NetnsFarm, available

from orchestrator.kinds.render import RenderPlan
from orchestrator.local.demo import verify

why_not = available()
pytestmark = pytest.mark.skipif(why_not is not None, reason=why_not or "")

ENV = {
    "RESOLVE_FARM_HEARTBEAT_INTERVAL": "0.5", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "3", "RESOLVE_FARM_LOCK_TTL": "4",
    "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24", "RESOLVE_FARM_PROGRESS_INTERVAL": "0.2",
    "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "10", "RESOLVE_SIM_FPS": "90",
}  # fmt: skip


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("hosts")
    env = {
        **ENV,
        "RESOLVE_SIM_LIBRARY": str(home / "library.json"),
        "RESOLVE_FARM_STORAGE_ROOTS": str(home / "storage"),
    }
    farm = NetnsFarm(home, ["h1", "h2", "h3"], env)
    try:
        farm.start()
        yield farm
    finally:
        farm.stop()


def test_split_render_across_three_hosts(hosts: NetnsFarm) -> None:
    record = hosts.cli_json("render", "Demo", "Social", "--split", "3", "--name", "across", "--wait")
    assert record["state"] == "succeeded", record["errors"]
    segments = [t for t in record["tasks"] if t["kind"] == "segment"]
    assert {t["node"] for t in segments} == {"h1", "h2", "h3"}  # one segment per host: all three idle
    check = verify(record["outputs"][0], RenderPlan.model_validate(record["plan"]))
    assert check["exact"], check["summary"]
    nodes = {n["name"]: n for n in hosts.cli_json("nodes")}
    assert nodes["h1"]["host"] == nodes["h2"]["host"]  # one machine...
    assert Path(record["outputs"][0]).stat().st_size > 0  # ...but every byte crossed the links


def test_a_host_cut_off_mid_render(hosts: NetnsFarm) -> None:
    """A host cut off while its piece is well short of done: the piece runs again elsewhere.

    Note: every host renders 20x slower until the victim is cut (its piece could not finish in a
    minute), then the others at their own speed again: the status is read by a command on the
    client host, seconds apart under load, and a piece at full speed could finish between the
    read and the cut."""
    for host in hosts.hosts:
        hosts.slow(host, 20)
    victim = None
    try:
        record = hosts.cli_json("render", "Demo", "Social", "--split", "3", "--name", "cut")
        job = record["id"]
        deadline = time.monotonic() + 60
        while victim is None:
            assert time.monotonic() < deadline, "no segment started"
            status = hosts.cli_json("status", job)
            running = [t for t in status["tasks"] if t["kind"] == "segment" and t["state"] == "running"
                       and t["frames_done"] > 0]  # fmt: skip
            victim = running[0] if running else None
            time.sleep(0.2)
        hosts.cut(victim["node"])
        for host in set(hosts.hosts) - {victim["node"]}:
            hosts.slow(host, None)
        deadline = time.monotonic() + 120
        while True:
            status = hosts.cli_json("status", job)
            if status["state"] in ("succeeded", "failed"):
                break
            assert time.monotonic() < deadline, status
            time.sleep(0.5)
        assert status["state"] == "succeeded", status["errors"]
        redone = next(t for t in status["tasks"] if t["name"] == victim["name"])
        assert redone["node"] != victim["node"] and victim["node"] in redone["failed_on"]
        check = verify(status["outputs"][0], RenderPlan.model_validate(status["plan"]))
        assert check["exact"], check["summary"]
        nodes = {n["name"]: n for n in hosts.cli_json("nodes")}
        assert nodes[victim["node"]]["up"] is False
    finally:  # the next test finds every host up and at its speed, in whatever order they run
        for host in hosts.hosts:
            hosts.slow(host, None)
        if victim is not None:
            hosts.reconnect(victim["node"])
