"""Proving what a file holds: packet digests of a segment, and the joined file checked against the pieces.

A segment piece records its digest when it finishes (`video_digest`: the digest of its video
packets, their count and the stream's facts, from one read of its file). The stitch proves a
stream-copied file holds exactly the pieces' packets in frame order (`check_copy`), or, after a
re-encode, that the file's timestamps run evenly from start to end (`check_timing`).
"""

from __future__ import annotations

import itertools
import sys
from array import array
from collections.abc import Iterator
from typing import Any

import av
import av.container
import xxhash
from av.stream import Discard

from tasks.joinable import StreamFacts, stream_params

HASH = "xxh3_128"  # the digest's function, recorded with it: a stitch proves only digests it can recompute
# A stream copy keeps these as they were; the time base and tag are the muxer's to choose.
KEPT = ("codec", "profile", "width", "height", "pix_fmt", "extradata")


class Mismatch(ValueError):
    """A joined file (or a segment read for it) is not what the pieces rendered, in frame order."""


class Digest:
    """One hash over a run of video packets in file order: their bytes one after another, then their lengths.

    Note: XXH3-128, not a cryptographic hash: it catches any accidental change, loss, repeat or
    reordering of packets (the stitch guards against mix-ups and damage, not an adversary) at
    memory speed (~20x zlib's CRC-32 here), so proving a join costs little more than reading
    it back. The lengths, hashed at the end, keep packet boundaries part of what is proved.
    """

    def __init__(self) -> None:
        self._hash = xxhash.xxh3_128()
        self._sizes = array("q")
        self._update = self._hash.update  # bound once: called for every packet

    def add(self, data: Any, size: int) -> None:
        """One packet: its bytes (a packet, or any buffer) and their length."""
        self._sizes.append(size)
        self._update(data)

    @property
    def count(self) -> int:
        return len(self._sizes)

    @property
    def hexdigest(self) -> str:
        final = self._hash.copy()
        sizes = array("q", self._sizes)
        if sys.byteorder == "big":
            sizes.byteswap()  # the same digest on every host: lengths as little-endian 64-bit
        final.update(sizes.tobytes())
        return str(final.hexdigest())

    def matches(self, recorded: dict[str, Any]) -> bool:
        if recorded.get("hash") != HASH:
            found = recorded.get("hash", "CRC-32")
            raise Mismatch(f"a piece's digest was taken with {found}, not {HASH}: run the job again")
        return self.count == recorded["packets"] and self.hexdigest == recorded["digest"]


def video_payloads(container: av.container.InputContainer) -> Iterator[av.Packet]:
    """Each video packet in file order, the demuxer's empty flush packet left out."""
    for packet in container.demux(video=0):
        if packet.size and packet.pts is not None:
            yield packet


def video_digest(path: str) -> dict[str, Any]:
    """What a segment's video is, kept small, from one read of the file: the digest of its packets in order
    (`Digest`), their count, the first and last presentation timestamps, and the stream's facts that decide
    whether it joins by stream copy (`joinable.StreamFacts.summary`)."""
    with av.open(path) as container:
        if not container.streams.video:
            return {"packets": 0, "hash": HASH, "digest": Digest().hexdigest, "first_pts": None, "last_pts": None}
        stream = container.streams.video[0]
        extradata = stream.codec_context.extradata
        digest, facts = Digest(), StreamFacts(stream_params(stream))
        for packet in video_payloads(container):
            digest.add(packet, packet.size)
            facts.add(packet.pts, packet.duration or 0, packet, packet.is_keyframe, extradata)  # type: ignore[arg-type]
        return {"packets": digest.count, "hash": HASH, "digest": digest.hexdigest,
                "first_pts": min(facts.pts, default=None), "last_pts": max(facts.pts, default=None),
                **facts.summary()}  # fmt: skip


class Timing:
    """The timestamps of a file's video packets, in file (decode) order: decode times rise strictly from start
    to end, and presentation times, sorted, are evenly spaced with none repeated and no gap."""

    def __init__(self) -> None:
        self.pts: list[int] = []
        self.last_dts: int | None = None

    def extend(self, where: str, pts: list[int], dts: list[int | None]) -> None:
        """A run of packets' timestamps (`where`: whose packets, for the message)."""
        last = self.last_dts
        for stamp in dts:
            if stamp is None:
                continue
            if last is not None and stamp <= last:
                raise Mismatch(f"the joined file's decode timestamps go back at {where} ({stamp} after {last})")
            last = stamp
        self.last_dts = last
        self.pts.extend(pts)

    def check(self) -> None:
        stamps = sorted(self.pts)
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        if not steps:
            return
        ticks = min(steps)
        if ticks <= 0:
            raise Mismatch("the joined file shows two pictures at the same time")
        uneven = next((i for i, step in enumerate(steps) if step != ticks), None)
        if uneven is not None:
            raise Mismatch(f"the joined file's timestamps have a gap after picture {uneven + 1} of {len(stamps)}")


def check_timing(path: str) -> int:
    """Check a joined file's video timestamps (`Timing`); returns its number of video packets."""
    pts: list[int] = []
    dts: list[int | None] = []
    with av.open(path) as container:
        for packet in video_payloads(container):
            pts.append(packet.pts)  # type: ignore[arg-type]
            dts.append(packet.dts)
    timing = Timing()
    timing.extend("the re-encoded stream", pts, dts)
    timing.check()
    return len(timing.pts)


def check_copy(path: str, pieces: list[tuple[str, dict[str, Any]]]) -> dict[str, float | int]:
    """Prove the video packets of a stream-copied `path` are exactly the pieces' packets in frame order.

    `pieces` are (name, digest as `video_digest` recorded it when the piece finished), in frame
    order. Also proves the file's stream has the pieces' parameters and extradata, its decode
    times rise, each piece's pictures are shown after the previous piece's, and presentation
    times are evenly spaced (`Timing`). Raises `Mismatch` naming the first piece that differs;
    returns what the file holds as `describe` does, its frames counted as proved.

    Note: with B-frames a piece's packets come in decode order, not presentation order; digests
    are taken in file order on both sides, so they compare, and a piece's run of packets is
    contiguous in the file because each piece opens on an IDR frame. One read of the file, each
    packet hashed as it is read, never a piece's packets held at once.
    """
    with av.open(path) as container:
        _same_stream(stream_params(container.streams.video[0]), pieces)
        samples = _indexed(path, container) or _demuxed(container)
        timing = Timing()
        shown_until: tuple[str, int] | None = None  # the previous piece and its last picture's time
        for name, want in pieces:
            digest, pts, dts = Digest(), list[int](), list[int | None]()
            add, shown, decoded = digest.add, pts.append, dts.append
            for data, size, presented, decodes in itertools.islice(samples, int(want["packets"])):
                add(data, size)
                shown(presented)
                decoded(decodes)
            timing.extend(name, pts, dts)
            if digest.count != want["packets"]:
                raise Mismatch(f"the joined file ends inside {name}: {digest.count} of its {want['packets']} packets")
            if not digest.matches(want):
                raise Mismatch(f"the joined file's packets for {name} are not the ones {name} rendered")
            if shown_until is not None and pts and min(pts) <= shown_until[1]:
                raise Mismatch(f"the joined file shows pictures of {name} before the end of {shown_until[0]}")
            if pts:
                shown_until = (name, max(pts))
        extra = sum(1 for _ in samples)
        if extra:
            raise Mismatch(f"the joined file holds {extra} video packet(s) beyond the last piece")
        timing.check()
        return {"frames": len(timing.pts), "audio_seconds": _audio_seconds(container)}


# A video packet as the proof reads it: its bytes, their length, its presentation and decode times.
Sample = tuple[Any, int, int, int | None]


def _demuxed(container: av.container.InputContainer) -> Iterator[Sample]:
    """The video packets as the demuxer reads them (any container, any codec)."""
    for sound in container.streams.audio:
        sound.discard = Discard.all  # not read at all: the proof is about the video
    for packet in video_payloads(container):
        yield packet, packet.size, packet.pts, packet.dts  # type: ignore[misc]  # video_payloads: pts is set


def _indexed(path: str, container: av.container.InputContainer) -> Iterator[Sample] | None:
    """The video packets of a QuickTime/MP4 file of keyframes only, read where the demuxer's index (its sample
    table) puts them; None for any other file.

    Note: the demuxer reads each packet through its I/O buffer and copies it again into the packet,
    which costs twice the file's read; reading the same bytes at the same offsets straight from the
    file costs half, and the proof stays the same. Only where the index is the whole story: every
    picture a keyframe (decode order is presentation order, so the index's decode times are the
    presentation times too) and no entry the demuxer would drop.
    """
    if "mov" not in container.format.name.split(","):
        return None
    entries = container.streams.video[0].index_entries
    table = [(e.pos, e.size, e.timestamp) for e in entries if e.is_keyframe and not e.is_discard]
    if not table or len(table) != len(entries):
        return None
    return _read_at(path, table)


def _read_at(path: str, table: list[tuple[int, int, int]]) -> Iterator[Sample]:
    buffer = memoryview(bytearray(max(size for _, size, _ in table)))
    with open(path, "rb", buffering=0) as file:
        for position, size, stamp in table:
            file.seek(position)
            data = buffer[: file.readinto(buffer[:size])]
            yield data, len(data), stamp, stamp


def describe(path: str) -> dict[str, float | int]:
    """Frames of the first video stream and seconds of audio, as the written file states them.

    Note: QuickTime and MP4 keep a sample table, whose count is read from the header; for
    containers without one (MXF) the packets are counted.
    """
    with av.open(path) as container:
        frames = 0
        if container.streams.video:
            frames = container.streams.video[0].frames or sum(1 for p in container.demux(video=0) if p.size)
        return {"frames": frames, "audio_seconds": _audio_seconds(container)}


def _audio_seconds(container: av.container.InputContainer) -> float:
    if not container.streams.audio:
        return 0.0
    stream = container.streams.audio[0]
    time_base = stream.time_base
    assert time_base is not None  # every stream a demuxer opens has one
    if stream.duration:
        return float(stream.duration * time_base)
    stream.discard = Discard.default
    container.seek(0)
    return float(sum(p.duration or 0 for p in container.demux(stream)) * time_base)


def _same_stream(found: dict[str, Any], pieces: list[tuple[str, dict[str, Any]]]) -> None:
    for name, want in pieces:
        recorded = want.get("stream")
        differ = [k for k in KEPT if recorded is not None and recorded.get(k) != found.get(k)]
        if differ:
            raise Mismatch(f"the joined file's video stream differs from {name}'s in {', '.join(differ)}")
