"""A Resolve host dying mid-segment: the job still ends with an exact file."""

from __future__ import annotations

import time

import pytest
from farm_helpers import running_farm

from orchestrator import jobs
from orchestrator.demo import verify

SLOW = {"RESOLVE_SIM_FPS": "60", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "8", "RESOLVE_FARM_RENDER_TIME_LIMIT": "7"}


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
    down = {n["name"]: n for n in farm.nodes.all()}[victim.node]
    assert down["up"] is False
