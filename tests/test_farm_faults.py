"""A Resolve host dying mid-segment: the job still ends with an exact file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from farm_helpers import running_farm

from orchestrator import jobs
from orchestrator.local.demo import verify

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


# Time limits far above the test's length: the frozen copy must meet the guards, not a time limit; and the
# piece must come back through the janitor (the node is down, its lock lapsed), not through Redis's redelivery.
LONG = {"RESOLVE_SIM_FPS": "60", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "600", "RESOLVE_FARM_RENDER_TIME_LIMIT": "300"}


def test_a_node_declared_down_comes_back_without_duplicating_work(tmp_path: Path) -> None:
    import os
    import signal

    from orchestrator.piecelog import PieceLog

    with running_farm(tmp_path, {"c-1": {}, "c-2": {}}, **LONG) as (local, farm):
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": "back"})
        deadline = time.monotonic() + 30
        victim = None
        while victim is None:
            assert time.monotonic() < deadline
            running = [t for t in farm.store.get(record.id).tasks
                       if t.kind == "segment" and t.state == "running" and t.frames_done > 10]  # fmt: skip
            victim = running[0] if running else None
            time.sleep(0.05)
        worker = local.workers[victim.node]
        os.killpg(worker.process.pid, signal.SIGSTOP)  # the host freezes: no heartbeat, no progress, no lock renewal
        try:
            final = jobs.wait(farm, record.id, timeout=90)  # the janitor hands the piece to the other node
        finally:
            os.killpg(worker.process.pid, signal.SIGCONT)  # it comes back, mid-render
        assert final.state == "succeeded", final.errors
        redone = final.task(victim.name)
        assert redone.node != victim.node and redone.failed_on == [victim.node] and redone.attempts == 2
        output = final.outputs[0]
        before = os.stat(output).st_mtime_ns
        log = PieceLog(farm.redis, 60)
        deadline = time.monotonic() + 60
        stopped = f"{victim.name} stopped: the job ended: succeeded"  # told so at its first report after it woke
        while not any(f" {victim.node} " in line and stopped in line for line in log.read(record.id, victim.name)):
            assert time.monotonic() < deadline, "\n".join(log.read(record.id, victim.name))
            time.sleep(0.1)
        said = "\n".join(line for line in log.read(record.id, victim.name) if f" {victim.node} " in line)
        assert "time limit" not in said.lower() and "failed" not in said  # stopped by the guards, nothing else
        assert os.stat(output).st_mtime_ns == before  # it replaced nothing...
        again = farm.store.get(record.id)
        assert again.model_dump(exclude={"progress", "eta_seconds"}) == final.model_dump(
            exclude={"progress", "eta_seconds"}
        )  # ...changed nothing in the record...
        assert verify(output, again.plan)["exact"]
        work = Path(again.plan.work_dir)
        assert not work.exists() or [p for p in work.rglob("*") if p.is_file()] == []  # ...and left no file


def test_a_render_taken_over_while_it_finished_renames_nothing(tmp_path: Path) -> None:
    """The stale rename guard (issue 26, item 1): a piece whose render is complete and reported, cut off before
    it moves its file into place (here its host freezes in `DeleteRenderJob`, after the last report, and then its
    worker stops) while another node takes the piece over. Woken, its progress guard has nothing left to say: only
    the lock-holder check before the rename stops it."""
    import os
    import signal

    from bridge import sim

    nodes = {"f-1": {"env": {"RESOLVE_SIM_QUIRKS": "freeze-on:Project.DeleteRenderJob"}}, "f-2": {}}
    with running_farm(tmp_path, nodes, **LONG) as (local, farm):
        host = sim.HostState(tmp_path / "sim" / "library.json", "f-1")
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": "late"})
        stopped = False
        try:
            deadline = time.monotonic() + 60
            while not host.frozen:  # its render is done and reported: it waits in Resolve to drop the job
                assert time.monotonic() < deadline, "f-1 finished no render"
                time.sleep(0.05)
            victim = next(t for t in farm.store.get(record.id).tasks if t.state == "running" and t.node == "f-1")
            worker = local.workers["f-1"]
            os.killpg(worker.process.pid, signal.SIGSTOP)  # then the host goes quiet: no heartbeat, no lock renewal
            stopped = True
            host.thaw()  # (Resolve would answer now; the worker is stopped)
            deadline = time.monotonic() + 60
            while (now := farm.store.get(record.id).task(victim.name)).node == "f-1" or now.state != "running":
                assert time.monotonic() < deadline, f"{victim.name} was not taken over: {now.state} on {now.node}"
                time.sleep(0.05)
        finally:
            host.thaw()
            if stopped:
                os.killpg(worker.process.pid, signal.SIGCONT)  # it wakes with a complete render in hand
        log = tmp_path / "logs" / "f-1.log"
        said = f"{victim.name} of job {record.id} was taken over by another node while f-1 rendered it"
        stale = f"{victim.name} on f-1 finished after the piece moved on"
        deadline = time.monotonic() + 60
        while not any(line in log.read_text(errors="replace") for line in (said, stale)):
            assert time.monotonic() < deadline, "f-1 never settled its piece after it woke"
            time.sleep(0.1)
        assert said in log.read_text(errors="replace")  # it stopped before the rename, not after
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "succeeded", final.errors
        assert final.task(victim.name).node == "f-2" and final.task(victim.name).failed_on == ["f-1"]
        assert verify(final.outputs[0], final.plan)["exact"]
