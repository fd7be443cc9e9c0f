"""Long-GOP segments on small real files PyAV writes (no farm): how a piece's file opens, whether pieces join
by stream copy (`tasks.joinable.decide`), and the copy itself: every frame in order, timestamps rising."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest

from bridge.sim import framecode
from tasks.join import join_copy
from tasks.joinable import decide, opening
from tasks.proof import Mismatch, Timing, check_copy, video_digest

X264 = {"crf": "16", "preset": "veryfast", "x264-params": "open-gop=0"}  # the simulator's H.264 settings
X265 = {"crf": "20", "preset": "veryfast", "x265-params": "open-gop=0:log-level=error"}
SIZE = (256, 144)


def _encode(path: Path, first: int, count: int, encoder: str = "libx264", options: dict[str, str] | None = None,
            size: tuple[int, int] = SIZE, tag: str | None = None, pix_fmt: str = "yuv420p") -> str:  # fmt: skip
    """`count` frames carrying timeline frames first.. (the simulator's frame code), as a render job writes them."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream(encoder, rate=Fraction(24), options=options if options is not None else X264)
        stream.width, stream.height, stream.pix_fmt = *size, pix_fmt
        if tag:
            stream.codec_context.codec_tag = tag
        for index in range(count):
            frame = av.VideoFrame.from_ndarray(framecode.draw(first + index, *size, (90, 60, 30)), format="rgb24")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return str(path)


def _remux(source: str, dest: Path, keep: Callable[[int, av.Packet], bool]) -> str:
    """A copy of `source` holding the video packets (numbered in file order) that `keep` accepts."""
    with av.open(source) as src, av.open(str(dest), "w") as out:
        template = src.streams.video[0]
        stream = out.add_stream_from_template(template)
        stream.codec_context.codec_tag = template.codec_tag
        packets = (p for p in src.demux(template) if p.size)
        for index, packet in enumerate(packets):
            if keep(index, packet):
                packet.stream = stream
                out.mux(packet)
    return str(dest)


def _pieces(paths: list[str]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"segment {n}/{len(paths)}", video_digest(path)) for n, path in enumerate(paths, 1)]


def test_a_piece_opens_on_an_idr_frame_or_says_what_it_opens_on(tmp_path: Path) -> None:
    closed = _encode(tmp_path / "closed.mov", 0, 40)
    opened = _encode(tmp_path / "open.mov", 0, 60, options={**X264, "x264-params": "open-gop=1:keyint=20:scenecut=0"})
    raw = _encode(tmp_path / "annexb.ts", 0, 10)  # MPEG-TS: start codes, no avcC
    found = {}
    for name, path in (("closed", closed), ("open", opened), ("annexb", raw)):
        with av.open(path) as container:
            extradata = container.streams.video[0].codec_context.extradata
            found[name] = [opening("h264", extradata, bytes(p), p.is_keyframe)
                           for p in container.demux(video=0) if p.size]  # fmt: skip
    assert found["closed"][0] == "idr" and found["annexb"][0] == "idr"
    assert set(found["closed"][1:]) == {"not a keyframe"}
    assert found["open"].count("i-frame") == 2  # open GOPs: the later keyframes are I frames, not IDR


@pytest.mark.parametrize(
    "encoder,ext,options,tag",
    [("libx264", "mov", X264, None), ("libx264", "mp4", X264, None), ("libx265", "mov", X265, "hvc1")],
)
def test_pieces_with_the_same_settings_join_by_copy_with_every_frame_in_order(
    tmp_path: Path, encoder: str, ext: str, options: dict[str, str], tag: str | None
) -> None:
    paths = [_encode(tmp_path / f"seg{n}.{ext}", 1000 + 30 * n, 30, encoder, options, tag=tag) for n in range(3)]
    pieces = _pieces(paths)
    assert all(v["opens"] == "idr" and not v["gaps"] for _, v in pieces)
    assert decide(pieces).method == "copy"
    dest = str(tmp_path / f"joined.{ext}")
    join_copy(paths, None, dest)
    assert check_copy(dest, pieces)["frames"] == 90
    assert framecode.read_file(dest) == list(range(1000, 1090))  # decoded in presentation order, none lost
    with av.open(dest) as container:
        stamps = [(p.pts, p.dts) for p in container.demux(video=0) if p.size]
    dts = [d for _, d in stamps]
    assert all(a < b for a, b in itertools.pairwise(dts))
    assert any(a > b for (a, _), (b, _) in itertools.pairwise(stamps))  # B-frames: decode order is not display order
    shown = sorted(p for p, _ in stamps)
    assert len({b - a for a, b in itertools.pairwise(shown)}) == 1  # evenly spaced from start to end


def _other_profile(tmp_path: Path) -> str:
    return _encode(tmp_path / "b.mov", 1030, 30, options={**X264, "profile": "main"})


def _other_size(tmp_path: Path) -> str:
    return _encode(tmp_path / "b.mov", 1030, 30, size=(320, 180))


def _cut_after_keyframe(tmp_path: Path) -> str:
    return _remux(_encode(tmp_path / "long.mov", 1025, 35), tmp_path / "b.mov", lambda i, _: i >= 5)


def _open_gop(tmp_path: Path) -> str:
    source = _encode(
        tmp_path / "long.mov", 1010, 50, options={**X264, "x264-params": "open-gop=1:keyint=20:scenecut=0"}
    )
    with av.open(source) as container:
        keys = [i for i, p in enumerate(p for p in container.demux(video=0) if p.size) if p.is_keyframe]
    return _remux(source, tmp_path / "b.mov", lambda i, _: i >= keys[1])  # from the second keyframe: an I frame


def _gap(tmp_path: Path) -> str:
    source = _encode(tmp_path / "long.mov", 1030, 30)
    return _remux(source, tmp_path / "b.mov", lambda i, _: i != 12)  # a picture lost mid-GOP


def _leading(tmp_path: Path) -> str:
    """Opens on its IDR frame, but the next packet is shown before it (as a cut into an open GOP would be)."""
    source = _encode(tmp_path / "long.mov", 1030, 30)
    with av.open(source) as container:
        second = [p for p in container.demux(video=0) if p.size][1]
        earlier = second.dts - second.pts  # type: ignore[operator]  # shown at its decode time: before the IDR's
    return _retimed(source, tmp_path / "b.mov", {1: earlier})


def _retimed(source: str, dest: Path, shift: dict[int, int], dts: bool = False) -> str:
    """A copy of `source` with the presentation (and with `dts`, decode) times of packets (numbered in file
    order) moved by the given ticks."""
    with av.open(source) as src, av.open(str(dest), "w") as out:
        template = src.streams.video[0]
        stream = out.add_stream_from_template(template)
        stream.codec_context.codec_tag = template.codec_tag
        for index, packet in enumerate(p for p in src.demux(template) if p.size):
            packet.pts += shift.get(index, 0)  # type: ignore[operator]
            if dts:
                packet.dts += shift.get(index, 0)  # type: ignore[operator]
            packet.stream = stream
            out.mux(packet)
    return str(dest)


CASES: dict[str, tuple[Callable[[Path], str], str]] = {
    "profile": (_other_profile, "segment 2/2 differs from segment 1/2 in profile 'Main' vs 'High'"),
    "size": (_other_size, "segment 2/2 differs from segment 1/2 in width 320 vs 256, height 180 vs 144"),
    "cut": (_cut_after_keyframe, "segment 2/2 does not open on an IDR frame (not a keyframe)"),
    "open-gop": (_open_gop, "segment 2/2 does not open on an IDR frame (i-frame)"),
    "gap": (_gap, "segment 2/2 has 1 gap(s) in its timestamps"),
    "leading": (_leading, "segment 2/2 does not open on an IDR frame (pictures shown before its first)"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_pieces_that_do_not_form_one_stream_reencode_and_the_reason_names_piece_and_cause(
    tmp_path: Path, case: str
) -> None:
    make, reason = CASES[case]
    pieces = _pieces([_encode(tmp_path / "a.mov", 1000, 30), make(tmp_path)])
    decision = decide(pieces)
    assert decision.method == "reencode"
    assert decision.reason is not None and decision.reason.startswith(reason), decision.reason


def test_a_piece_without_stream_facts_reencodes(tmp_path: Path) -> None:
    pieces = _pieces([_encode(tmp_path / f"s{n}.mov", 1000 + 30 * n, 30) for n in range(2)])
    del pieces[1][1]["stream"]  # recorded by a worker that took no facts
    assert decide(pieces).reason == "segment 2/2 recorded no stream facts to decide a stream copy by"


def test_keyframe_only_quicktime_is_proved_by_index_and_long_gop_by_demuxing(tmp_path: Path) -> None:
    """The proof reads an all-intra QuickTime file's packets where the demuxer's index says they are, and
    demuxes anything with pictures out of order (`tasks.proof._indexed`); both read the same packets."""
    from tasks.proof import _demuxed, _indexed

    prores = _encode(tmp_path / "pr.mov", 0, 10, "prores_aw", {"profile": "3"}, pix_fmt="yuv422p10le")
    for path, indexed in ((_encode(tmp_path / "gop.mov", 0, 30), False), (prores, True)):
        with av.open(path) as container:
            fast = _indexed(path, container)
            assert (fast is not None) == indexed
            if fast is not None:
                read = [(bytes(data), size, pts) for data, size, pts, _ in fast]
                assert read == [(bytes(data), size, pts) for data, size, pts, _ in _demuxed(container)]


def _joined(tmp_path: Path) -> tuple[str, list[tuple[str, dict[str, Any]]]]:
    paths = [_encode(tmp_path / f"seg{n}.mov", 1000 + 30 * n, 30) for n in range(2)]
    dest = str(tmp_path / "joined.mov")
    join_copy(paths, None, dest)
    return dest, _pieces(paths)


def _boundary(dest: str) -> tuple[int, int]:
    """The file-order numbers of the last picture shown of the first piece and the first of the second."""
    with av.open(dest) as container:
        pts = [p.pts for p in container.demux(video=0) if p.size]
    return pts.index(max(pts[:30])), 30 + pts[30:].index(min(pts[30:]))


def test_the_proof_fails_a_join_whose_timestamps_are_wrong_though_its_packets_are_right(tmp_path: Path) -> None:
    dest, pieces = _joined(tmp_path)
    last, first = _boundary(dest)
    wrong = {
        "gap": (_retimed(dest, tmp_path / "gap.mov", dict.fromkeys(range(30, 60), 512), dts=True),
                "the joined file's timestamps have a gap after picture 30 of 60"),
        "order": (_retimed(dest, tmp_path / "order.mov", {last: 512, first: -512}),
                  "the joined file shows pictures of segment 2/2 before the end of segment 1/2"),
    }  # fmt: skip
    for path, reason in wrong.values():
        with pytest.raises(Mismatch, match=reason):
            check_copy(path, pieces)
    timing = Timing()  # decode times going back: FFmpeg's muxers refuse to write them, other writers may not
    timing.extend("segment 1/2", [0, 2, 1], [-1, 0, 1])
    with pytest.raises(Mismatch, match="the joined file's decode timestamps go back at segment 2/2 \\(1 after 1\\)"):
        timing.extend("segment 2/2", [3, 4], [1, 2])


def test_the_proof_fails_a_join_whose_stream_is_not_the_pieces_or_a_digest_it_cannot_recompute(tmp_path: Path) -> None:
    dest, pieces = _joined(tmp_path)
    other = [(name, {**video, "stream": {**video["stream"], "extradata": "0" * 16}}) for name, video in pieces]
    with pytest.raises(Mismatch, match="the joined file's video stream differs from segment 1/2's in extradata"):
        check_copy(dest, other)
    older = [(name, {k: v for k, v in video.items() if k != "hash"}) for name, video in pieces]
    with pytest.raises(Mismatch, match="a piece's digest was taken with CRC-32, not xxh3_128: run the job again"):
        check_copy(dest, older)
