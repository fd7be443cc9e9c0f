"""A proxy transcode with PyAV, and its check against the source: the media work of a proxies job.

`transcode` decodes the source's first video stream (and first audio stream, if any), scales
the pictures to the preset's size and encodes them into the target; `verify` reads the target
back and holds it against the source: one video packet per source frame, the same duration
(within a frame), sound when the source has sound. Nothing here knows of Celery or Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

import av

from orchestrator.kinds.proxies import Preset


class SourceUnreadable(Exception):
    """The source itself is wrong (no video, frames its header promises but does not hold): no retry helps."""


class ProxyMismatch(Exception):
    """The proxy written does not match its source (frames or duration): the attempt failed."""


class TranscodeStopped(Exception):
    """The transcode was asked to stop (the job was cancelled or the piece moved on)."""


@dataclass
class MediaInfo:
    """What a movie's first video stream says of itself: frames (0: not said), duration, rate, size, sound."""

    frames: int
    duration: float
    rate: Fraction
    width: int
    height: int
    audio: bool
    codec: str

    def public(self) -> dict[str, Any]:
        return {**asdict(self), "rate": str(self.rate), "duration": round(self.duration, 4)}


def _duration(stream: Any, container: Any) -> float:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return float(container.duration or 0) / av.time_base


def probe(path: str) -> MediaInfo:
    """A movie's video as its headers describe it; `SourceUnreadable` when there is none to read."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise SourceUnreadable(f"{path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate or Fraction(24)
            return MediaInfo(
                frames=int(stream.frames or 0), duration=_duration(stream, container), rate=Fraction(rate),
                width=stream.codec_context.width, height=stream.codec_context.height,
                audio=bool(container.streams.audio), codec=stream.codec_context.name,
            )  # fmt: skip
    except (av.error.FFmpegError, OSError) as exc:
        raise SourceUnreadable(f"{path} cannot be read as a movie: {exc}") from None


@dataclass
class Pacer:
    """Holds a transcode to at most `fps` frames per second (0: no limit).

    Note: models a node of its own speed on a machine shared by several simulated nodes (the
    benchmarks), as `RESOLVE_SIM_FPS` does for renders; on a real host it leaves CPU to Resolve.
    """

    fps: float = 0.0
    began: float = 0.0

    def __call__(self, frames: int) -> None:
        if self.fps <= 0:
            return
        self.began = self.began or time.monotonic()
        ahead = self.began + frames / self.fps - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)


def transcode(
    source: str,
    target: str,
    preset: Preset,
    progress: Callable[[int], None] = lambda frames: None,
    stop: Callable[[], bool] = lambda: False,
    fps: float = 0.0,
) -> int:
    """Write the proxy of `source` to `target` (the preset's container); returns the video frames decoded.

    `progress(frames)` is called after each frame; `stop()` is asked as often, and a True ends
    the transcode with `TranscodeStopped` (the caller removes the partial file).
    """
    info = probe(source)
    width, height = preset.picture(info.width, info.height)
    pace = Pacer(fps)
    decoded = 0
    with av.open(source) as src, av.open(target, "w", format=preset.container) as out:
        video_in = src.streams.video[0]
        video_in.thread_type = "AUTO"
        video = out.add_stream(preset.codec, rate=info.rate, options=dict(preset.options))
        video.width, video.height, video.pix_fmt = width, height, preset.pix_fmt
        audio_in = src.streams.audio[0] if src.streams.audio else None
        audio = None
        if audio_in is not None:
            layout = audio_in.codec_context.layout.name if audio_in.codec_context.layout else "stereo"
            audio = out.add_stream(preset.audio_codec, rate=audio_in.codec_context.sample_rate or 48000, layout=layout)
        wanted = [s for s in (video_in, audio_in) if s is not None]
        for packet in src.demux(*wanted):
            for frame in packet.decode():
                if isinstance(frame, av.VideoFrame):
                    scaled = frame.reformat(width=width, height=height, format=preset.pix_fmt)
                    scaled.pts, scaled.time_base = decoded, Fraction(1) / info.rate
                    out.mux(video.encode(scaled))
                    decoded += 1
                    progress(decoded)
                    if stop():
                        raise TranscodeStopped(f"stopped after {decoded} frame(s)")
                    pace(decoded)
                elif audio is not None and isinstance(frame, av.AudioFrame):
                    out.mux(audio.encode(frame))
        out.mux(video.encode())
        if audio is not None:
            out.mux(audio.encode())
    return decoded


def verify(source: MediaInfo, decoded: int, proxy: str, preset: Preset) -> dict[str, Any]:
    """Hold the written proxy against its source; what it holds, or why not (`SourceUnreadable`, `ProxyMismatch`)."""
    if source.frames and decoded != source.frames:
        raise SourceUnreadable(f"its header says {source.frames} frames but {decoded} decode: the file is damaged")
    if decoded == 0:
        raise SourceUnreadable("it holds no decodable video frame")
    try:
        with av.open(proxy) as container:
            if not container.streams.video:
                raise ProxyMismatch(f"the proxy {proxy} has no video stream")
            stream = container.streams.video[0]
            packets = sum(1 for p in container.demux(stream) if p.size and p.pts is not None)
            made = MediaInfo(
                frames=packets, duration=_duration(stream, container), rate=Fraction(stream.average_rate or 0),
                width=stream.codec_context.width, height=stream.codec_context.height,
                audio=bool(container.streams.audio), codec=stream.codec_context.name,
            )  # fmt: skip
    except (av.error.FFmpegError, OSError) as exc:
        raise ProxyMismatch(f"the proxy {proxy} cannot be read back: {exc}") from None
    if made.frames != decoded:
        raise ProxyMismatch(f"the proxy holds {made.frames} frames, its source {decoded}")
    want = preset.picture(source.width, source.height)
    if (made.width, made.height) != want:
        raise ProxyMismatch(f"the proxy is {made.width}x{made.height}, the preset makes {want[0]}x{want[1]}")
    one_frame = float(1 / source.rate)
    expected = source.duration or decoded * one_frame
    if abs(made.duration - expected) > one_frame + 1e-3:
        raise ProxyMismatch(f"the proxy lasts {made.duration:.3f} s, its source {expected:.3f} s")
    if source.audio and not made.audio:
        raise ProxyMismatch("the source has sound and the proxy none")
    return {"frames": made.frames, "duration": round(made.duration, 4), "size": f"{made.width}x{made.height}",
            "codec": made.codec, "audio": made.audio}  # fmt: skip
