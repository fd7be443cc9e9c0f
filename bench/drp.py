"""Benchmark .drp distribution: a split render of a .drp project on four nodes, against the same
render of a project already in every host's library.

    python bench/drp.py [--rounds 5] [--segments 16] [--write]

Four simulated Resolve nodes, each with a project library of its own (a host's local database,
so one host's import is invisible to the others, as on real hosts), and a post worker. Each
round renders Demo/Main (frames 86400..87839, video only, `--segments` segments, four a node)
three times: from the project in the library, from a .drp exported from it, changed every
round (a marker added) so that each host has to import it, and from that .drp again in another
job (the reuse across jobs: no import at all). Imports per host are counted from the pieces'
logs ("imported ..." once per host is the goal; every other piece says "reused ..."). Prints
wall times and the ratio .drp / library (issue 13). `--write` puts the figures in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator import jobs  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402

NODES = ("n1", "n2", "n3", "n4")
FRAMES = {"start": 86400, "end": 87839}


def render(farm: Farm, spec: dict[str, Any]) -> tuple[Any, float]:
    from figures import run_render

    record, _, seconds = run_render(farm, spec)
    assert record.state == "succeeded", record.errors
    return record, seconds


def said(farm: Farm, job_id: str, what: str) -> Counter[str]:
    counts: Counter[str] = Counter()
    for lines in jobs.piece_logs(farm, job_id).values():
        for line in lines:
            found = re.match(rf"\S+ (\S+) INFO {what} ", line)
            if found:
                counts[found.group(1)] += 1
    return counts


def export(drp: Path, marker: int | None) -> None:
    from bridge.sim import scriptapp

    pm = scriptapp("Resolve").GetProjectManager()
    project = pm.LoadProject("Demo")
    if marker is not None:
        project.GetTimelineByIndex(1).AddMarker(marker, "Red", "changed", "", 1)
    assert pm.ExportProject("Demo", str(drp))


def measure(farm: Farm, storage: Path, rounds: int, segments: int) -> dict[str, Any]:
    drp = storage / "projects" / "Show.drp"
    drp.parent.mkdir(parents=True, exist_ok=True)
    base = {"timeline": "Main", "frames": FRAMES, "split": segments, "audio": False}
    library, imported, per_host, reused = [], [], [], []
    again_imports = again_reused = 0
    for i in range(rounds):  # interleaved, so that the shared machine's load drifts alike over the three
        _, wall = render(farm, {**base, "project": "Demo", "output_name": f"lib_{i}"})
        library.append(wall)
        export(drp, marker=86500 + i)  # another content: every host imports it again
        record, wall = render(farm, {**base, "project": "Show", "drp": str(drp), "output_name": f"drp_{i}"})
        imported.append(wall)
        counts = said(farm, record.id, "imported")
        hosts = {t.node for t in record.tasks if t.kind == "segment"}
        per_host.append({node: counts.get(node, 0) for node in sorted(hosts)})
        record, wall = render(farm, {**base, "project": "Show", "drp": str(drp), "output_name": f"drp_again_{i}"})
        reused.append(wall)
        again_imports += sum(said(farm, record.id, "imported").values())
        again_reused += sum(said(farm, record.id, "reused").values())
    return {
        "rounds": rounds, "segments": segments, "library": library, "imported": imported, "per_host": per_host,
        "reused_wall": statistics.median(reused), "reused_imports": again_imports, "reused_pieces": again_reused,
    }  # fmt: skip


def report(f: dict[str, Any]) -> str:
    lib, imp = statistics.median(f["library"]), statistics.median(f["imported"])
    ratio = imp / lib
    once = all(set(r.values()) == {1} for r in f["per_host"])
    hosts = ", ".join(" ".join(f"{n}:{c}" for n, c in r.items()) for r in f["per_host"])
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; four simulated "
        f"nodes with a library each, Demo/Main frames {FRAMES['start']}..{FRAMES['end']} video only in "
        f"{f['segments']} segments, {f['rounds']} rounds (median), simulator at 240 frames/s per node.",
        "",
        "| render | wall time | imports |",
        "|---|---|---|",
        f"| project already in every host's library | {lib:.2f} s | - |",
        f"| from a .drp new to every host | {imp:.2f} s | per host, each round: {hosts} |",
        f"| from the same .drp again (later jobs) | {f['reused_wall']:.2f} s | {f['reused_imports']} in "
        f"{f['rounds']} jobs ({f['reused_pieces']} pieces reused the hosts' imports) |",
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| imports per host of one .drp content | {'1' if once else 'not 1: ' + hosts} | 1 | {'yes' if once else 'no'} |",
        f"| .drp render / library render | {ratio:.2f}x | - | - |",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from orchestrator.local.farm import LocalFarm
    from orchestrator.settings import FarmSettings

    home = Path(tempfile.mkdtemp(prefix="bench-drp-"))
    env = {"RESOLVE_FARM_HOME": str(home), "RESOLVE_SIM_LIBRARY": str(home / "sim" / "library.json"),
           "RESOLVE_SIM_FPS": "240", "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5",
           "RESOLVE_FARM_PROGRESS_INTERVAL": "0.5", "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24"}  # fmt: skip
    os.environ.update(env)
    local = LocalFarm(FarmSettings(), env=env)
    try:
        nodes = {n: {"env": {"RESOLVE_SIM_LIBRARY": str(home / "hosts" / n / "library.json")}} for n in NODES}
        farm = local.start(nodes)
        figures = measure(farm, farm.settings.storage_roots[0], args.rounds, args.segments)
    finally:
        local.stop()
        shutil.rmtree(home, ignore_errors=True)
    text = report(figures)
    print(text)
    if args.write:
        from figures import write_section

        write_section("bench/drp.py", "Projects from a .drp (`python bench/drp.py --write`)", text)


if __name__ == "__main__":
    main()
