"""A call that hangs inside Resolve: the time limit ends it, the piece runs elsewhere, the host is
kept off new work until its next good heartbeat."""

from __future__ import annotations

import time

import pytest
from farm_helpers import render_past_a_hung_host, run, running_farm

from bridge import sim
from bridge.session import SIM_SCRIPT_API
from orchestrator import jobs
from orchestrator.local.demo import verify
from orchestrator.nodes import NOT_ANSWERING

FREEZING = "freeze-on:Project.GetRenderJobStatus"
HANG = {"RESOLVE_SIM_FPS": "120", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "8"}


def healthy_again(farm, name: str, timeout: float = 30):
    """Wait until the node is up and no longer marked unhealthy; its record then."""
    deadline = time.monotonic() + timeout
    while True:
        node = next(n for n in farm.nodes.all() if n.name == name)
        if node.up and not node.unhealthy:
            return node
        assert time.monotonic() < deadline, node
        time.sleep(0.1)


def test_hung_call_is_ended_and_the_piece_runs_elsewhere(tmp_path) -> None:
    nodes = {"hangy": {"tags": ["hang"], "env": {"RESOLVE_SIM_QUIRKS": "hang:Project.GetRenderJobStatus"}},
             "sure": {"tags": ["hang"]}}  # fmt: skip
    with running_farm(tmp_path, nodes, **HANG) as (_local, farm):
        record = run(
            farm,
            {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["hang"], "output_name": "hung"},
            timeout=120,
        )
        assert record.state == "succeeded", record.errors
        assert verify(record.outputs[0], record.plan)["exact"]
        pieces = [t for t in record.tasks if t.kind != "stitch"]
        assert all(t.node == "sure" for t in pieces)
        assert any("hangy" in t.failed_on for t in pieces)
        # Marked unhealthy when the call hung; cleared by its next good heartbeat (Resolve answers a ping).
        hangy = healthy_again(farm, "hangy")
        assert hangy.resolve is not None and hangy.resolve["product"] == "DaVinci Resolve Studio"


def test_a_hang_on_the_last_attempt_fails_the_job_and_still_marks_the_host(tmp_path) -> None:
    nodes = {"hangy": {"tags": ["hang"], "env": {"RESOLVE_SIM_QUIRKS": "hang:Project.GetRenderJobStatus"}}}
    with running_farm(tmp_path, nodes, **HANG) as (_local, farm):
        record = run(farm, {"project": "Demo", "timeline": "Teaser", "node": "hangy", "max_attempts": 1,
                            "output_name": "hung_last"}, timeout=120)  # fmt: skip
        assert record.state == "failed" and "hangy" in record.errors[0]
        # The failure that ended the job marks the host all the same. Its next good heartbeat may clear the
        # mark before it could be seen: the node keeps its latest problem, stamped.
        hangy = next(n for n in farm.nodes.all() if n.name == "hangy")
        assert hangy.last_problem is not None and "hung" in hangy.last_problem, hangy
        assert hangy.last_problem_at is not None and hangy.last_problem_at >= record.created_at


def test_a_call_no_signal_can_break_is_ended_by_the_hard_limit(tmp_path) -> None:
    """Stuck inside Resolve's C library (signals masked): the soft limit cannot end it; the hard limit kills the
    pool process, the piece runs on another host, and the host is kept off new work until Resolve answers."""
    nodes = {"deaf": {"tags": ["hang"], "env": {"RESOLVE_SIM_QUIRKS": "hang-hard:Project.GetRenderJobStatus"}},
             "sure": {"tags": ["hang"]}}  # fmt: skip
    with running_farm(tmp_path, nodes, **HANG) as (_local, farm):
        render_past_a_hung_host(farm, "deaf", "sure")
        log = (tmp_path / "logs" / "deaf.log").read_text(errors="replace")
        assert "TimeLimitExceeded" in log or "Hard time limit" in log  # ended by the hard limit, not the soft one
        assert "SoftTimeLimitExceeded" not in log


def _frozen(farm, name: str) -> bool:
    node = next(n for n in farm.nodes.all() if n.name == name)
    return node.up and bool(node.unhealthy) and node.unhealthy.startswith(NOT_ANSWERING)


@pytest.mark.parametrize("bridge", ["sim", "native", "subprocess"])
def test_a_resolve_that_stops_answering_shows_unhealthy_and_its_piece_runs_elsewhere(
    tmp_path, bridge: str, request
) -> None:
    """The whole application freezes mid-render (every connection to it blocks, deaf to signals): the heartbeat's
    ping marks the host within one heartbeat timeout, the stuck piece is ended and finished on the other host, and
    the host is kept off work until Resolve answers again. In-process (sim, native) only the hard time limit can
    end the call; through the subprocess bridge the pool process is free and the helper dies with it."""
    extra = {"RESOLVE_SCRIPT_API": str(SIM_SCRIPT_API)}
    if bridge == "native":
        extra["RESOLVE_SCRIPT_LIB"] = str(request.getfixturevalue("native_lib"))
    nodes = {"frosty": {"tags": ["freeze"], "bridge": bridge, "env": {"RESOLVE_SIM_QUIRKS": FREEZING}},
             "sure": {"tags": ["freeze"], "bridge": bridge}}  # fmt: skip
    with running_farm(tmp_path, nodes, **HANG, **extra) as (_local, farm):
        host = sim.HostState(tmp_path / "sim" / "library.json", "frosty")
        try:
            job = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["freeze"],
                                            "output_name": f"frozen_{bridge}"})  # fmt: skip
            deadline = time.monotonic() + 60
            while not host.frozen:
                assert time.monotonic() < deadline, "frosty never took a piece"
                time.sleep(0.05)
            deadline = time.monotonic() + 60
            while not _frozen(farm, "frosty"):
                # Marked by its heartbeat's ping (one heartbeat timeout, 3 s here), not once the hard limit (8 s)
                # ended its piece: the stuck piece is still running there when the mark shows.
                stuck = [t for t in farm.store.get(job.id).tasks if t.node == "frosty" and t.state == "running"]
                assert stuck and time.monotonic() < deadline, "the frozen host was not marked by its heartbeat"
                time.sleep(0.05)
            assert any(t.node == "frosty" and t.state == "running" for t in farm.store.get(job.id).tasks)
            record = jobs.wait(farm, job.id, timeout=120)
            assert record.state == "succeeded", record.errors
            assert verify(record.outputs[0], record.plan)["exact"]
            pieces = [t for t in record.tasks if t.kind != "stitch"]
            assert all(t.node == "sure" for t in pieces)
            assert any("frosty" in t.failed_on for t in pieces)
            # Still frozen: still kept off work (marked by the ping, or by the piece's hang since).
            assert next(n for n in farm.nodes.all() if n.name == "frosty").unhealthy
            log = (tmp_path / "logs" / "frosty.log").read_text(errors="replace")
            if bridge == "subprocess":
                # The pool process waits in Python: the soft limit reaches it, and the stuck helper is killed.
                assert "Soft time limit" in log
            else:
                assert "TimeLimitExceeded" in log or "Hard time limit" in log
        finally:
            host.thaw()
        frosty = healthy_again(farm, "frosty")
        assert frosty.resolve is not None and frosty.resolve["studio"] is True
