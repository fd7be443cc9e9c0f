"""Benchmark jobs that wait for jobs: an edit, then a render submitted to run after it.

    python bench/pipeline.py [--pairs 30] [--write]

On a real local farm (embedded Redis, Celery workers, two simulated Resolve nodes and a post
worker), submits an edit (one marker on Demo/Teaser) and at once a short render of the same
timeline with `after=[edit]`, `--pairs` times, one pair at a time. For each pair whose render
was still `waiting` when it was submitted (the release path, not a plain submit), it measures
the time from the edit job's end (`finished_at`, written by the edit's last transition) to the
render's first piece starting (`started_at`, written by its claim on a node). Goal (issue 13):
p50 <= 100 ms. `--write` puts the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import jobs  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402
from orchestrator.models import JobRecord  # noqa: E402

GOAL = 0.100
EDIT = {"targets": [{"project": "Demo", "timeline": "Teaser"}],
        "operations": [{"op": "add_marker", "frame": 24, "color": "Blue", "name": "bench"}]}  # fmt: skip


def finished(farm: Farm, job_id: str, timeout: float = 120) -> JobRecord:
    deadline = time.monotonic() + timeout
    while True:
        record = farm.store.get(job_id)
        if record.finished and not any(t.state == "running" for t in record.tasks):
            return record
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is still {record.state}")
        time.sleep(0.02)


def measure(farm: Farm, pairs: int) -> dict[str, Any]:
    gaps: list[float] = []
    released_at_once = 0
    for i in range(pairs):
        edit = jobs.submit_edit(farm, EDIT)
        render = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": "none", "audio": False,
                                           "frames": {"start": 86400, "end": 86405}, "output_name": f"pipe_{i}"},
                                    after=[edit.id])  # fmt: skip
        edited, rendered = finished(farm, edit.id), finished(farm, render.id)
        assert edited.state == "succeeded" and rendered.state == "succeeded", (edited.errors, rendered.errors)
        if render.state != "waiting":  # the edit was over before the render was submitted: not a release
            released_at_once += 1
            continue
        assert edited.finished_at is not None
        first = min(t.started_at for t in rendered.tasks if t.started_at)
        gaps.append(first - edited.finished_at)
    gaps.sort()
    return {"pairs": pairs, "measured": len(gaps), "not_waiting": released_at_once,
            "p50": statistics.median(gaps), "p95": gaps[int(0.95 * (len(gaps) - 1))], "max": gaps[-1]}  # fmt: skip


def report(f: dict[str, Any]) -> str:
    met = "yes" if f["p50"] <= GOAL else "no"
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; two simulated "
        f"Resolve nodes and a post worker; {f['pairs']} pairs (an edit of one marker, then a 6-frame render "
        f"submitted at once with `after=[edit]`); {f['measured']} renders were `waiting` when submitted and are "
        f"measured ({f['not_waiting']} found their edit already over).",
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| edit job's end -> render's first piece started, p50 | {f['p50'] * 1000:.1f} ms | <= 100 ms | {met} |",
        f"| same, p95 | {f['p95'] * 1000:.1f} ms | - | - |",
        f"| same, max | {f['max'] * 1000:.1f} ms | - | - |",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=30)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from figures import local_farm

    env = {"RESOLVE_SIM_FPS": "240", "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5",
           "RESOLVE_FARM_PROGRESS_INTERVAL": "0.5"}  # fmt: skip
    with local_farm("bench-pipeline-", {"p1": [], "p2": []}, env) as farm:
        figures = measure(farm, args.pairs)
    text = report(figures)
    print(text)
    if args.write:
        from figures import write_section

        write_section("bench/pipeline.py", "Jobs that wait for jobs (`python bench/pipeline.py --write`)", text)


if __name__ == "__main__":
    main()
