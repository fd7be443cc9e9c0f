"""Joining rendered segments into one file with PyAV.

Segments that form one stream (`tasks.joinable.decide`: all-intra codecs, and long-GOP segments
that each open on an IDR frame with the same parameter sets) join by stream copy: packets are
copied in frame order with their timestamps shifted, so no frame is decoded or re-encoded.
Other segments are decoded and encoded again. Audio, rendered once for the whole range, is
copied alongside.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import av
import av.container

from tasks.proof import Digest, Mismatch

MUXERS = {".mov": "mov", ".mp4": "mp4", ".mxf": "mxf"}
# Encoder options for a re-encode where FFmpeg's defaults do not do: x265 reports every encode on stderr.
REENCODE_OPTIONS = {"hevc": {"x265-params": "log-level=error"}}


def _video_packets(segments: list[str], out_stream: av.stream.Stream) -> Iterator[tuple[float, av.Packet]]:
    """Every video packet of the segments in file (decode) order, re-timed so each segment's first picture
    follows the previous segment's last; keyed by decode time for merging with the audio.

    Note: each segment is rebased on its first packet's presentation time, which is its earliest:
    the join is only chosen for segments that open on a keyframe shown first (`joinable.decide`).
    A segment's first decode time may lie before that (B-frames): shifted the same way, it still
    falls after the previous segment's last decode time, as the next-to-last picture of a GOP is
    never decoded later than its end minus the reorder delay.
    """
    offset = 0
    for path in segments:
        with av.open(path) as container:
            stream = container.streams.video[0]
            seconds = float(stream.time_base)  # a float, not a Fraction: this runs for every packet
            shift: int | None = None
            first = top = duration = 0  # the first picture's time, the last one's, and how long it lasts
            for packet in container.demux(stream):
                pts, dts = packet.pts, packet.dts
                if dts is None or pts is None:
                    continue  # the demuxer's flush packet
                if shift is None:
                    shift, first, top = offset - pts, pts, pts
                if pts >= top:
                    top, duration = pts, packet.duration or 0
                packet.pts, packet.dts = pts + shift, dts + shift
                packet.stream = out_stream
                yield (dts + shift) * seconds, packet
            if shift is not None:
                offset += top + duration - first


def _audio_packets(path: str, out_stream: av.stream.Stream) -> Iterator[tuple[float, av.Packet]]:
    with av.open(path) as container:
        stream = container.streams.audio[0]
        seconds = float(stream.time_base)
        for packet in container.demux(stream):
            if packet.dts is None or packet.pts is None:
                continue
            packet.stream = out_stream
            yield packet.dts * seconds, packet


def _interleaved(
    video: Iterator[tuple[float, av.Packet]], audio: Iterator[tuple[float, av.Packet]] | None = None
) -> Iterator[av.Packet]:
    """The packets of both streams in decode-time order (each stream already is), for the muxer to write as
    they come."""
    if audio is None:
        for _, packet in video:
            yield packet
        return
    sound = next(audio, None)
    for when, packet in video:
        while sound is not None and sound[0] <= when:
            yield sound[1]
            sound = next(audio, None)
        yield packet
    while sound is not None:
        yield sound[1]
        sound = next(audio, None)


def join_copy(segments: list[str], audio: str | None, dest: str) -> None:
    """Join segments that form one stream (and copy in the audio) by stream copy into `dest`."""
    muxer = MUXERS.get(dest[dest.rfind(".") :].lower())
    with av.open(dest, "w", format=muxer) as out:
        with av.open(segments[0]) as first:
            template = first.streams.video[0]
            video_out = out.add_stream_from_template(template)
            if muxer in ("mov", "mp4") and template.codec_tag:
                # The tag is not copied, and it decides how the muxer rewrites the extradata (hvc1 and hev1
                # write H.265 parameter sets differently): keep the one the segments were written with.
                video_out.codec_context.codec_tag = template.codec_tag
            # MXF needs the frame rate, which a copied stream does not carry over.
            rate = template.average_rate or template.guessed_rate
            if rate:
                video_out.codec_context.framerate = Fraction(rate)
        streams = [_video_packets(segments, video_out)]
        if audio:
            with av.open(audio) as sound:
                audio_out = out.add_stream_from_template(sound.streams.audio[0])
            streams.append(_audio_packets(audio, audio_out))
        for packet in _interleaved(*streams):
            out.mux(packet)


def join_reencode(
    segments: list[str], audio: str | None, dest: str, rate: Fraction | None,
    pieces: list[tuple[str, dict[str, Any]]] | None = None,
) -> None:  # fmt: skip
    """Join segments by decoding them and encoding again (same codec and size).

    With `pieces` (name and recorded digest of each segment, in frame order), each segment's
    packets are proved to be the ones its piece rendered as they are read for decoding, in the
    same pass: a segment damaged, swapped or doubled since raises `Mismatch` naming it.
    """
    muxer = MUXERS.get(dest[dest.rfind(".") :].lower())
    with av.open(dest, "w", format=muxer) as out:
        with av.open(segments[0]) as first:
            template = first.streams.video[0]
            frame_rate = rate or template.average_rate or Fraction(24)
            codec = template.codec_context.name
            video_out = out.add_stream(codec, rate=frame_rate, options=REENCODE_OPTIONS.get(codec, {}))
            video_out.width, video_out.height = template.width, template.height
            video_out.pix_fmt = template.pix_fmt or "yuv420p"
        time_base = Fraction(1) / Fraction(frame_rate)
        audio_out = None
        audio_in: av.container.InputContainer | None = None
        if audio:
            audio_in = av.open(audio)
            audio_out = out.add_stream_from_template(audio_in.streams.audio[0])
        index = 0
        for number, path in enumerate(segments):
            want = pieces[number] if pieces is not None else None
            for frame in _decoded(path, want):
                frame.pts, frame.time_base = index, time_base
                frame.pict_type = av.video.frame.PictureType.NONE
                out.mux(video_out.encode(frame))
                index += 1
        out.mux(video_out.encode(None))
        if audio_in is not None and audio_out is not None:
            for _, packet in _audio_packets(audio, audio_out):  # type: ignore[arg-type]
                out.mux(packet)
            audio_in.close()


def _decoded(path: str, piece: tuple[str, dict[str, Any]] | None) -> Iterator[av.VideoFrame]:
    """The pictures of a segment, its packets proved against the piece's digest as they are read (`piece`)."""
    digest = Digest()
    with av.open(path) as container:
        packets = container.demux(video=0)
        try:
            for packet in packets:
                if packet.size and packet.pts is not None:
                    digest.add(packet, packet.size)
                yield from packet.decode()
        except av.error.FFmpegError:
            if piece is None:
                raise
            for packet in packets:  # undecodable: say whether it is what the piece rendered
                if packet.size and packet.pts is not None:
                    digest.add(packet, packet.size)
            if digest.matches(piece[1]):
                raise
    if piece is not None and not digest.matches(piece[1]):
        raise Mismatch(f"the segment's packets for {piece[0]} are not the ones {piece[0]} rendered")
