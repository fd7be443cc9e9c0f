"""Benchmark the farm's scaling and its own overhead, on simulated Resolve nodes.

    python bench/farm.py [--write] [--runs 3] [--fps 24] [--start 2] [--timeline Main]

Renders the same timeline (2 minutes at 24 fps; the simulator at a fixed speed) on 1, 2
and 4 nodes in one run, through a real local farm (embedded Redis, Celery workers), and
prints wall time, speed-up and parallel efficiency (speed-up / nodes). Each render job on
the simulator takes `--start` seconds to start, which the farm is not told (the start-cost
model of `bench/first.py`): efficiency is also given against the ideal that counts one
start, the work over the nodes and the stitch. Then the farm's own overhead: submit to first
segment started (p50/p95 over repeated jobs), and last segment done to verified final file.
Goals (issue "The farm"): efficiency >= 0.90 at 4 nodes; submit-to-start p50 <= 50 ms;
stitching at stream-copy speed (compared with a plain copy of the same bytes). `--write`
puts the figures in docs/benchmarks.md. Each run is a new farm; figures are the median (min-max)
over the runs, latencies pooled.
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
LATENCY_JOBS = 20  # per run


def run_job(farm: Farm, spec: dict[str, Any]) -> tuple[Any, float, float]:
    from figures import run_render

    return run_render(farm, spec)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fps", type=float, default=24.0, help="simulated render speed per node")
    parser.add_argument("--start", type=float, default=2.0, help="seconds each render job takes to start (not told)")
    parser.add_argument("--timeline", default="Main")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from figures import local_farm

    env = {"RESOLVE_SIM_FPS": str(args.fps), "RESOLVE_SIM_RENDER_START": str(args.start),
           "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5",
           "RESOLVE_FARM_PROGRESS_INTERVAL": "0.5"}  # fmt: skip
    runs = []
    for _ in range(args.runs):
        with local_farm("bench-farm-", {f"n{n}": tags for n, tags in GROUPS.items()}, env) as farm:
            runs.append(measure(farm, args.timeline, args.fps, args.start))
    report = render(runs, args.fps, args.start, args.timeline)
    print(report)
    if args.write:
        write_docs(report)


def measure(farm: Farm, timeline: str, fps: float, start: float) -> dict[str, Any]:
    scaling: dict[int, dict[str, Any]] = {}
    for nodes in (1, 2, 4):
        record, _, wall = run_job(farm, {"project": "Demo", "timeline": timeline, "tags": [f"g{nodes}"],
                                         "output_name": f"bench_{nodes}"})  # fmt: skip
        assert record.state == "succeeded", record.errors
        pieces = [t for t in record.tasks if t.kind != "stitch"]
        stitch = record.task("stitch")
        audio = sum((t.finished_at or 0) - (t.started_at or 0) for t in pieces if t.kind == "audio") * fps
        last_piece = max(t.finished_at or 0 for t in pieces)
        joined = any(t.kind == "segment" for t in pieces)
        copy_seconds = _remux_seconds(record.outputs[0]) if joined else None
        scaling[nodes] = {
            "wall": wall, "segments": record.plan.segments, "nodes_used": len({t.node for t in pieces}),
            "frames": record.plan.frames.count,
            "last_piece_to_final": (stitch.finished_at or 0) - last_piece,
            "stitch_seconds": record.task("stitch").details.get("seconds"), "copy_seconds": copy_seconds,
            "output_bytes": Path(record.outputs[0]).stat().st_size,
            "ideal": start + (record.plan.frames.count + audio) / fps / nodes
            + float(stitch.details.get("seconds") or 0.0),
        }  # fmt: skip
    latencies = []
    for i in range(LATENCY_JOBS):
        record, submitted, _ = run_job(farm, {"project": "Demo", "timeline": "Teaser", "split": "none",
                                              "frames": {"start": 86400, "end": 86405}, "audio": False,
                                              "tags": ["g4"], "output_name": f"lat_{i}"})  # fmt: skip
        latencies.append(record.tasks[0].started_at - submitted)
    return {"scaling": scaling, "latencies": latencies}


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


def spread(values: list[float], form: str = "{:.2f}") -> str:
    if len(values) == 1:
        return form.format(values[0])
    return f"{form.format(statistics.median(values))} ({form.format(min(values))}-{form.format(max(values))})"


def render(runs: list[dict[str, Any]], fps: float, start: float, timeline: str) -> str:
    def each(nodes: int, figure: str) -> list[float]:
        return [float(r["scaling"][nodes][figure]) for r in runs if r["scaling"][nodes][figure] is not None]

    first = runs[0]["scaling"]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; timeline "
        f"Demo/{timeline} ({first[1]['frames']} frames), simulator at {fps:g} frames/s per node and {start:g} s "
        "to start each render job (the farm is not told), ProRes 422 HQ with audio, split auto. The ideal counts "
        f"one start, the frames and the audio pass over the nodes, and the stitch. {len(runs)} runs, each a new "
        "farm: median (min-max).",
        "",
        "| nodes | segments | wall time | speed-up | efficiency | ideal / wall | last segment -> verified file "
        "| stitch (join + verify) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    speedups: dict[int, list[float]] = {}
    for nodes in first:
        speedups[nodes] = [r["scaling"][1]["wall"] / r["scaling"][nodes]["wall"] for r in runs]
        ideal = [r["scaling"][nodes]["ideal"] / r["scaling"][nodes]["wall"] for r in runs]
        stitch = each(nodes, "stitch_seconds")
        lines.append(f"| {nodes} | {spread(each(nodes, 'segments'), '{:.0f}')} | {spread(each(nodes, 'wall'))} s "
                     f"| {spread(speedups[nodes])}x | {spread([v / nodes for v in speedups[nodes]])} "
                     f"| {spread(ideal)} | {spread(each(nodes, 'last_piece_to_final'))} s "
                     f"| {spread(stitch) + ' s' if stitch else '-'} |")  # fmt: skip
    eff4 = statistics.median(v / 4 for v in speedups[4])
    latencies = sorted(x for r in runs for x in r["latencies"])
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    lines += [
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| efficiency at 4 nodes (median) | {eff4:.2f} | >= 0.90 | {'yes' if eff4 >= 0.9 else 'no'} |",
        f"| submit -> first segment started, p50 ({len(latencies)} jobs) | {p50 * 1000:.1f} ms | <= 50 ms | "
        f"{'yes' if p50 <= 0.05 else 'no'} |",
        f"| submit -> first segment started, p95 | {p95 * 1000:.1f} ms | - | - |",
    ]
    four = [r["scaling"][4] for r in runs if r["scaling"][4]["copy_seconds"]]
    if four:
        ratio = [f["stitch_seconds"] / f["copy_seconds"] for f in four]
        mb = statistics.median(f["output_bytes"] for f in four) / 1e6
        lines.append(
            f"| stitch of the 4-node render ({first[4]['frames']} frames, {mb:.0f} MB; join + verify) vs a bare remux "
            f"of the result | {spread([f['stitch_seconds'] for f in four], '{:.3f}')} s vs "
            f"{spread([f['copy_seconds'] for f in four], '{:.3f}')} s ({spread(ratio, '{:.1f}')}x) "
            f"| stream-copy speed (<= 2x a remux) | {'yes' if statistics.median(ratio) <= 2 else 'no'} |"
        )
    return "\n".join(lines)


def write_docs(report: str) -> None:
    from figures import write_section

    write_section("bench/farm.py", "Farm (`python bench/farm.py --write`)", report)


if __name__ == "__main__":
    main()
