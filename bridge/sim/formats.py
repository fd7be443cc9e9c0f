"""The render formats and codecs the simulator offers, and how PyAV writes each.

Names follow Resolve: `GetRenderFormats()` maps a format's display name to its extension
key ("QuickTime" -> "mov") and `GetRenderCodecs(key)` maps a codec's display name to its
codec key ("Apple ProRes 422 HQ" -> "ProRes422HQ").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Codec:
    """One codec of one format and the encoder that writes it."""

    key: str
    display: str
    encoder: str
    pix_fmt: str
    options: tuple[tuple[str, str], ...] = ()
    intra: bool = True  # every frame a keyframe: segments join by stream copy
    image_sequence: bool = False


@dataclass(frozen=True)
class Format:
    """One container format: its extension, the muxer and its codecs."""

    key: str
    display: str
    extension: str
    muxer: str
    codecs: tuple[Codec, ...]
    pcm_audio: str | None  # the audio codec used when ExportAudio is on
    image_sequence: bool = False

    def codec(self, key: str) -> Codec | None:
        return next((c for c in self.codecs if c.key == key), None)


# FFmpeg's prores_aw encoder: the same ProRes profiles as prores_ks at a fifth of its cost, so a simulated
# node's speed is what RESOLVE_SIM_FPS says, not what the machine's CPU allows.
PRORES_HQ = Codec("ProRes422HQ", "Apple ProRes 422 HQ", "prores_aw", "yuv422p10le", (("profile", "3"),))
PRORES = Codec("ProRes422", "Apple ProRes 422", "prores_aw", "yuv422p10le", (("profile", "2"),))
DNXHR_HQ = Codec("DNxHRHQ", "DNxHR HQ", "dnxhd", "yuv422p", (("profile", "dnxhr_hq"),))
DNXHR_SQ = Codec("DNxHRSQ", "DNxHR SQ", "dnxhd", "yuv422p", (("profile", "dnxhr_sq"),))
H264 = Codec("H264", "H.264", "libx264", "yuv420p", (("crf", "16"), ("preset", "veryfast")), intra=False)
TIFF = Codec("RGB8", "RGB 8 bits", "tiff", "rgb24", image_sequence=True)

FORMATS: tuple[Format, ...] = (
    Format("mov", "QuickTime", "mov", "mov", (PRORES_HQ, PRORES, DNXHR_HQ, DNXHR_SQ, H264), "pcm_s16le"),
    Format("mp4", "MP4", "mp4", "mp4", (H264,), "aac"),
    Format("mxf_op1a", "MXF OP1A", "mxf", "mxf", (DNXHR_HQ, DNXHR_SQ), "pcm_s16le"),
    Format("tif", "TIFF", "tif", "image2", (TIFF,), None, image_sequence=True),
)


def find(format_key: str) -> Format | None:
    """The format with this key or display name."""
    return next((f for f in FORMATS if format_key in (f.key, f.display)), None)
