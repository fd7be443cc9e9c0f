"""Real source media for the simulator: small camera-like movies made with PyAV, cached on disk.

The demo library's clips point at real files, so that whatever reads a clip's source (a
proxy transcode, a probe) reads a real movie: H.264 pictures with an AAC tone in QuickTime,
at the simulator's picture scale (a 1080p source is stored at 256x144, as its renders are).
They are made on first use, each file written under a temporary name and renamed into
place, so hosts that start together never see half a file, and kept in a cache folder:

- `RESOLVE_SIM_MEDIA`: where the made media live (default: the user's cache folder,
  `resolve-farm/sim-media`). Point it at a folder of your own to change sources freely.

Note: the files' content is a pure function of their name, length, rate and colour, so a
cached file is as good as a new one; the folder carries a version (`v1`) for when that
function changes.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

MEDIA_VERSION = "v1"
PICTURE = (256, 144)  # a 1920x1080 source at the simulator's default scale (2/15)
SAMPLE_RATE = 48000
TONE_HZ = 440.0
COLORS = {  # the demo's clip colours, as the picture's ground
    "Orange": (235, 110, 30), "Teal": (30, 150, 150), "Violet": (160, 90, 220), "Lime": (150, 220, 40),
    "Navy": (30, 40, 120), "Pink": (230, 120, 180), "Tan": (200, 170, 120), "Olive": (120, 130, 40),
}  # fmt: skip


@dataclass(frozen=True)
class SourceClip:
    """One source movie to make: its file name, length in frames, rate and ground colour."""

    name: str
    frames: int
    fps: float = 24.0
    color: str = "Teal"
    size: tuple[int, int] = PICTURE
    audio: bool = True


def media_dir() -> Path:
    """Where the simulator's source media are kept (`RESOLVE_SIM_MEDIA`, else the user's cache folder)."""
    chosen = os.environ.get("RESOLVE_SIM_MEDIA")
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "resolve-farm" / "sim-media" / MEDIA_VERSION


def ensure(clip: SourceClip, folder: Path | None = None) -> Path:
    """The movie for `clip` in `folder` (default `media_dir()`), made now if it is not there yet."""
    target = (folder or media_dir()) / clip.name
    if not target.is_file():
        write_clip(target, clip)
    return target


def write_clip(target: Path, clip: SourceClip) -> Path:
    """Write `clip` to `target` (replacing it) through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}-", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    try:
        _encode(Path(tmp), clip)
        os.chmod(tmp, 0o644)  # mkstemp's file is its owner's alone: sources are every host's to read
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _encode(path: Path, clip: SourceClip) -> None:
    import av
    import numpy as np

    width, height = clip.size
    rate = Fraction(clip.fps).limit_denominator(1001)
    ground = np.empty((height, width, 3), np.uint8)
    ground[:] = COLORS.get(clip.color, (70, 70, 70))
    with av.open(str(path), "w", format="mov") as out:
        video = out.add_stream("libx264", rate=rate, options={"preset": "ultrafast", "g": "24"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        audio = out.add_stream("aac", rate=SAMPLE_RATE, layout="stereo") if clip.audio else None
        samples_per_frame = SAMPLE_RATE / float(rate)
        sent = 0
        for index in range(clip.frames):
            picture = ground.copy()
            bar = (index * 7) % width  # a bar that moves: every frame differs, as a camera's do
            picture[:, bar : bar + 4] = 255
            picture[: 8 + index % (height - 8), :6] = 0  # and a level that grows
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = index
            out.mux(video.encode(frame))
            if audio is not None:
                until = round((index + 1) * samples_per_frame)
                t = (np.arange(sent, until) / SAMPLE_RATE).astype(np.float32)
                tone = (0.2 * np.sin(2 * math.pi * TONE_HZ * t)).astype(np.float32)
                block = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
                block.sample_rate, block.pts = SAMPLE_RATE, sent
                out.mux(audio.encode(block))
                sent = until
        out.mux(video.encode())
        if audio is not None:
            out.mux(audio.encode())
