"""A Resolve host dying mid-segment: the job still ends with an exact file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from farm_helpers import running_farm

from orchestrator import jobs
from orchestrator.demo import verify

SLOW = {"RESOLVE_SIM_FPS": "60", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "10"}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    with running_farm(tmp_path_factory.mktemp("faults"), {"k-1": {}, "k-2": {}}, **SLOW) as pair:
        yield pair


def test_worker_killed_mid_segment(farm) -> None:
    local, farm = farm
    record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": "killed"})
    deadline = time.monotonic() + 30
    victim = None
    while victim is None:
        assert time.monotonic() < deadline, "no segment started"
        current = farm.store.get(record.id)
        running = [t for t in current.tasks if t.kind == "segment" and t.state == "running" and t.frames_done > 10]
        victim = running[0] if running else None
        time.sleep(0.05)
    local.kill_worker(victim.node)  # SIGKILL the worker and its pool: the host is gone
    final = jobs.wait(farm, record.id, timeout=90)
    assert final.state == "succeeded", final.errors
    check = verify(final.outputs[0], final.plan)
    assert check["exact"], check["summary"]
    redone = final.task(victim.name)
    assert redone.node != victim.node and victim.node in redone.failed_on and redone.attempts == 2
    down = {n.name: n for n in farm.nodes.all()}[victim.node]
    assert down.up is False


def test_a_node_declared_down_comes_back_without_duplicating_work(farm) -> None:
    import os
    import signal

    local, farm = farm
    for name in ("k-1", "k-2"):
        if name not in local.workers:
            local.add_worker(name)
    local.wait_ready(["k-1", "k-2"])
    record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": "comeback"})
    deadline = time.monotonic() + 30
    victim = None
    while victim is None:
        assert time.monotonic() < deadline
        running = [
            t
            for t in farm.store.get(record.id).tasks
            if t.kind == "segment" and t.state == "running" and t.frames_done > 10
        ]
        victim = running[0] if running else None
        time.sleep(0.05)
    worker = local.workers[victim.node]
    os.killpg(worker.process.pid, signal.SIGSTOP)  # the host freezes: no heartbeat, no progress
    try:
        deadline = time.monotonic() + 20
        while {n.name: n for n in farm.nodes.all()}[victim.node].up:
            assert time.monotonic() < deadline, "the frozen node never showed down"
            time.sleep(0.2)
        final = jobs.wait(farm, record.id, timeout=90)  # finished by the other node meanwhile
    finally:
        os.killpg(worker.process.pid, signal.SIGCONT)  # it comes back, mid-render
    assert final.state == "succeeded", final.errors
    output = final.outputs[0]
    before = os.stat(output).st_mtime_ns
    deadline = time.monotonic() + 20
    while not {n.name: n for n in farm.nodes.all()}[victim.node].up:
        assert time.monotonic() < deadline, "the node did not rejoin"
        time.sleep(0.2)
    time.sleep(3)  # its stale render ends now: it must not replace or delete anything
    assert os.stat(output).st_mtime_ns == before
    again = farm.store.get(record.id)
    assert again.state == "succeeded" and again.task(victim.name).node != victim.node
    assert again.task(victim.name).state == "done"  # the stale copy changed nothing in the record
    assert verify(output, again.plan)["exact"]
    leftovers = list(Path(again.plan.work_dir).glob("*")) if Path(again.plan.work_dir).exists() else []
    assert leftovers == [] or all(".seg_" not in p.name for p in leftovers)
