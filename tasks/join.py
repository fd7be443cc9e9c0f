"""Joining rendered segments into one file with PyAV, and checking what a file holds.

Segments of all-intra codecs join by stream copy: packets are copied in frame order with
their timestamps shifted, so no frame is decoded or re-encoded. Long-GOP segments are
decoded and encoded again. Audio, rendered once for the whole range, is copied alongside.
"""

from __future__ import annotations

import hashlib
import heapq
import itertools
import zlib
from collections.abc import Iterable, Iterator
from fractions import Fraction
from typing import Any

import av
import av.container

MUXERS = {".mov": "mov", ".mp4": "mp4", ".mxf": "mxf"}


def _video_packets(segments: list[str], out_stream: av.stream.Stream) -> Iterator[tuple[float, av.Packet]]:
    """Every video packet of the segments in order, re-timed to follow on from each other."""
    offset = 0
    for path in segments:
        with av.open(path) as container:
            stream = container.streams.video[0]
            end = 0
            for packet in container.demux(stream):
                if packet.dts is None or packet.pts is None:
                    continue  # the demuxer's flush packet
                end = max(end, packet.pts + (packet.duration or 0))
                packet.pts += offset
                packet.dts += offset
                packet.stream = out_stream
                yield float(packet.pts * stream.time_base), packet
            offset += end


def _audio_packets(path: str, out_stream: av.stream.Stream) -> Iterator[tuple[float, av.Packet]]:
    with av.open(path) as container:
        stream = container.streams.audio[0]
        for packet in container.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            packet.stream = out_stream
            yield float(packet.pts * stream.time_base), packet


def join_copy(segments: list[str], audio: str | None, dest: str) -> None:
    """Join intra-coded segments (and copy in the audio) by stream copy into `dest`."""
    muxer = MUXERS.get(dest[dest.rfind(".") :].lower())
    with av.open(dest, "w", format=muxer) as out:
        with av.open(segments[0]) as first:
            template = first.streams.video[0]
            video_out = out.add_stream_from_template(template)
            # MXF needs the frame rate, which a copied stream does not carry over.
            rate = template.average_rate or template.guessed_rate
            if rate:
                video_out.codec_context.framerate = Fraction(rate)
        streams = [_video_packets(segments, video_out)]
        if audio:
            with av.open(audio) as sound:
                audio_out = out.add_stream_from_template(sound.streams.audio[0])
            streams.append(_audio_packets(audio, audio_out))
        for _, packet in heapq.merge(*streams, key=lambda item: item[0]):
            out.mux(packet)


def join_reencode(segments: list[str], audio: str | None, dest: str, rate: Fraction | None) -> None:
    """Join long-GOP segments by decoding and encoding them again (same codec and size)."""
    muxer = MUXERS.get(dest[dest.rfind(".") :].lower())
    with av.open(dest, "w", format=muxer) as out:
        with av.open(segments[0]) as first:
            template = first.streams.video[0]
            frame_rate = rate or template.average_rate or Fraction(24)
            video_out = out.add_stream(template.codec_context.name, rate=frame_rate)
            video_out.width, video_out.height = template.width, template.height
            video_out.pix_fmt = template.pix_fmt or "yuv420p"
        time_base = Fraction(1) / Fraction(frame_rate)
        audio_out = None
        audio_in: av.container.InputContainer | None = None
        if audio:
            audio_in = av.open(audio)
            audio_out = out.add_stream_from_template(audio_in.streams.audio[0])
        index = 0
        for path in segments:
            with av.open(path) as container:
                for frame in container.decode(video=0):
                    frame.pts, frame.time_base = index, time_base
                    frame.pict_type = av.video.frame.PictureType.NONE
                    out.mux(video_out.encode(frame))
                    index += 1
        out.mux(video_out.encode(None))
        if audio_in is not None and audio_out is not None:
            for _, packet in _audio_packets(audio, audio_out):  # type: ignore[arg-type]
                out.mux(packet)
            audio_in.close()


def describe(path: str) -> dict[str, float | int]:
    """Frames of the first video stream and seconds of audio, as the written file states them.

    Note: QuickTime and MP4 keep a sample table, whose count is read from the header; for
    containers without one (MXF) the packets are counted.
    """
    with av.open(path) as container:
        frames = 0
        if container.streams.video:
            frames = container.streams.video[0].frames or sum(1 for p in container.demux(video=0) if p.size)
        audio_seconds = 0.0
        if container.streams.audio:
            stream = container.streams.audio[0]
            if stream.duration:
                audio_seconds = float(stream.duration * stream.time_base)
            else:
                container.seek(0)
                audio_seconds = float(sum(p.duration or 0 for p in container.demux(stream)) * stream.time_base)
        return {"frames": frames, "audio_seconds": audio_seconds}


def _digest(packets: Iterable[Any]) -> tuple[str, int]:
    """One sha256 over each packet's length and CRC-32, in order, and the packet count.

    Note: CRC-32 per packet, not a cryptographic hash of every byte: it catches any accidental
    change to a packet (the stitch guards against mix-ups and damage, not an adversary) at a
    tenth of sha256's cost, which keeps the proof within 1.5x of the join it checks.
    """
    sha, count = hashlib.sha256(), 0
    for data in packets:
        sha.update(len(memoryview(data)).to_bytes(8, "big"))
        sha.update(zlib.crc32(data).to_bytes(4, "big"))
        count += 1
    return sha.hexdigest(), count


def _video_payloads(container: av.container.InputContainer) -> Iterator[tuple[int, av.Packet]]:
    """(pts, packet) of each video packet in file order, the demuxer's empty flush packet left out."""
    for packet in container.demux(video=0):
        if packet.size and packet.pts is not None:
            yield packet.pts, packet


def video_digest(path: str) -> dict[str, Any]:
    """What a segment's video is, kept small: one digest over its packets in order (`_digest`),
    their count, and the first and last presentation timestamps."""
    with av.open(path) as container:
        if not container.streams.video:
            return {"packets": 0, "digest": _digest([])[0], "first_pts": None, "last_pts": None}
        pts: list[int] = []

        def payloads() -> Iterator[av.Packet]:
            for stamp, data in _video_payloads(container):
                pts.append(stamp)
                yield data

        sha, count = _digest(payloads())
        return {"packets": count, "digest": sha, "first_pts": min(pts, default=None),
                "last_pts": max(pts, default=None)}  # fmt: skip


def check_copy(path: str, pieces: list[tuple[str, dict[str, Any]]]) -> None:
    """Prove the video packets of a stream-copied `path` are exactly the pieces' packets in frame order.

    `pieces` are (name, digest as `video_digest` recorded it when the piece finished), in frame
    order. Raises ValueError naming the first piece whose run of packets differs.

    Note: the digests cover packet contents only: a stream copy shifts timestamps, and the join
    checks those separately (strictly increasing across the whole file).
    """
    with av.open(path) as container:
        packets = _video_payloads(container)
        last_pts: list[int] = []  # the previous packet's pts, across pieces

        def run_of(name: str, count: int) -> Iterator[av.Packet]:
            # Lazily, so a piece's packets are digested as they are read, never held all at once.
            for stamp, packet in itertools.islice(packets, count):
                if last_pts and stamp <= last_pts[0]:
                    raise ValueError(f"the joined file's timestamps go back at {name} ({stamp} after {last_pts[0]})")
                last_pts[:] = [stamp]
                yield packet

        for name, want in pieces:
            sha, count = _digest(run_of(name, int(want["packets"])))
            if count != want["packets"]:
                raise ValueError(f"the joined file ends inside {name}: {count} of its {want['packets']} packets")
            if sha != want["digest"]:
                raise ValueError(f"the joined file's packets for {name} are not the ones {name} rendered")
        extra = sum(1 for _ in packets)
        if extra:
            raise ValueError(f"the joined file holds {extra} video packet(s) beyond the last piece")
