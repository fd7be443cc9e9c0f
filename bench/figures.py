"""Writing a benchmark's latest figures into docs/benchmarks.md, between its own markers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.farm import Farm

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(bench: str, title: str, report: str) -> None:
    """Replace the section of `bench` (e.g. "bench/farm.py") with `report`, or append it under `title`."""
    text = DOCS.read_text(encoding="utf-8")
    begin, end = f"<!-- {bench} begin -->", f"<!-- {bench} end -->"
    block = f"{begin}\n{report}\n{end}"
    if begin in text:
        text = re.sub(re.escape(begin) + r".*?" + re.escape(end), lambda _: block, text, flags=re.S)
    else:
        text += f"\n## {title}\n\n{block}\n"
    DOCS.write_text(text, encoding="utf-8")


@contextmanager
def local_farm(prefix: str, nodes: dict[str, list[str] | dict[str, Any]], env: dict[str, str]) -> Iterator[Farm]:
    """A local farm for one benchmark: embedded Redis, the named nodes (their tags, or their worker options) and a
    post worker."""
    import os
    import shutil
    import tempfile

    from orchestrator.local.farm import LocalFarm
    from orchestrator.settings import FarmSettings

    home = Path(tempfile.mkdtemp(prefix=prefix))
    env = {"RESOLVE_FARM_HOME": str(home), "RESOLVE_SIM_LIBRARY": str(home / "sim" / "library.json"), **env}
    os.environ.update(env)
    local = LocalFarm(FarmSettings(), env=env)
    try:
        yield local.start({name: opts if isinstance(opts, dict) else {"tags": opts} for name, opts in nodes.items()})
    finally:
        local.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_render(farm: Farm, spec: dict[str, Any], watch: Any = None) -> tuple[Any, float, float]:
    """Submit a render and wait until it and its pieces are over; (record, submitted at, seconds it took).

    `watch(record, submitted_at)` is called on every look at the record (ETA figures use it).
    """
    import time

    from orchestrator import jobs

    started = time.time()
    record = jobs.submit_render(farm, spec)
    while True:
        record = farm.store.get(record.id)
        if watch is not None:
            watch(record, started)
        if record.finished and not any(t.state == "running" for t in record.tasks):
            return record, started, time.time() - started
        time.sleep(0.02)


def wait_all(farm: Farm, ids: list[str], started: float) -> dict[str, float]:
    """Wait until each of the jobs `ids` has succeeded and none of its pieces runs; the seconds each took from
    `started`."""
    import time

    done: dict[str, float] = {}
    while len(done) < len(ids):
        for job_id in ids:
            record = farm.store.get(job_id)
            if job_id not in done and record.finished and not any(t.state == "running" for t in record.tasks):
                assert record.state == "succeeded", record.errors
                done[job_id] = time.time() - started
        time.sleep(0.02)
    return done


def publish(bench: str, title: str, report: str, write: bool) -> None:
    """Print a benchmark's report, and with `write` put it in docs/benchmarks.md (`write_section`)."""
    print(report)
    if write:
        write_section(bench, title, report)
