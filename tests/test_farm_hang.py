"""A call that hangs inside Resolve: the time limit ends it, the piece runs elsewhere, the host is
kept off new work until its next good heartbeat."""

from __future__ import annotations

import time

from farm_helpers import run, running_farm

from orchestrator.demo import verify

HANG = {"RESOLVE_SIM_FPS": "120", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "8"}


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
        deadline = time.monotonic() + 30
        while True:
            hangy = next(n for n in farm.nodes.all() if n.name == "hangy")
            if hangy.up and not hangy.unhealthy:
                break
            assert time.monotonic() < deadline, hangy
            time.sleep(0.5)
        assert hangy.resolve is not None and hangy.resolve["product"] == "DaVinci Resolve Studio"


def test_a_hang_on_the_last_attempt_fails_the_job_and_still_marks_the_host(tmp_path) -> None:
    nodes = {"hangy": {"tags": ["hang"], "env": {"RESOLVE_SIM_QUIRKS": "hang:Project.GetRenderJobStatus"}}}
    with running_farm(tmp_path, nodes, **HANG) as (_local, farm):
        record = run(farm, {"project": "Demo", "timeline": "Teaser", "node": "hangy", "max_attempts": 1,
                            "output_name": "hung_last"}, timeout=120)  # fmt: skip
        assert record.state == "failed" and "hangy" in record.errors[0]
        # The failure that ended the job marks the host all the same (its next good heartbeat clears it).
        deadline = time.monotonic() + 10
        while not next(n for n in farm.nodes.all() if n.name == "hangy").unhealthy:
            assert time.monotonic() < deadline, "the host whose call hung was never marked unhealthy"
            time.sleep(0.02)
