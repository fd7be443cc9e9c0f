"""Image sequences in the simulator: one real image file per frame, named as Resolve names them.

Resolve renders an image sequence (TIFF, DPX, OpenEXR) into the job's target folder as one
file per timeline frame, `<custom name>_<frame, zero-padded to 8 digits>.<ext>`
(`Demo_Main_00086400.tif`), with no audio. The simulator encodes each frame with FFmpeg's
image encoder through PyAV; a codec whose encoder this FFmpeg lacks (or cannot feed) is not
offered at all (`writable`, used by `formats.offered`).
"""

from __future__ import annotations

from fractions import Fraction
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, cast

import av
import numpy as np
from av.video.codeccontext import VideoCodecContext

if TYPE_CHECKING:
    from bridge.sim.formats import Codec

DIGITS = 8  # Resolve pads the frame number of a sequence's files to eight digits
PROBE_SIZE = (64, 32)


def frame_name(name: str, frame: int, extension: str) -> str:
    """The file Resolve writes for timeline frame `frame` of a sequence rendered as `name`."""
    return f"{name}_{frame:0{DIGITS}d}.{extension}"


@cache
def writable(codec: Codec) -> bool:
    """Whether this machine's FFmpeg writes `codec`: one small frame is encoded to find out (once per process)."""
    try:
        writer = FrameWriter(codec, *PROBE_SIZE, Fraction(24))
        return bool(writer.encode(np.zeros((PROBE_SIZE[1], PROBE_SIZE[0], 3), dtype=np.uint8), 0))
    except (av.FFmpegError, ValueError):  # no such encoder, or no conversion to its pixel format
        return False


class FrameWriter:
    """Encodes pictures of one render job into image files, one file per frame.

    Note: one encoder for the whole job, as for a movie; image encoders keep no state
    between frames, so each packet is a complete file.
    """

    def __init__(self, codec: Codec, width: int, height: int, rate: Fraction) -> None:
        self.encoder = cast(VideoCodecContext, av.CodecContext.create(codec.encoder, "w"))
        self.encoder.width, self.encoder.height, self.encoder.pix_fmt = width, height, codec.pix_fmt
        self.encoder.time_base = 1 / rate
        self.encoder.options = dict(codec.options)

    def encode(self, picture: np.ndarray, index: int) -> bytes:
        """One RGB picture as the bytes of its image file."""
        frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
        frame.pts = index
        return b"".join(bytes(p) for p in self.encoder.encode(frame))

    def write(self, picture: np.ndarray, index: int, path: Path) -> None:
        path.write_bytes(self.encode(picture, index))
