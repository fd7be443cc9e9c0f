"""Benchmark the farm's scaling and its own overhead, on simulated Resolve nodes.

    python bench/farm.py [--write] [--fps 60] [--timeline Main]

Renders the same timeline (2 minutes at 24 fps; the simulator at a fixed speed) on 1, 2
and 4 nodes in one run, through a real local farm (embedded Redis, Celery workers), and
prints wall time, speed-up and parallel efficiency (speed-up / nodes). Then the farm's own
overhead: submit to first segment started (p50/p95 over repeated jobs), and last segment
done to verified final file. Goals (issue "The farm"): efficiency >= 0.90 at 4 nodes;
submit-to-start p50 <= 50 ms; stitching at stream-copy speed (compared with a plain copy
of the same bytes). `--write` puts the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from orchestrator.farm import Farm  # noqa: E402

# Node n belongs to every group of size >= n, so a job tagged gN runs on exactly N nodes.
GROUPS = {1: ["g1", "g2", "g4"], 2: ["g2", "g4"], 3: ["g4"], 4: ["g4"]}
LATENCY_JOBS = 30


def run_job(farm: Farm, spec: dict[str, Any]) -> tuple[Any, float, float]:
    from figures import run_render

    return run_render(farm, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fps", type=float, default=60.0, help="simulated render speed per node")
    parser.add_argument("--timeline", default="Main")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from figures import local_farm

    env = {"RESOLVE_SIM_FPS": str(args.fps), "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5",
           "RESOLVE_FARM_PROGRESS_INTERVAL": "0.5"}  # fmt: skip
    with local_farm("bench-farm-", {f"n{n}": tags for n, tags in GROUPS.items()}, env) as farm:
        figures = measure(farm, args.timeline)
    report = render(figures, args.fps, args.timeline)
    print(report)
    if args.write:
        write_docs(report)


def measure(farm: Farm, timeline: str) -> dict[str, Any]:
    scaling: dict[int, dict[str, Any]] = {}
    for nodes in (1, 2, 4):
        record, _, wall = run_job(farm, {"project": "Demo", "timeline": timeline, "tags": [f"g{nodes}"],
                                         "output_name": f"bench_{nodes}"})  # fmt: skip
        assert record.state == "succeeded", record.errors
        pieces = [t for t in record.tasks if t.kind != "stitch"]
        stitch = record.task("stitch")
        last_piece = max(t.finished_at or 0 for t in pieces)
        joined = any(t.kind == "segment" for t in pieces)
        copy_seconds = _remux_seconds(record.outputs[0]) if joined else None
        scaling[nodes] = {
            "wall": wall, "segments": record.plan.segments, "nodes_used": len({t.node for t in pieces}),
            "frames": record.plan.frames.count,
            "last_piece_to_final": (stitch.finished_at or 0) - last_piece,
            "stitch_seconds": record.task("stitch").details.get("seconds"), "copy_seconds": copy_seconds,
            "output_bytes": Path(record.outputs[0]).stat().st_size,
        }  # fmt: skip
    latencies = []
    for i in range(LATENCY_JOBS):
        record, submitted, _ = run_job(farm, {"project": "Demo", "timeline": "Teaser", "split": "none",
                                              "frames": {"start": 86400, "end": 86405}, "audio": False,
                                              "tags": ["g4"], "output_name": f"lat_{i}"})  # fmt: skip
        latencies.append(record.tasks[0].started_at - submitted)
    latencies.sort()
    return {"scaling": scaling, "latency_p50": statistics.median(latencies),
            "latency_p95": latencies[int(0.95 * (len(latencies) - 1))]}  # fmt: skip


def _remux_seconds(path: str) -> float:
    """Time for a bare stream copy (remux, no decode) of the joined file: the "stream-copy speed" reference."""
    import av

    target = Path(tempfile.mkdtemp(prefix="bench-remux-"))
    started = time.perf_counter()
    with av.open(path) as source, av.open(str(target / Path(path).name), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        if source.streams.video and source.streams.video[0].average_rate:
            streams[source.streams.video[0].index].codec_context.framerate = source.streams.video[0].average_rate
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    seconds = time.perf_counter() - started
    shutil.rmtree(target, ignore_errors=True)
    return seconds


def render(f: dict[str, Any], fps: float, timeline: str) -> str:
    scaling = f["scaling"]
    base = scaling[1]["wall"]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; timeline "
        f"Demo/{timeline} ({scaling[1]['frames']} frames), simulator at {fps:g} frames/s per node, ProRes 422 HQ "
        "with audio, split auto.",
        "",
        "| nodes | segments | wall time | speed-up | efficiency | last segment -> verified file | stitch (join + verify) |",
        "|---|---|---|---|---|---|---|",
    ]
    for nodes, s in scaling.items():
        speedup = base / s["wall"]
        stitch = f"{s['stitch_seconds']:.2f} s" if s["stitch_seconds"] is not None else "-"
        lines.append(f"| {nodes} | {s['segments']} | {s['wall']:.2f} s | {speedup:.2f}x | {speedup / nodes:.2f} "
                     f"| {s['last_piece_to_final']:.2f} s | {stitch} |")  # fmt: skip
    eff4 = base / scaling[4]["wall"] / 4
    four = scaling[4]
    copy_ratio = (four["stitch_seconds"] / four["copy_seconds"]) if four["copy_seconds"] else None
    mb = four["output_bytes"] / 1e6
    lines += [
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| efficiency at 4 nodes | {eff4:.2f} | >= 0.90 | {'yes' if eff4 >= 0.9 else 'no'} |",
        f"| submit -> first segment started, p50 ({LATENCY_JOBS} jobs) | {f['latency_p50'] * 1000:.1f} ms | <= 50 ms | "
        f"{'yes' if f['latency_p50'] <= 0.05 else 'no'} |",
        f"| submit -> first segment started, p95 | {f['latency_p95'] * 1000:.1f} ms | - | - |",
    ]
    if copy_ratio is not None:
        lines.append(
            f"| stitch of 4 segments ({four['frames']} frames, {mb:.0f} MB; join + verify) vs a bare remux of the result "
            f"| {four['stitch_seconds']:.3f} s vs {four['copy_seconds']:.3f} s ({copy_ratio:.1f}x; "
            f"{four['frames'] / four['stitch_seconds']:,.0f} frames/s) | stream-copy speed (<= 2x a remux) "
            f"| {'yes' if copy_ratio <= 2 else 'no'} |"
        )
    return "\n".join(lines)


def write_docs(report: str) -> None:
    from figures import write_section

    write_section("bench/farm.py", "Farm (`python bench/farm.py --write`)", report)


if __name__ == "__main__":
    main()
