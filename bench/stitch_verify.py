"""Benchmark the cost of proving a stream-copy stitch by content.

    python bench/stitch_verify.py [--frames 2880] [--size 640x360] [--runs 11]

Encodes four ProRes segments (synthetic moving frames, `prores_aw`, as the simulator does),
records each one's packet digest as a finished segment piece does, then times, run by run,
the stitch's join (`join_copy`), the count check a stitch without the proof makes
(`describe`: the frame count from the header) and the content proof that takes its place in
the stitch (`check_copy`: one read of the joined file, every packet hashed, the frames counted).
Goal (issue 12): join + proof <= 1.5x the join + count check.

Note: the machine is shared, so figures are noisy; each run's ratio pairs a join with its
own proof (both under the same load), the joined file is deleted after each run (dirty pages
of earlier runs would slow later writes), and the median of the runs' ratios is the figure.
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

from tasks.join import join_copy  # noqa: E402
from tasks.proof import check_copy, describe, video_digest  # noqa: E402


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
    parser.add_argument("--runs", type=int, default=11)
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
        joins, counts, proofs = [], [], []
        for run in range(args.runs + 1):
            dest = folder / "out.mov"
            started = time.perf_counter()
            join_copy(segments, None, str(dest))
            joined = time.perf_counter()
            assert describe(str(dest))["frames"] == share * 4  # the stitch's check without the proof
            counted = time.perf_counter()
            assert check_copy(str(dest), digests)["frames"] == share * 4  # with it: the proof also counts
            proved = time.perf_counter()
            dest.unlink()
            if run:  # the first run warms the caches
                joins.append(joined - started)
                counts.append(counted - joined)
                proofs.append(proved - counted)
        size = sum(Path(p).stat().st_size for p in segments) / 1e6
        ratios = sorted((j + p) / (j + c) for j, c, p in zip(joins, counts, proofs, strict=True))
        print(f"4 ProRes segments, {share * 4} frames {width}x{height}, {size:.1f} MB; {args.runs} runs")
        print(f"join:                   median {statistics.median(joins):.3f} s, min {min(joins):.3f} s")
        print(f"count check (header):   median {statistics.median(counts):.4f} s")
        print(f"content proof + count:  median {statistics.median(proofs):.3f} s, min {min(proofs):.3f} s")
        print(f"ratio (join + proof) / (join + count check), per run: median {statistics.median(ratios):.2f}x, "
              f"range {ratios[0]:.2f}x..{ratios[-1]:.2f}x (goal <= 1.5x)")  # fmt: skip


if __name__ == "__main__":
    main()
