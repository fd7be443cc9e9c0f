"""Whether a render's segments join by stream copy: what each segment's video stream is, and the decision.

A segment piece records its stream's facts when it finishes (`StreamFacts`, gathered in the same
read as its packet digest, `tasks.proof.video_digest`). The stitch compares the pieces' facts
(`decide`) and joins by stream copy only when a decoder fed the pieces one after another sees one
stream: the same codec parameters and extradata (the parameter sets of H.264/H.265), each piece
opening on a picture that needs nothing decoded before it (an IDR frame, or a keyframe of an
all-intra codec) with no picture shown before that one, and timestamps evenly spaced with no gap.
Otherwise the stitch encodes again and says why (`JoinDecision.reason`).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Literal

import av
import xxhash

# What must be equal between pieces for their packets to form one stream.
COMPARED = ("codec", "profile", "width", "height", "pix_fmt", "tag", "time_base", "frame_ticks", "extradata")
# Codecs with pictures that depend on earlier ones: a piece must open on an IDR frame, which empties the
# decoder's reference buffer and restarts picture order (a plain I frame does neither).
IDR_CODECS = frozenset({"h264", "hevc"})
H264_IDR = 5
HEVC_IDR = (19, 20)  # IDR_W_RADL, IDR_N_LP; a CRA (21) may be followed by pictures that refer past it


def stream_params(stream: av.video.stream.VideoStream) -> dict[str, Any]:
    """The parameters of a video stream that must match for a stream copy (extradata by its hash)."""
    context = stream.codec_context
    extradata = context.extradata or b""
    return {
        "codec": context.name,
        "profile": context.profile,
        "width": stream.width,
        "height": stream.height,
        "pix_fmt": context.pix_fmt,
        "tag": stream.codec_tag.strip("\x00"),  # MXF has none: four NULs
        "time_base": str(stream.time_base),
        "extradata": xxhash.xxh3_64_hexdigest(extradata) if extradata else "",
    }


def opening(codec: str, extradata: bytes | None, first: bytes, keyframe: bool) -> str:
    """What the first packet (in decode order) of a stream is: "idr", "keyframe", "i-frame" (a keyframe of an
    H.264/H.265 stream that is not IDR) or "not a keyframe"."""
    if not keyframe:
        return "not a keyframe"
    if codec not in IDR_CODECS:
        return "keyframe"
    for nal in _nal_units(codec, extradata, first):
        if codec == "h264" and 1 <= nal[0] & 0x1F <= 5:  # the first coded slice decides
            return "idr" if nal[0] & 0x1F == H264_IDR else "i-frame"
        if codec == "hevc" and len(nal) > 1 and (nal[0] >> 1) & 0x3F < 32:
            return "idr" if (nal[0] >> 1) & 0x3F in HEVC_IDR else "i-frame"
    return "i-frame"


def _nal_units(codec: str, extradata: bytes | None, data: bytes) -> list[bytes]:
    """The NAL units of an H.264/H.265 packet: length-prefixed (MP4/QuickTime: the avcC/hvcC extradata says
    the prefix's size) or Annex B (start codes, e.g. MPEG-TS)."""
    where = 21 if codec == "hevc" else 4  # lengthSizeMinusOne's byte in hvcC / avcC
    if extradata and extradata[0] == 1 and len(extradata) > where:  # avcC/hvcC: configuration version 1
        size = (extradata[where] & 3) + 1
        units, at = [], 0
        while at + size <= len(data):
            length = int.from_bytes(data[at : at + size], "big")
            units.append(data[at + size : at + size + length])
            at += size + length
        return [u for u in units if u]
    parts = data.replace(b"\x00\x00\x00\x01", b"\x00\x00\x01").split(b"\x00\x00\x01")
    return [p for p in parts if p]


@dataclass
class StreamFacts:
    """What a piece's video stream is, gathered packet by packet as its file is read once.

    Note: packets come in decode order; with B-frames their presentation times jump about, so
    spacing is judged on the sorted times, and "no picture shown before the first" on their minimum.
    """

    params: dict[str, Any]
    pts: list[int] = field(default_factory=list)
    duration: int = 0
    first: str = ""

    def add(self, pts: int, duration: int, data: Any, keyframe: bool, extradata: bytes | None) -> None:
        if not self.pts:
            self.first = opening(str(self.params["codec"]), extradata, bytes(data), keyframe)
        self.pts.append(pts)
        self.duration = self.duration or duration

    def summary(self) -> dict[str, Any]:
        """The facts a piece records (JSON): the stream's parameters, its frame spacing, how it opens, its gaps."""
        stamps = sorted(self.pts)
        steps = [b - a for a, b in itertools.pairwise(stamps)]
        ticks = min(steps, default=self.duration)
        opens = self.first
        if opens in ("idr", "keyframe") and stamps and self.pts[0] != stamps[0]:
            opens = "pictures shown before its first"
        return {
            "stream": {**self.params, "frame_ticks": ticks},
            "opens": opens,
            "gaps": sum(1 for s in steps if s != ticks),
        }


@dataclass(frozen=True)
class JoinDecision:
    """How the stitch joins a render's segments (`move`: a single piece, nothing to join), and why when it
    encodes again."""

    method: Literal["copy", "reencode", "move"]
    reason: str | None = None


def decide(pieces: list[tuple[str, dict[str, Any]]]) -> JoinDecision:
    """Stream copy when the pieces (name, video facts as recorded, in frame order) form one stream; else re-encode,
    naming the first piece that does not fit and why."""
    first_name, first = pieces[0]
    for name, video in pieces:
        if "stream" not in video:
            return JoinDecision("reencode", f"{name} recorded no stream facts to decide a stream copy by")
        if video["opens"] not in ("idr", "keyframe"):
            what = "an IDR frame" if video["stream"]["codec"] in IDR_CODECS else "a keyframe"
            return JoinDecision("reencode", f"{name} does not open on {what} ({video['opens']})")
        if video["gaps"]:
            return JoinDecision("reencode", f"{name} has {video['gaps']} gap(s) in its timestamps")
        differ = [key for key in COMPARED if video["stream"].get(key) != first["stream"].get(key)]
        if differ:
            shown = ", ".join(f"{k} {video['stream'].get(k)!r} vs {first['stream'].get(k)!r}" for k in differ)
            return JoinDecision("reencode", f"{name} differs from {first_name} in {shown}")
    return JoinDecision("copy")
