"""The render formats and codecs the simulator offers, and how PyAV writes each.

Names follow Resolve: `GetRenderFormats()` maps a format's display name to its extension
key ("QuickTime" -> "mov") and `GetRenderCodecs(key)` maps a codec's display name to its
codec key ("Apple ProRes 422 HQ" -> "ProRes422HQ"). A simulated node offers only what its
FFmpeg can write (`FORMATS`: `bridge.sim.imageseq.writable` tries each image codec once).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import av


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
    tag: str | None = None  # the container's codec tag when FFmpeg's default is not the one Resolve writes


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
# Long-GOP codecs as Resolve writes them: every render job's file opens with an IDR frame, GOPs are closed
# (no picture refers across a keyframe) and the encoder settings are fixed per codec, so two ranges rendered
# with the same settings carry the same parameter sets (extradata) and join by stream copy.
H264 = Codec("H264", "H.264", "libx264", "yuv420p",
             (("crf", "16"), ("preset", "veryfast"), ("x264-params", "open-gop=0")), intra=False)  # fmt: skip
H265 = Codec("H265", "H.265", "libx265", "yuv420p",
             (("crf", "20"), ("preset", "veryfast"), ("x265-params", "open-gop=0:log-level=error")), intra=False,
             tag="hvc1")  # fmt: skip
TIFF = Codec("RGB8", "RGB 8 bits", "tiff", "rgb24", image_sequence=True)
TIFF_16 = Codec("RGB16", "RGB 16 bits", "tiff", "rgb48le", image_sequence=True)
DPX_10 = Codec("RGB10", "RGB 10 bits", "dpx", "gbrp10le", image_sequence=True)
DPX_16 = Codec("RGB16", "RGB 16 bits", "dpx", "rgb48le", image_sequence=True)
EXR_HALF = Codec("RGBHalf", "RGB half", "exr", "gbrpf32le", (("format", "half"), ("compression", "none")),
                 image_sequence=True)  # fmt: skip
EXR_FLOAT = Codec("RGBFloat", "RGB float", "exr", "gbrpf32le", (("format", "float"), ("compression", "none")),
                  image_sequence=True)  # fmt: skip


def _writable(*codecs: Codec) -> tuple[Codec, ...]:
    """The codecs this machine's FFmpeg has an encoder for: a node offers only what it can write."""
    return tuple(c for c in codecs if c.encoder in av.codecs_available)


ALL_FORMATS: tuple[Format, ...] = (
    Format("mov", "QuickTime", "mov", "mov", _writable(PRORES_HQ, PRORES, DNXHR_HQ, DNXHR_SQ, H264, H265), "pcm_s16le"),
    Format("mp4", "MP4", "mp4", "mp4", _writable(H264, H265), "aac"),
    Format("mxf_op1a", "MXF OP1A", "mxf", "mxf", (DNXHR_HQ, DNXHR_SQ), "pcm_s16le"),
    Format("tif", "TIFF", "tif", "image2", (TIFF, TIFF_16), None, image_sequence=True),
    Format("dpx", "DPX", "dpx", "image2", (DPX_10, DPX_16), None, image_sequence=True),
    Format("exr", "OpenEXR", "exr", "image2", (EXR_HALF, EXR_FLOAT), None, image_sequence=True),
)


def offered(candidates: tuple[Format, ...]) -> tuple[Format, ...]:
    """The formats and codecs of `candidates` this machine's FFmpeg can write (a format with none left is dropped).

    Note: movie codecs are the farm's own baseline and not tried; image codecs (EXR above
    all) are missing from some FFmpeg builds, and a node must not offer what it cannot write.
    """
    from bridge.sim.imageseq import writable

    kept = (replace(f, codecs=tuple(c for c in f.codecs if not c.image_sequence or writable(c))) for f in candidates)
    return tuple(f for f in kept if f.codecs)


FORMATS: tuple[Format, ...] = offered(ALL_FORMATS)


def find(format_key: str) -> Format | None:
    """The format with this key or display name."""
    return next((f for f in FORMATS if format_key in (f.key, f.display)), None)
