"""Benchmark the long-GOP stitch: an H.264 render split across four nodes, joined by stream copy.

    python bench/gop.py [--write] [--fps 240] [--scale 0.1333] [--runs 5]

Renders Demo/Main (2 minutes at 24 fps, 2,880 frames) as H.264 in MP4 with AAC audio, split
auto across four simulated nodes of a real local farm. The post worker is held back until the
segments and the audio are done, so that they can be kept aside; then it stitches (the farm's
own stitch time is reported). On the kept segments, run by run, the same stitch code
(`tasks.stitch._join`: decision, join, proof, checks) is timed joining by stream copy and
joining by re-encoding (as a long-GOP split did before, now with its input proof), and a
bare remux of the joined file (PyAV, no decode, nothing checked) as the stream-copy reference.
Goals (issue 12): stream-copy stitch <= 2x a bare remux; the re-encoding stitch: the ratio.

Note: the machine is shared with other work, so the figures are noisy; each run times the
three in turn under the same load and the medians are reported.
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

NODES = ("n1", "n2", "n3", "n4")
SPEC = {"project": "Demo", "timeline": "Main", "format": "mp4", "codec": "H264", "output_name": "gop_bench"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fps", type=float, default=240.0, help="simulated render speed per node")
    parser.add_argument("--scale", type=float, default=None, help="picture scale (RESOLVE_SIM_SCALE)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    keep = Path(tempfile.mkdtemp(prefix="bench-gop-kept-"))
    try:
        record = render_keeping_segments(args.fps, args.scale, keep)
        figures = measure(record, keep, args.runs)
    finally:
        shutil.rmtree(keep, ignore_errors=True)
    report = render(figures, args)
    print(report)
    if args.write:
        from figures import write_section

        write_section("bench/gop.py", "Long-GOP stitch (`python bench/gop.py --write`)", report)


def render_keeping_segments(fps: float, scale: float | None, keep: Path) -> Any:
    """Render on four nodes with the post worker held back; copy the done pieces' files into `keep`; stitch."""
    from orchestrator import jobs
    from orchestrator.local.farm import LocalFarm
    from orchestrator.settings import FarmSettings

    home = Path(tempfile.mkdtemp(prefix="bench-gop-"))
    env = {"RESOLVE_FARM_HOME": str(home), "RESOLVE_SIM_LIBRARY": str(home / "sim" / "library.json"),
           "RESOLVE_SIM_FPS": str(fps), "RESOLVE_FARM_PROGRESS_INTERVAL": "0.5",
           **({"RESOLVE_SIM_SCALE": str(scale)} if scale else {})}  # fmt: skip
    os.environ.update(env)
    local = LocalFarm(FarmSettings(), env=env)
    try:
        farm = local.start({name: {} for name in NODES})
        local.stop_worker("post")  # the stitch waits until the pieces are kept aside
        record = jobs.submit_render(farm, SPEC)
        while True:
            record = farm.store.get(record.id)
            assert not record.finished, record.errors
            stitch = record.task("stitch")
            if all(record.task(name).state in ("done", "skipped", "cancelled") for name in stitch.after):
                break
            time.sleep(0.05)
        for piece in (t for t in record.tasks if t.state == "done" and t.output):
            shutil.copy2(str(piece.output), keep / Path(str(piece.output)).name)
        local.add_worker("post", post=True, resolve=False)
        final = jobs.wait(farm, record.id, timeout=600)
        assert final.state == "succeeded", final.errors
        return final
    finally:
        local.stop()
        shutil.rmtree(home, ignore_errors=True)


def _record_on(record: Any, keep: Path, stitch: str, output: Path) -> Any:
    """The finished job's record, its pieces' files taken from `keep`, stitched by `stitch` into `output`."""
    copy = record.model_copy(deep=True)
    copy.plan.stitch, copy.plan.output, copy.generation = stitch, str(output), 1
    for piece in copy.tasks:
        if piece.output and piece.kind != "stitch":
            piece.output = str(keep / Path(piece.output).name)
    return copy


def measure(record: Any, keep: Path, runs: int) -> dict[str, Any]:
    from tasks.stitch import _join

    work = Path(tempfile.mkdtemp(prefix="bench-gop-out-"))
    copies, reencodes, remuxes = [], [], []
    try:
        for run in range(runs + 1):
            by_copy, by_reencode = (_record_on(record, keep, how, work / how) for how in ("copy", "reencode"))
            started = time.perf_counter()
            joined, how = _join(by_copy)
            copied = time.perf_counter() - started
            assert how.method == "copy", how
            remuxed = _remux_seconds(str(joined), work / f"remux{joined.suffix}")
            started = time.perf_counter()
            again, how = _join(by_reencode)
            reencoded = time.perf_counter() - started
            assert how.method == "reencode", how
            size = joined.stat().st_size
            joined.unlink()
            again.unlink()
            if run:  # the first run warms the caches
                copies.append(copied)
                remuxes.append(remuxed)
                reencodes.append(reencoded)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    pieces = [t for t in record.tasks if t.kind == "segment" and t.state == "done"]
    return {
        "frames": record.plan.frames.count, "pieces": len(pieces), "nodes": len({t.node for t in pieces}),
        "farm_stitch": record.task("stitch").details["seconds"], "farm_method": record.task("stitch").details["stitch"],
        "copy": statistics.median(copies), "remux": statistics.median(remuxes),
        "reencode": statistics.median(reencodes), "mb": size / 1e6, "runs": runs,
        "ratios": sorted(c / r for c, r in zip(copies, remuxes, strict=True)),
    }  # fmt: skip


def _remux_seconds(path: str, dest: Path) -> float:
    """A bare stream copy (remux, no decode, nothing checked) of the joined file: the stream-copy reference."""
    import av

    started = time.perf_counter()
    with av.open(path) as source, av.open(str(dest), "w") as out:
        streams = {s.index: out.add_stream_from_template(s) for s in source.streams}
        for packet in source.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                out.mux(packet)
    seconds = time.perf_counter() - started
    dest.unlink()
    return seconds


def render(f: dict[str, Any], args: argparse.Namespace) -> str:
    copy_ratio, reencode_ratio = f["copy"] / f["remux"], f["reencode"] / f["copy"]
    scale = f", picture scale {args.scale}" if args.scale else ""
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Demo/Main "
        f"({f['frames']} frames) as H.264 in MP4 with AAC, split auto on 4 simulated nodes at {args.fps:g} frames/s "
        f"each{scale}: {f['pieces']} pieces on {f['nodes']} nodes, joined {f['mb']:.1f} MB. Medians of {f['runs']} "
        "runs of the same stitch code on the kept pieces; measured on a shared 2-core machine (noisy).",
        "",
        "| stitch | time | goal | met |",
        "|---|---|---|---|",
        f"| on the farm (the job's own stitch: {f['farm_method']}) | {f['farm_stitch']:.3f} s | - | - |",
        f"| stream copy: decision + join + content proof + checks | {f['copy']:.3f} s | - | - |",
        f"| bare remux of the joined file (reference) | {f['remux']:.3f} s | - | - |",
        f"| stream-copy stitch / bare remux | {copy_ratio:.2f}x (runs {f['ratios'][0]:.2f}x..{f['ratios'][-1]:.2f}x) "
        f"| <= 2x | {'yes' if copy_ratio <= 2 else '**no**'} |",
        f"| re-encoding stitch (decode + encode, input proof, timing check) | {f['reencode']:.3f} s | - | - |",
        f"| re-encoding stitch / stream-copy stitch | {reencode_ratio:.1f}x | ratio | - |",
    ])  # fmt: skip


if __name__ == "__main__":
    main()
