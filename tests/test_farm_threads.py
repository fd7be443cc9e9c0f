"""The worker without fork or signals, as Windows and macOS hosts run it (the threads pool), on a real farm.

Every Resolve call goes through the subprocess helper (the simulator's scripting module, as
Resolve's own), and a piece past its limit is ended by killing that helper: no pool child is
forked, no soft time limit is raised. The farm's fault proofs of the prefork pool are made
here again on one shared farm of threads workers, with the same assertions: a call no signal
can break, a Resolve crash in the helper, a worker killed mid-piece, a stop mid-piece, a cancel
mid-piece, a duplicate delivery, and a lease kept while an edit writes a shared project.
"""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import (
    assert_cancelled_leaving_nothing,
    render_past_a_hung_host,
    run,
    running_farm,
    wait_for_record,
    wait_until,
)
from otlp_stub import ancestors
from test_farm_leases import TIMELINES, _shared_timelines
from test_sim_holds import shared_demo

from bridge.session import SIM_SCRIPT_API
from orchestrator import jobs, routing, telemetry
from orchestrator.farm import Farm
from orchestrator.local.demo import verify
from orchestrator.local.farm import LocalFarm
from orchestrator.piecelog import PieceLog

THREADS = {
    "RESOLVE_FARM_WORKER_POOL": "threads",
    "RESOLVE_SCRIPT_API": str(SIM_SCRIPT_API),
    "RESOLVE_SIM_FPS": "480",
    "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12",
    "RESOLVE_FARM_RENDER_TIME_LIMIT": "8",  # the piece deadline: the helper is killed past it
}
NODES: dict[str, dict[str, Any]] = {
    "t1": {"tags": ["even"], "bridge": "auto"},  # auto: the helper, in the threads pool
    "t2": {"tags": ["even", "hang", "crash"], "bridge": "auto"},
    "deaf": {"tags": ["hang"], "bridge": "auto", "env": {"RESOLVE_SIM_QUIRKS": "hang-hard:Project.GetRenderJobStatus"}},
    "crashy": {"tags": ["crash"], "bridge": "auto", "env": {"RESOLVE_SIM_QUIRKS": "crash-at:0.3"}},
}
Threads = tuple[Path, LocalFarm, Farm]


def _options(home: Path, name: str) -> dict[str, Any]:
    """`name`'s worker options, throttled by the file `home/throttle` (no file: full speed)."""
    options = NODES[name]
    return {**options, "env": {**options.get("env", {}), "RESOLVE_SIM_THROTTLE": str(home / "throttle")}}


@pytest.fixture(scope="module")
def threads(tmp_path_factory: pytest.TempPathFactory, collector) -> Iterator[Threads]:
    home = tmp_path_factory.mktemp("threads")
    shared_demo(home / "sim" / "library.json")  # project Demo in the shared PostgreSQL library "Farm" too
    nodes = {name: _options(home, name) for name in NODES}
    with running_farm(home, nodes, workers=collector.env(), **THREADS) as (local, farm):  # traced, as OTEL_* asks
        for node in ("t1", "t2"):
            _reach_shared(farm, node)
        yield home, local, farm


def _reach_shared(farm: Farm, node: str) -> None:
    """`node`'s catalog lists its current (disk) database; it reaches the shared library "Farm" too."""
    demo = farm.catalog.of([node])[0]["databases"]["Local Database"]["Demo"]
    farm.catalog.update_project(node, "Farm", "Demo", list(demo.values()))


def _back(threads: Threads, name: str) -> None:
    """Start `name`'s worker again (after a test stopped or killed it) and wait until it is up."""
    home, local, farm = threads
    local.add_worker(name, **_options(home, name))
    local.wait_ready([name])
    _reach_shared(farm, name)  # (a worker publishes its catalog anew when it starts)


def _helpers_of(node: str) -> list[int]:
    """The pids of the Resolve helpers serving `node`'s worker (Linux: read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone meanwhile
            continue
        if b"bridge/helper.py" in cmdline and f"RESOLVE_SIM_HOST={node}".encode() in environ:
            found.append(int(entry.name))
    return found


def _rendering(farm: Farm, job_id: str, kind: str = "segment", frames: int = 10) -> Any:
    """The first piece of `kind` that has rendered more than `frames` frames."""
    record = wait_for_record(farm, job_id, lambda r: any(
        t.kind == kind and t.state == "running" and t.frames_done > frames for t in r.tasks), "nothing rendered")  # fmt: skip
    return next(t for t in record.tasks if t.kind == kind and t.state == "running" and t.frames_done > frames)


def test_threads_workers_render_frame_exactly_and_end_a_call_no_signal_can_break(threads: Threads, collector) -> None:
    home, _, farm = threads
    trace_id = secrets.token_hex(16)
    with telemetry.within({"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}):
        record = run(farm, {"project": "Demo", "timeline": "Main", "split": 2, "tags": ["even"],
                            "output_name": "threads"}, timeout=120)  # fmt: skip
    assert record.state == "succeeded", record.errors
    assert verify(record.outputs[0], record.plan)["exact"]
    assert {t.node for t in record.tasks if t.kind == "segment"} == {"t1", "t2"}
    # Traced in the threads pool too, set up in the worker's own process: each segment's piece, in the job's
    # trace, holds its render through the helper.
    segments = {f"piece {t.name}": t.node for t in record.tasks if t.kind == "segment"}
    spans = collector.wait_for(trace_id, lambda spans: set(segments) <= {s.name for s in spans})
    for name, node in segments.items():
        (piece,) = [s for s in spans if s.name == name and s.attributes.get("resolve_farm.outcome") == "output"]
        rendered = [s for s in spans if s.name == "resolve render" and s.instance == node]
        assert piece.instance == node and any(piece in ancestors(s, spans) for s in rendered), name

    render_past_a_hung_host(farm, "deaf", "t2")

    logs = {name: (home / "logs" / f"{name}.log").read_text(errors="replace") for name in NODES}
    assert "passed its 8s limit: its Resolve helper was killed" in logs["deaf"]
    assert "did not finish within its 8s limit" in logs["deaf"]
    for log in logs.values():
        assert "(thread)" in log  # Celery's banner: "concurrency: 1 (thread)"
        assert "ForkPoolWorker" not in log and "SoftTimeLimitExceeded" not in log and "Hard time limit" not in log


def test_a_threads_worker_stopped_mid_piece_gives_it_back(threads: Threads) -> None:
    # A service stop mid-piece (Ctrl-C, SIGTERM): the render stops, the piece goes back uncounted, the worker
    # exits without waiting for it, and the other node renders it.
    home, local, farm = threads
    (home / "throttle").write_text("20")  # the piece cannot finish before the stop reaches it
    try:
        stopped = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "audio": False,
                                            "tags": ["even"], "output_name": "stopped"})  # fmt: skip
        running = wait_for_record(farm, stopped.id, lambda r: any(
            t.kind == "segment" and t.node == "t1" and t.frames_done for t in r.tasks), "t1 never rendered")  # fmt: skip
        piece = next(t for t in running.tasks if t.kind == "segment" and t.node == "t1")
        assert local.stop_worker("t1", signal.SIGTERM, timeout=60) == 0
    finally:
        (home / "throttle").unlink()
    final = jobs.wait(farm, stopped.id, timeout=120)
    assert final.state == "succeeded", final.errors
    again = final.task(piece.name)
    assert again.node == "t2" and again.attempts == 1 and not again.failed_on and not final.blocked_nodes
    assert verify(final.outputs[0], final.plan)["exact"]
    _back(threads, "t1")


def test_a_threads_worker_killed_mid_piece_loses_only_that_attempt(threads: Threads) -> None:
    home, local, farm = threads
    (home / "throttle").write_text("20")
    try:
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "audio": False,
                                           "tags": ["even"], "output_name": "killed"})  # fmt: skip
        victim = _rendering(farm, record.id)
        assert _helpers_of(str(victim.node))
        local.kill_worker(str(victim.node))  # SIGKILL the worker: the host is gone, its helper with it
    finally:
        (home / "throttle").unlink()
    final = jobs.wait(farm, record.id, timeout=90)
    assert final.state == "succeeded", final.errors
    assert verify(final.outputs[0], final.plan)["exact"]
    redone = final.task(victim.name)
    assert redone.node != victim.node and victim.node in redone.failed_on and redone.attempts == 2
    assert {n.name: n for n in farm.nodes.all()}[str(victim.node)].up is False
    wait_until(lambda: not _helpers_of(str(victim.node)), 10, "the killed worker's helper lives on")
    _back(threads, str(victim.node))


def test_a_resolve_crash_in_a_threads_workers_helper_is_survived(threads: Threads) -> None:
    _, _, farm = threads
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["crash"],
                        "output_name": "crash"})  # fmt: skip
    assert record.state == "succeeded", record.errors
    assert verify(record.outputs[0], record.plan)["exact"]
    pieces = [t for t in record.tasks if t.kind != "stitch"]
    assert all(t.node == "t2" for t in pieces)
    assert record.blocked_nodes.get("crashy", 0) >= 1 and any("crashy" in t.failed_on for t in pieces)


def test_a_cancel_mid_piece_on_threads_workers_leaves_nothing(threads: Threads) -> None:
    home, _, farm = threads
    (home / "throttle").write_text("10")
    try:
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "split": 2, "tags": ["even"],
                                           "output_name": "cancelled"})  # fmt: skip
        _rendering(farm, record.id, frames=24)
        final = jobs.cancel(farm, record.id)
    finally:
        (home / "throttle").unlink()
    assert_cancelled_leaving_nothing(farm, final)


def test_the_same_piece_delivered_twice_to_threads_workers_is_rendered_once(threads: Threads) -> None:
    home, _, farm = threads
    (home / "throttle").write_text("4")  # the copy arrives while the original renders (within its 8 s limit)
    try:
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": "none", "audio": False,
                                           "tags": ["even"], "output_name": "twice"})  # fmt: skip
        piece = _rendering(farm, record.id, kind="render")
        idle = next(n for n in ("t1", "t2") if n != piece.node)
        farm.app.send_task(piece.task, args=(record.id, piece.name, record.generation),
                           queue=routing.node_queue(idle), task_id=piece.celery_id)  # fmt: skip
        log = PieceLog(farm.redis, 60)
        deadline = time.monotonic() + 30
        while not any("found the piece locked by" in line for line in log.read(record.id, piece.name)):
            assert time.monotonic() < deadline, "\n".join(log.read(record.id, piece.name))
            time.sleep(0.1)
    finally:
        (home / "throttle").unlink()
    final = jobs.wait(farm, record.id, timeout=90)
    assert final.state == "succeeded" and final.task(piece.name).attempts == 1  # rendered once
    assert verify(final.outputs[0], final.plan)["exact"]
    deadline = time.monotonic() + 30
    while not any("not run: skip" in line for line in log.read(record.id, piece.name)):  # the copy's last look
        assert time.monotonic() < deadline, "\n".join(log.read(record.id, piece.name))
        time.sleep(0.1)


def test_threads_workers_keep_a_shared_projects_lease_while_they_write_it(threads: Threads) -> None:
    _, _, farm = threads
    database = {"name": "Farm", "host": "127.0.0.1"}
    targets = [{"project": "Demo", "timeline": t, "database": database} for t in TIMELINES]
    ops = [{"op": "add_marker", "frame": 24, "color": "Blue", "name": "leased-threads"}]
    record = run(farm, {"targets": targets, "operations": ops, "tags": ["even"]}, kind="edit")
    assert record.state == "succeeded", record.errors
    assert all(t.lease == "Farm/Demo" for t in record.tasks)
    assert [t.attempts for t in record.tasks] == [1] * len(TIMELINES)  # no host wrote it read-only
    found = _shared_timelines(farm.settings.home / "sim" / "library.json")
    assert all(found[name]["markers"][24]["name"] == "leased-threads" for name in TIMELINES)
    assert list(farm.redis.scan_iter("rf:lease:*")) == []
