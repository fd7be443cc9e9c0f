"""Benchmark the proxies job: 40 clips of mixed lengths on one transcode node and on four; a re-run with nothing to do.

    python bench/proxies.py [--fps 200] [--no-uncapped] [--write]

Forty source movies (H.264 with AAC sound, 256x144, 24 fps, 2 to 20 s long: 10,632 frames in
all; made once with PyAV and cached) are imported into project `Bench40` of a simulated
Resolve host, which only scans and links (`--no-transcode`); one, then four, transcode-only
nodes (`--no-resolve --transcode`) make ProRes 422 Proxy at half size. Each farm is new, so
every proxy is made. Then, on the four-node farm, the same job again: every proxy is current.

Note: this machine has two cores. A PyAV transcode is real work on the CPU, so four
transcode processes here cannot go four times as fast as one: the capped scenarios hold each
node to `--fps` frames per second (`RESOLVE_FARM_TRANSCODE_FPS`), as the render benchmarks
hold simulated Resolve hosts to `RESOLVE_SIM_FPS`, modelling nodes with a CPU each; four capped
nodes use about half of the two cores. The uncapped pair shows what the two cores allow.
Goals (issue 13): efficiency >= 0.85 at four nodes; a re-run with nothing to do in seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bridge.sim import media  # noqa: E402
from orchestrator import jobs  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402
from orchestrator.models import JobRecord  # noqa: E402

CLIPS = 40
PROJECT = "Bench40"
EFFICIENCY_GOAL = 0.85
ENV = {
    "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1",
    "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5",
    "RESOLVE_FARM_PROGRESS_INTERVAL": "0.5",
}


def seconds_of(index: int) -> int:
    """Clip `index`'s length: 2 to 20 s, mixed (the sequence 2 + 7i mod 19)."""
    return 2 + (7 * index) % 19


def sources() -> list[Path]:
    """The forty source movies, made on first use and kept in the simulator's media cache."""
    folder = media.media_dir() / "bench40"
    colors = list(media.COLORS)
    clips = [
        media.SourceClip(f"B{i:03d}_C{i:03d}.mov", 24 * seconds_of(i), 24.0, colors[i % len(colors)])
        for i in range(1, CLIPS + 1)
    ]
    return [media.ensure(clip, folder) for clip in clips]


def make_project(library: Path, files: list[Path]) -> None:
    """Project Bench40 in the farm's simulated library, its forty clips in bin `Rushes`."""
    from bridge.sim.config import SimConfig
    from bridge.sim.library import Library
    from bridge.sim.resolve import Resolve
    from bridge.sim.state import SimState

    pm = Resolve(SimState(SimConfig(library=library, host="setup"), Library(library))).GetProjectManager()
    project = pm.CreateProject(PROJECT)
    pool = project.GetMediaPool()
    rushes = pool.AddSubFolder(pool.GetRootFolder(), "Rushes")
    assert pool.SetCurrentFolder(rushes)
    assert len(pool.ImportMedia([str(f) for f in files])) == CLIPS
    assert pm.SaveProject() and pm.CloseProject(project)


class BenchFarm:
    """A local farm: one Resolve host that scans and links, and `transcoders` transcode-only nodes."""

    def __init__(self, transcoders: int, fps: float, files: list[Path]) -> None:
        from orchestrator.local.farm import LocalFarm
        from orchestrator.settings import FarmSettings

        self.home = Path(tempfile.mkdtemp(prefix="rf-bench-proxies-"))
        env = {**ENV, "RESOLVE_FARM_HOME": str(self.home), "RESOLVE_SIM_LIBRARY": str(self.home / "sim" / "library.json"),
               "RESOLVE_FARM_TRANSCODE_FPS": repr(fps)}  # fmt: skip
        os.environ.update(env)
        make_project(self.home / "sim" / "library.json", files)
        self.local = LocalFarm(FarmSettings(), env=env)
        nodes: dict[str, dict[str, Any]] = {"resolve": {"transcode": False}}
        nodes.update({f"tc-{n}": {"resolve": False, "transcode": True} for n in range(1, transcoders + 1)})
        self.farm: Farm = self.local.start(nodes)

    def close(self) -> None:
        self.local.stop()
        shutil.rmtree(self.home, ignore_errors=True)


def run(farm: Farm) -> tuple[JobRecord, float]:
    """Submit proxies for Bench40 and wait for the job and every piece to be over; (record, seconds)."""
    started = time.monotonic()
    record = jobs.submit(farm, "proxies", {"project": PROJECT, "bin": "Rushes"})
    while True:
        record = farm.store.get(record.id)
        if record.finished and not any(t.state == "running" for t in record.tasks):
            return record, time.monotonic() - started
        time.sleep(0.02)


def piece_seconds(record: JobRecord, kind: str) -> float:
    pieces = [t for t in record.tasks if t.kind == kind and t.started_at and t.finished_at]
    return sum((t.finished_at or 0) - (t.started_at or 0) for t in pieces)


def scenario(transcoders: int, fps: float, files: list[Path], rerun: bool = False) -> dict[str, Any]:
    farm = BenchFarm(transcoders, fps, files)
    try:
        record, seconds = run(farm.farm)
        transcodes = [t for t in record.tasks if t.kind == "transcode"]
        assert record.state == "succeeded", record.errors
        assert len(transcodes) == CLIPS and record.task("link").details["linked"] == CLIPS
        frames = sum(t.frames_done for t in transcodes)
        result: dict[str, Any] = {
            "nodes": transcoders, "fps": fps, "seconds": seconds, "frames": frames,
            "scan": piece_seconds(record, "scan"), "link": piece_seconds(record, "link"),
            "per_node": dict(sorted(Counter(str(t.node) for t in transcodes).items())),
        }  # fmt: skip
        if rerun:
            again, again_seconds = run(farm.farm)
            assert again.state == "succeeded" and [t.name for t in again.tasks] == ["scan"], again.public()
            assert again.task("scan").details["current"] == CLIPS
            result["rerun"] = again_seconds
        return result
    finally:
        farm.close()


def report(capped: tuple[dict[str, Any], dict[str, Any]], uncapped: tuple[dict[str, Any], dict[str, Any]] | None,
           fps: float) -> str:  # fmt: skip
    one, four = capped
    speedup = one["seconds"] / four["seconds"]
    efficiency = speedup / 4
    ideal_one = one["frames"] / fps
    lines = [
        f"Measured on {platform.node()} ({os.cpu_count()} cores, shared with other work: figures vary by a few "
        f"per cent from run to run), {time.strftime('%Y-%m-%d')}. 40 clips, {one['frames']:,} frames in all "
        f"(2 to 20 s each at 24 fps, 256x144 H.264 + AAC), to ProRes 422 Proxy at half size; one Resolve host "
        f"scans and links, transcode-only nodes transcode.",
        "",
        "| farm | transcode speed per node | wall time | speed-up | efficiency | goal | scan | link | clips per node |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| 1 node | {fps:g} fps (capped) | {one['seconds']:.1f} s (ideal {ideal_one:.1f} s) | 1.00 | 1.00 | | "
        f"{one['scan']:.2f} s | {one['link']:.2f} s | {', '.join(map(str, one['per_node'].values()))} |",
        f"| 4 nodes | {fps:g} fps (capped) | {four['seconds']:.1f} s (ideal {ideal_one / 4:.1f} s) | {speedup:.2f} | "
        f"**{efficiency:.2f}** | >= {EFFICIENCY_GOAL} ({efficiency / EFFICIENCY_GOAL:.2f}x the goal) | "
        f"{four['scan']:.2f} s | {four['link']:.2f} s | {', '.join(map(str, four['per_node'].values()))} |",
    ]
    if uncapped:
        u1, u4 = uncapped
        up = u1["seconds"] / u4["seconds"]
        lines += [
            f"| 1 node | uncapped ({u1['frames'] / max(u1['seconds'], 1e-6):.0f} fps overall) | {u1['seconds']:.1f} s "
            f"| 1.00 | 1.00 | | {u1['scan']:.2f} s | {u1['link']:.2f} s | {', '.join(map(str, u1['per_node'].values()))} |",
            f"| 4 nodes | uncapped, on {os.cpu_count()} cores | {u4['seconds']:.1f} s | {up:.2f} | {up / 4:.2f} | "
            f"(CPU-bound: cannot pass {os.cpu_count()}x here) | {u4['scan']:.2f} s | {u4['link']:.2f} s | "
            f"{', '.join(map(str, u4['per_node'].values()))} |",
        ]
    lines += [
        "",
        f"A re-run with nothing to do (every proxy current: the scan reads 40 clips, their sources' size, time and "
        f"sampled digest, and the records beside the proxies; no piece is added): **{four['rerun']:.2f} s** from "
        f"submit to succeeded (goal: seconds, not minutes).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fps", type=float, default=200.0, help="each transcode node's cap (frames per second)")
    parser.add_argument("--no-uncapped", action="store_true", help="skip the uncapped pair")
    parser.add_argument("--write", action="store_true", help="put the figures in docs/benchmarks.md")
    args = parser.parse_args()
    files = sources()
    capped = (scenario(1, args.fps, files), scenario(4, args.fps, files, rerun=True))
    for label, found in zip(("1 node", "4 nodes"), capped, strict=True):
        print(f"capped {label}: {found}", flush=True)
    uncapped = None
    if not args.no_uncapped:
        uncapped = (scenario(1, 0.0, files), scenario(4, 0.0, files))
        for label, found in zip(("1 node", "4 nodes"), uncapped, strict=True):
            print(f"uncapped {label}: {found}", flush=True)
    text = report(capped, uncapped, args.fps)
    print(text)
    efficiency = capped[0]["seconds"] / capped[1]["seconds"] / 4
    print(f"efficiency at four nodes {efficiency:.2f} against the goal {EFFICIENCY_GOAL}: "
          f"{efficiency / EFFICIENCY_GOAL:.2f}x; re-run {capped[1]['rerun']:.2f} s")  # fmt: skip
    if args.write:
        from figures import write_section

        write_section("bench/proxies.py", "Proxies (`python bench/proxies.py --write`)", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
