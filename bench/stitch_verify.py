"""Benchmark the cost of proving a stream-copy stitch by content.

    python bench/stitch_verify.py [--frames 2880] [--size 640x360] [--runs 5]

Encodes four ProRes segments (synthetic moving frames, `prores_aw`, as the simulator does),
records each one's packet digest as a finished segment piece does, then times the stitch's
join (`join_copy` + the count check) alone and the join followed by the content proof
(`check_copy`). Goal (issue 12): join + proof <= 1.5x the join without it. Median of runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tasks.join import check_copy, describe, join_copy, video_digest  # noqa: E402


def _segment(path: Path, first: int, count: int, width: int, height: int) -> None:
    with av.open(str(path), "w", format="mov") as out:
        stream = out.add_stream("prores_aw", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv422p10le"
        ramp = np.arange(width, dtype=np.uint16)
        for index in range(first, first + count):
            plane = np.tile((ramp + index * 7) % 256, (height, 1)).astype(np.uint8)
            rgb = np.stack([plane, np.roll(plane, index, axis=1), plane[::-1]], axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = index - first
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=2880)
    parser.add_argument("--size", default="640x360")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        share = args.frames // 4
        segments = []
        for number in range(4):
            path = folder / f"seg{number}.mov"
            _segment(path, number * share, share, width, height)
            segments.append(str(path))
        digests = [(f"s{n}", video_digest(path)) for n, path in enumerate(segments)]
        plain, proved = [], []
        for run in range(args.runs):
            dest = str(folder / f"out{run}.mov")
            started = time.perf_counter()
            join_copy(segments, None, dest)
            assert describe(dest)["frames"] == share * 4
            plain.append(time.perf_counter() - started)
            dest = str(folder / f"proved{run}.mov")
            started = time.perf_counter()
            join_copy(segments, None, dest)
            assert describe(dest)["frames"] == share * 4
            check_copy(dest, digests)
            proved.append(time.perf_counter() - started)
        size = sum(Path(p).stat().st_size for p in segments) / 1e6
        join, both = statistics.median(plain), statistics.median(proved)
        print(f"4 ProRes segments, {share * 4} frames {width}x{height}, {size:.1f} MB; median of {args.runs} runs")
        print(f"join + count check:           {join:.3f} s")
        print(f"join + count check + proof:   {both:.3f} s")
        print(f"ratio: {both / join:.2f}x (goal <= 1.5x)")


if __name__ == "__main__":
    main()
