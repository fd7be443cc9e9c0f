"""Starting a real local farm for tests: embedded Redis, worker processes, the simulator."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from orchestrator import jobs
from orchestrator.farm import Farm
from orchestrator.local.farm import LocalFarm
from orchestrator.models import JobRecord
from orchestrator.settings import FarmSettings

FAST = {
    "RESOLVE_FARM_HEARTBEAT_INTERVAL": "0.5",
    "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "3",
    "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24",
    "RESOLVE_FARM_LOCK_TTL": "4",
    "RESOLVE_FARM_PROGRESS_INTERVAL": "0.2",
    "RESOLVE_SIM_FPS": "480",
    "RESOLVE_FARM_CANCEL_CLEANUP_DELAY": "0",
}


@contextlib.contextmanager
def farm_env(home: Path, **extra: str) -> Iterator[dict[str, str]]:
    """Set the farm's variables in this process (the tests' client side) and restore them after."""
    env = {**FAST, "RESOLVE_FARM_HOME": str(home), "RESOLVE_SIM_LIBRARY": str(home / "sim" / "library.json"), **extra}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield env
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def running_farm(
    home: Path, nodes: dict[str, dict[str, Any]], workers: dict[str, str] | None = None, **extra: str
) -> Iterator[tuple[LocalFarm, Farm]]:
    """A farm with the given Resolve nodes ({name: add_worker options}) and a post worker; `workers`: variables
    for every worker's environment only (`extra` are also set in this process)."""
    with farm_env(home, **extra) as env:
        local = LocalFarm(FarmSettings(), env={**env, **(workers or {})})
        for root in local.settings.storage_roots:  # (a real farm's are mounted shares: it never makes them)
            root.mkdir(parents=True, exist_ok=True)
        try:
            yield local, local.start(nodes)
        finally:
            local.stop()


def run(farm: Farm, spec: dict[str, Any], timeout: float = 120, kind: str = "render") -> JobRecord:
    record = jobs.submit_render(farm, spec) if kind == "render" else jobs.submit_edit(farm, spec)
    final = jobs.wait(farm, record.id, timeout=timeout)
    assert final.finished, f"job {final.id} still {final.state} after {timeout}s: {final.public()}"
    return final


def queued_messages(farm: Farm) -> int:
    """Messages waiting in every queue of the broker (Celery's Redis queues are lists)."""
    total = 0
    for key in farm.redis.scan_iter("v1.*"):
        if farm.redis.type(key) == "list":
            total += farm.redis.llen(key)
    return total


def settle(farm: Farm, timeout: float = 60) -> None:
    """Wait until no job is unfinished and no message waits: a quiet farm to compare against."""
    import time

    deadline = time.monotonic() + timeout
    while any(not r.finished for r in farm.store.list(limit=10_000)) or queued_messages(farm):
        assert time.monotonic() < deadline, "the farm did not settle"
        time.sleep(0.1)


def wait_for_record(farm: Farm, job_id: str, check: Any, what: str, timeout: float = 60) -> JobRecord:
    """Wait until `check(record)` holds for the job's record; the record then."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        record = farm.store.get(job_id)
        if check(record):
            return record
        assert time.monotonic() < deadline, f"{what}: {record.public()}"
        time.sleep(0.05)


def wait_until(condition: Any, timeout: float, what: str) -> None:
    """Wait until `condition()` holds: for what is written after the record settles (metrics, files)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def render_past_a_hung_host(farm: Farm, hung: str, sure: str, tag: str = "hang") -> JobRecord:
    """Teaser split in two on `hung` (its Resolve never answers a call) and `sure`: the job succeeds frame-exactly,
    every piece ends on `sure`, and those lost on `hung` were tried again there (the same proof in every pool)."""
    from orchestrator.local.demo import verify

    record = run(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": [tag], "output_name": hung},
                 timeout=120)  # fmt: skip
    assert record.state == "succeeded", record.errors
    assert verify(record.outputs[0], record.plan)["exact"]
    pieces = [t for t in record.tasks if t.kind != "stitch"]
    assert all(t.node == sure for t in pieces), [(t.name, t.node) for t in pieces]
    lost = [t for t in pieces if hung in t.failed_on]
    assert lost and all(t.attempts >= 2 for t in lost)
    return record


def assert_cancelled_leaving_nothing(farm: Farm, record: JobRecord) -> None:
    """A job cancelled mid-render (`record` as the cancel returned it): no piece runs, the post worker discards its
    segments and audio, and nothing is left under the output's name, not even a hidden temporary."""
    assert record.state == "cancelled" and not any(t.state == "running" for t in record.tasks)
    work = Path(record.plan.work_dir)
    wait_until(lambda: not work.exists(), 20, f"the cancelled job's pieces are still there: {work}")
    output = Path(record.plan.output + ".mov")
    assert not output.exists() and not list(output.parent.glob(f".{output.stem}*"))
    assert farm.store.get(record.id).state == "cancelled"
