"""The job engine on a real farm: defects of the old shape that must stay gone.

- the failure that ends a job is counted like any other;
- a cancel's late cleanup never touches the pieces a retry kept (generations);
- an edit failing outside the bridge is retried elsewhere, then fails the job: never left running.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import run, running_farm, wait_for_record, wait_until
from prometheus_client import generate_latest
from prometheus_client.registry import CollectorRegistry

from orchestrator import jobs, routing
from orchestrator.local.demo import verify
from orchestrator.local.metrics_server import FarmCollector

NODES: dict[str, dict[str, Any]] = {
    "e-1": {},
    "e-2": {},
    "flaky": {"tags": ["failing"], "env": {"RESOLVE_SIM_QUIRKS": "fail-render:GPU memory full"}},
    # Resolve answering None where a number was due: a TypeError in the operations, not a BridgeError.
    "numb-1": {"tags": ["numb"], "env": {"RESOLVE_SIM_QUIRKS": "none:Timeline.GetTrackCount"}},
    "numb-2": {"tags": ["numb"], "env": {"RESOLVE_SIM_QUIRKS": "none:Timeline.GetTrackCount"}},
}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    # Cancelled work is kept for ten minutes (a retry reuses it): the janitor never cleans during these tests.
    with running_farm(tmp_path_factory.mktemp("engine"), NODES, RESOLVE_FARM_CANCEL_CLEANUP_DELAY="600") as (_, f):
        yield f


def _metric(farm, name: str, **labels: str) -> float:
    registry = CollectorRegistry()
    registry.register(FarmCollector(farm))
    for line in generate_latest(registry).decode().splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_the_failure_that_ends_a_job_is_counted(farm) -> None:
    before = _metric(farm, "resolve_farm_task_failures_total", kind="render", node="flaky")
    retries = _metric(farm, "resolve_farm_task_retries_total", kind="render")
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "node": "flaky", "tags": ["failing"],
                        "max_attempts": 1, "output_name": "counted"})  # fmt: skip
    assert record.state == "failed" and "GPU memory full" in record.errors[0]
    # The worker counts the failure just after it writes the record: a scrape follows it, not the record.
    wait_until(lambda: _metric(farm, "resolve_farm_task_failures_total", kind="render", node="flaky") > before,
               30, "the failure that ended the job was not counted")  # fmt: skip
    assert _metric(farm, "resolve_farm_task_failures_total", kind="render", node="flaky") == before + 1
    assert _metric(farm, "resolve_farm_task_retries_total", kind="render") == retries  # it was not retried


def _discard(farm, job_id: str, generation: int) -> dict[str, Any]:
    """A cleanup message of `generation` arriving late, as one sent before a retry would."""
    result = farm.app.send_task("tasks.discard", args=(job_id, generation), queue=routing.POST)
    return dict(result.get(timeout=30))


def test_a_late_cleanup_never_touches_what_a_retry_kept(farm) -> None:
    # On one node the four segments render one after another: the cancel finds some done, some not
    # (on four nodes at once, all four may finish between two looks).
    spec = {"project": "Demo", "timeline": "Main", "split": 4, "audio": False, "node": "e-1", "output_name": "kept"}
    record = jobs.submit_render(farm, spec)
    segments = [t.name for t in record.tasks if t.kind == "segment"]
    some_done = wait_for_record(
        farm, record.id, lambda r: any(r.task(n).state == "done" for n in segments), "no segment finished"
    )
    assert not all(some_done.task(n).state == "done" for n in segments), "every segment finished before the cancel"
    cancelled = jobs.cancel(farm, record.id)
    assert cancelled.state == "cancelled" and cancelled.cleanup_at is not None
    kept = {n: cancelled.task(n) for n in segments if cancelled.task(n).state == "done"}
    files = {n: os.stat(str(t.output)).st_mtime_ns for n, t in kept.items()}

    retried = jobs.retry(farm, record.id)  # at once
    assert retried.generation == 2 and retried.cleanup_at is None
    assert _discard(farm, record.id, 1)["skipped"].endswith("at generation 2")  # queued or running by now
    # Cancelled again while the second generation runs: generation 1's cleanup still may not act.
    jobs.cancel(farm, record.id)
    assert _discard(farm, record.id, 1)["skipped"] == "the job is cancelled at generation 2"
    assert {n: os.stat(str(t.output)).st_mtime_ns for n, t in kept.items()} == files  # still there, untouched
    jobs.retry(farm, record.id)
    final = jobs.wait(farm, record.id, timeout=120)

    assert final.state == "succeeded", final.errors
    assert final.generation == 3
    assert verify(final.outputs[0], final.plan)["exact"]
    for name, before in kept.items():  # rendered once, in generation 1, and never again
        piece = final.task(name)
        assert piece.attempts == before.attempts and piece.finished_at == before.finished_at
        assert piece.output == before.output and "/g1/" in str(piece.output)
    assert not Path(final.plan.work_dir).exists()  # the stitch cleaned every generation up


def test_an_edit_failing_outside_the_bridge_is_retried_then_fails_the_job(farm) -> None:
    spec = {"targets": [{"project": "Demo", "timeline": "Teaser"}], "tags": ["numb"], "max_attempts": 2,
            "operations": [{"op": "set_clip_color", "items": {}, "color": "Lime"}]}  # fmt: skip
    record = run(farm, spec, kind="edit", timeout=60)
    piece = record.tasks[0]
    assert record.state == "failed" and piece.state == "failed" and piece.attempts == 2
    assert sorted(piece.failed_on) == ["numb-1", "numb-2"]  # retried on the other node, as a render is
    assert "NoneType" in str(piece.error) and record.errors == [f"{piece.name}: {piece.error}"]
    assert record.id not in farm.redis.smembers("rf:jobs:active")  # nothing left for the janitor to send again
