"""Cutting a render into segments, and naming what they produce.

A range is cut into as many segments as there are live eligible nodes (times
`segments_per_node`), never into segments shorter than `min_segment_frames`. Segments of
all-intra codecs (ProRes, DNxHR) join frame-exactly by stream copy; long-GOP codecs
(H.264, H.265) render unsplit unless the user asks, and then the stitch re-encodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.models import RenderSpec

EXTENSIONS = {"mov": "mov", "mp4": "mp4", "mxf_op1a": "mxf", "mxf": "mxf", "tif": "tif"}


@dataclass(frozen=True)
class Segment:
    """Frames start..end (inclusive) of the timeline, rendered into `file`."""

    index: int
    start: int
    end: int
    file: str

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Plan:
    """How one render job is carried out."""

    segments: list[Segment]
    audio_file: str | None  # the separate audio pass, when the job is split and wants audio
    single_pass: bool  # one task renders video (and audio) in one go: no join
    stitch: str  # "copy", "reencode" or "move"
    work_dir: str
    output: str
    nodes: list[str]

    @property
    def frames(self) -> int:
        return sum(s.frames for s in self.segments)


def segment_count(frames: int, nodes: int, spec: RenderSpec, min_frames: int, per_node: int) -> int:
    if spec.split == "none":
        return 1
    if spec.split == "auto":
        if not spec.intra:
            return 1  # long-GOP codecs and presets render unsplit unless asked
        wanted = max(1, nodes) * per_node
    else:
        wanted = int(spec.split)
    return max(1, min(wanted, frames // min_frames))


def cut(start: int, end: int, count: int) -> list[tuple[int, int]]:
    """`count` contiguous ranges covering start..end, lengths differing by at most one."""
    frames = end - start + 1
    base, extra = divmod(frames, count)
    ranges, first = [], start
    for i in range(count):
        length = base + (1 if i < extra else 0)
        ranges.append((first, first + length - 1))
        first += length
    return ranges


def extension(spec: RenderSpec) -> str:
    return EXTENSIONS.get(spec.format_key or "mov", "mov")


def make_plan(
    spec: RenderSpec, start: int, end: int, nodes: list[str], work_dir: Path, output: Path,
    min_frames: int, per_node: int,
) -> Plan:  # fmt: skip
    count = segment_count(end - start + 1, len(nodes), spec, min_frames, per_node)
    ext = extension(spec)
    width = max(4, len(str(count)))  # names sort correctly at any count
    segments = [
        Segment(i, a, b, str(work_dir / f"seg_{i:0{width}d}.{ext}"))
        for i, (a, b) in enumerate(cut(start, end, count), 1)
    ]
    single = count == 1
    audio = str(work_dir / ("audio.mp4" if ext == "mp4" else "audio.mov")) if spec.audio and not single else None
    return Plan(
        segments=segments,
        audio_file=audio,
        single_pass=single,
        stitch="move" if single else ("copy" if spec.intra else "reencode"),
        work_dir=str(work_dir),
        output=str(output),
        nodes=nodes,
    )
