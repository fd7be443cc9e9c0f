"""The worker without fork or signals, as Windows and macOS hosts run it (the threads pool), on a real farm.

Every Resolve call goes through the subprocess helper (the simulator's scripting module, as
Resolve's own), and a piece past its limit is ended by killing that helper: no pool child is
forked, no soft time limit is raised.
"""

from __future__ import annotations

import signal

from farm_helpers import render_past_a_hung_host, run, running_farm, wait_for_record

from bridge.session import SIM_SCRIPT_API
from orchestrator import jobs
from orchestrator.demo import verify

THREADS = {
    "RESOLVE_FARM_WORKER_POOL": "threads",
    "RESOLVE_SCRIPT_API": str(SIM_SCRIPT_API),
    "RESOLVE_SIM_FPS": "480",
    "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12",
    "RESOLVE_FARM_RENDER_TIME_LIMIT": "8",  # the piece deadline: the helper is killed past it
}
NODES = {
    "t1": {"tags": ["even"], "bridge": "auto"},  # auto: the helper, in the threads pool
    "t2": {"tags": ["even", "hang"], "bridge": "auto"},
    "deaf": {"tags": ["hang"], "bridge": "auto", "env": {"RESOLVE_SIM_QUIRKS": "hang-hard:Project.GetRenderJobStatus"}},
}


def test_threads_workers_render_frame_exactly_end_a_call_no_signal_can_break_and_give_back_on_stop(tmp_path) -> None:
    slow = {"RESOLVE_SIM_THROTTLE": str(tmp_path / "throttle")}  # no file: full speed
    nodes = {name: {**options, "env": {**options.get("env", {}), **slow}} for name, options in NODES.items()}
    with running_farm(tmp_path, nodes, **THREADS) as (local, farm):
        record = run(farm, {"project": "Demo", "timeline": "Main", "split": 2, "tags": ["even"],
                            "output_name": "threads"}, timeout=120)  # fmt: skip
        assert record.state == "succeeded", record.errors
        assert verify(record.outputs[0], record.plan)["exact"]
        assert {t.node for t in record.tasks if t.kind == "segment"} == {"t1", "t2"}

        render_past_a_hung_host(farm, "deaf", "t2")

        logs = {name: (tmp_path / "logs" / f"{name}.log").read_text(errors="replace") for name in NODES}
        assert "passed its 8s limit: its Resolve helper was killed" in logs["deaf"]
        assert "did not finish within its 8s limit" in logs["deaf"]
        for log in logs.values():
            assert "(thread)" in log  # Celery's banner: "concurrency: 1 (thread)"
            assert "ForkPoolWorker" not in log and "SoftTimeLimitExceeded" not in log and "Hard time limit" not in log

        # A service stop mid-piece (Ctrl-C, SIGTERM): the render stops, the piece goes back uncounted, the worker
        # exits without waiting for it, and the other node renders it.
        (tmp_path / "throttle").write_text("20")  # the piece cannot finish before the stop reaches it
        try:
            stopped = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "audio": False,
                                                "tags": ["even"], "output_name": "stopped"})  # fmt: skip
            running = wait_for_record(farm, stopped.id, lambda r: any(
                t.kind == "segment" and t.node == "t1" and t.frames_done for t in r.tasks), "t1 never rendered")  # fmt: skip
            piece = next(t for t in running.tasks if t.kind == "segment" and t.node == "t1")
            assert local.stop_worker("t1", signal.SIGTERM, timeout=60) == 0
        finally:
            (tmp_path / "throttle").unlink()
        final = jobs.wait(farm, stopped.id, timeout=120)
        assert final.state == "succeeded", final.errors
        again = final.task(piece.name)
        assert again.node == "t2" and again.attempts == 1 and not again.failed_on and not final.blocked_nodes
        assert verify(final.outputs[0], final.plan)["exact"]
