"""Image-sequence renders (TIFF, DPX, OpenEXR): the render kind's pieces when there is nothing to join.

A sequence splits like an all-intra codec (pulled by free nodes, or cut into N), with no
audio pass and no stitch. Each segment renders its frames (`tasks.render_frames`) into a
folder of its attempt and moves them into the sequence's folder itself, holding the piece's
lock; a last piece on the post queue (`tasks.check_frames`) checks that every frame of the
range is there exactly once under Resolve's names, each the file its piece rendered. The
render compiler (`orchestrator.kinds.render`) calls in here where a sequence differs.
"""

from __future__ import annotations

import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.kinds.base import Leftovers, SubmitRefused
from orchestrator.models import JobRecord, Placement, TaskRecord
from orchestrator.sequences import Sequence, files_digest

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView
    from orchestrator.kinds.render import RenderSpec

RENDER_FRAMES = "tasks.render_frames"
CHECK_FRAMES = "tasks.check_frames"
# The image formats the farm renders split, each with the codec a spec naming none gets (Resolve's keys).
DEFAULT_CODECS = {"tif": "RGB8", "dpx": "RGB10", "exr": "RGBHalf"}
OTHER_IMAGE_FORMATS = frozenset({"cin", "png", "jpg", "j2c"})  # Resolve writes these too; the farm does not (yet)
AUDIO_SETTINGS = frozenset({"AudioCodec", "AudioBitDepth", "AudioSampleRate"})


def is_sequence(format_key: str | None) -> bool:
    return format_key in DEFAULT_CODECS


def check(farm: FarmView, spec: RenderSpec, nodes: list[str]) -> None:
    """A sequence render the farm can run, against the catalogs of the nodes it may use (`check_offers`)."""
    check_offers(spec, {node: codecs for node in nodes if (codecs := offered_by(farm, node)) is not None})


def check_offers(spec: RenderSpec, offers: dict[str, dict[str, set[str]]]) -> None:
    """A format the farm renders as a sequence, no audio settings, and every node it may use writes it.

    `offers` is each node's {format key: {codec keys}} (nodes that published no catalog left out).
    Note: a node's catalog lists what its Resolve can write (a simulated node: what its
    FFmpeg can encode). A node lacking the format would fail every piece it took, so the
    job is refused unless pinned (node, tags) to nodes that all write it.
    """
    fmt, codec = str(spec.format_key), spec.codec_key
    if fmt in OTHER_IMAGE_FORMATS:
        known = ", ".join(sorted(DEFAULT_CODECS))
        raise SubmitRefused("format", f"{fmt} image sequences are not rendered by the farm (it renders {known})")
    if not is_sequence(fmt):
        return
    audio = sorted(AUDIO_SETTINGS & set(spec.settings))
    if audio:
        raise SubmitRefused("settings", f"{audio[0]}: an image sequence has no audio")
    if not offers:
        return  # no node has published its catalog yet: nothing to check against
    lacking = sorted(node for node, codecs in offers.items() if codec not in codecs.get(fmt, set()))
    if not lacking:
        return
    if len(lacking) < len(offers):
        raise SubmitRefused(
            "format", f"{fmt} ({codec}) cannot be written by {', '.join(lacking)}: pin the job to nodes that can "
            "(node or tags)",
        )  # fmt: skip
    if not any(codecs.get(fmt) for codecs in offers.values()):
        known = ", ".join(sorted({f for codecs in offers.values() for f in codecs} & set(DEFAULT_CODECS))) or "none"
        raise SubmitRefused("format", f"no node can write {fmt} image sequences (they write: {known})")
    keys = sorted({key for codecs in offers.values() for key in codecs.get(fmt, set())})
    raise SubmitRefused("codec", f"unknown codec {codec!r} for {fmt} (known: {', '.join(keys)})")


def offered_by(farm: FarmView, node: str) -> dict[str, set[str]] | None:
    """{format key: {codec keys}} one node's catalog offers; None when it has published none."""
    found = farm.catalog.of([node])
    if not found:
        return None
    codecs = found[0].get("render", {}).get("codecs", {})
    return {fmt: set(keys.values()) for fmt, keys in codecs.items()}


def sequence(spec: RenderSpec, output: Path, start: int, end: int) -> Sequence | None:
    """The sequence a spec renders, in a folder of its own named like it (None: not a sequence)."""
    if not is_sequence(spec.format_key):
        return None
    return Sequence(folder=str(output), name=output.name, extension=str(spec.format_key), start=start, end=end)


def adapt(made: list[TaskRecord], seq: Sequence) -> list[TaskRecord]:
    """The render's pieces for a sequence: its segments render frames, and a check replaces the stitch.

    Note: the compiler makes them with audio off, so no audio pass is among them.
    """
    pieces = [p.model_copy(update={"task": RENDER_FRAMES, "output": None}) for p in made if p.kind != "stitch"]
    check = TaskRecord(
        name="check", kind="check", task=CHECK_FRAMES, placement=Placement(pool="post"), output=seq.pattern,
        after=[p.name for p in pieces], final=True,
    )  # fmt: skip
    return [*pieces, check]


def leftovers(record: JobRecord[Any, Any], seq: Sequence, generation: int) -> Leftovers:
    """What a cancelled sequence render leaves: its attempt folders, and the frames its pieces moved into place.

    Note: runs in `tasks.discard`, on a post worker that sees the storage. A piece's frames
    are removed only while they are still the files it moved there (`files_digest` equal to
    the one it recorded), so a later render of the same name keeps its own.
    """
    frames: list[str] = []
    for piece in record.tasks:
        recorded = piece.details.get("sequence")
        if not recorded or piece.start is None or piece.end is None:
            continue
        try:
            ours = files_digest(seq, piece.start, piece.end) == recorded["files"]
        except FileNotFoundError:
            ours = False  # some are gone already: what is left is not known to be this job's
        if ours:
            frames += [glob.escape(str(seq.path(frame))) for frame in range(piece.start, piece.end + 1)]
    return Leftovers(
        remove=[*(seq.attempts_glob(record.id, g) for g in range(1, generation + 1)), *frames],
        if_empty=[seq.folder],
    )


def speed_codec(spec: RenderSpec) -> str | None:
    """What a render's speed is remembered by, besides the picture size: the codec (a sequence's with its
    format, as TIFF and DPX share codec names)."""
    return f"{spec.format_key}.{spec.codec_key}" if is_sequence(spec.format_key) else spec.codec_key
