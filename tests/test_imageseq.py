"""Image sequences without a farm: Resolve's names, what a folder holds, what is refused, what a node writes,
and the checks on real files (an attempt's frames, the frames in place, a cancelled job's leftovers)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import av
import pytest
from pydantic import BaseModel

from bridge.sim import formats, framecode, imageseq
from orchestrator.kinds import imageseq as kind
from orchestrator.kinds.base import SubmitRefused
from orchestrator.kinds.render import RenderSpec, open_pieces, pieces
from orchestrator.models import JobRecord, TaskRecord
from orchestrator.sequences import Sequence, files_digest, frames_text, survey
from tasks.imageseq import (
    FramesUnreadable,
    SequenceIncomplete,
    check_attempt,
    check_coverage,
    check_piece_frames,
    check_sequence,
    content_digest,
)


def seq(folder: str | Path = "/s/Demo_Main", start: int = 86400, end: int = 86409, ext: str = "tif") -> Sequence:
    return Sequence(folder=str(folder), name=Path(folder).name, extension=ext, start=start, end=end)


def test_names_are_resolves_and_the_pattern_is_printf() -> None:
    s = seq()
    assert s.file_name(86400) == "Demo_Main_00086400.tif" and s.count == 10
    assert s.path(86409) == Path("/s/Demo_Main/Demo_Main_00086409.tif")
    assert s.pattern == "/s/Demo_Main/Demo_Main_%08d.tif"
    assert s.frame_of("Demo_Main_00086400.tif") == 86400 and s.frame_of("Demo_Main_86400.tif") == 86400
    assert s.frame_of("Demo_Main_00086400.dpx") is None and s.frame_of("Other_00086400.tif") is None
    odd = seq("/s/a.b+[c]")  # a name with regex and glob characters means itself
    assert odd.frame_of("a.b+[c]_00000001.tif") == 1 and odd.frame_of("aXb+[c]_00000001.tif") is None
    assert odd.attempts_glob("j1", 2) == "/s/a.b+[[]c]/.j1.g2.*"
    assert s.attempt_dir("j1", 2, "segment-3.abc-1") == Path("/s/Demo_Main/.j1.g2.segment-3.abc-1")


def test_a_survey_finds_frames_missing_doubled_and_outside_the_range() -> None:
    s = seq()
    every = [s.file_name(f) for f in range(86400, 86410)]
    assert survey(s, [*every, ".j1.g1.segment-1", "notes.txt"]).complete
    found = survey(s, [s.file_name(86409), "Demo_Main_86409.tif", s.file_name(86399)])
    assert found.missing == list(range(86400, 86409)) and found.doubled == {
        86409: ["Demo_Main_00086409.tif", "Demo_Main_86409.tif"]
    }
    assert found.outside == [86399] and not found.complete
    assert found.reason() == (
        "9 of 10 frame(s) missing: 86400..86408; frame 86409 is there 2 times (Demo_Main_00086409.tif, "
        "Demo_Main_86409.tif)"
    )
    assert frames_text([1, 2, 3, 7, 9, 10, 12, 14, 20]) == "1..3, 7, 9..10, 12 and 2 more run(s)"


def test_a_sequence_compiles_to_frame_pieces_and_a_check_with_no_audio() -> None:
    spec = RenderSpec(project="Demo", timeline="Main", format="tif")
    assert spec.codec_key == "RGB8" and spec.intra and kind.speed_codec(spec) == "tif.RGB8"
    assert RenderSpec(project="Demo", timeline="Main", format="exr").codec_key == "RGBHalf"
    assert RenderSpec(project="Demo", timeline="Main").codec_key == "ProRes422HQ"
    s = kind.sequence(spec, Path("/storage/Demo_Main"), 86400, 86499)
    assert s is not None and s.pattern == "/storage/Demo_Main/Demo_Main_%08d.tif"
    silent = spec.model_copy(update={"audio": False})  # as the compiler makes them
    pulled = kind.adapt(open_pieces(silent, 86400, 86499, 3, Path("/w"), Path("/storage/Demo_Main")), s)
    cut = kind.adapt(pieces(silent, 86400, 86499, 2, Path("/w"), Path("/storage/Demo_Main")), s)
    for made in (pulled, cut):
        *renders, check = made
        assert all(p.kind == "segment" and p.task == kind.RENDER_FRAMES and p.output is None for p in renders)
        assert (
            check.kind == "check" and check.task == kind.CHECK_FRAMES and check.final and check.placement.pool == "post"
        )
        assert check.after == [p.name for p in renders] and check.output == s.pattern
    assert [(p.start, p.end) for p in cut[:2]] == [(86400, 86449), (86450, 86499)]


OFFERS = {"n1": {"tif": {"RGB8", "RGB16"}, "exr": {"RGBHalf"}}, "n2": {"tif": {"RGB8"}}}


@pytest.mark.parametrize(
    ("spec", "offers", "field", "reason"),
    [
        ({"format": "exr"}, OFFERS, "format", "exr (RGBHalf) cannot be written by n2: pin the job to nodes that can"),
        ({"format": "dpx"}, OFFERS, "format", "no node can write dpx image sequences (they write: exr, tif)"),
        ({"format": "tif", "codec": "RGB16"}, {"n2": OFFERS["n2"]}, "codec", "unknown codec 'RGB16' for tif (known: RGB8)"),
        ({"format": "png"}, OFFERS, "format", "png image sequences are not rendered by the farm (it renders dpx, exr, tif)"),
        ({"format": "tif", "settings": {"AudioCodec": "aac"}}, OFFERS, "settings", "AudioCodec: an image sequence has no audio"),
    ],
)  # fmt: skip
def test_what_the_nodes_write_decides_what_is_refused(
    spec: dict[str, Any], offers: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(SubmitRefused) as refused:
        kind.check_offers(RenderSpec(project="Demo", timeline="Main", **spec), offers)
    assert refused.value.field == field and reason in refused.value.reason


def test_what_every_node_writes_is_accepted() -> None:
    kind.check_offers(RenderSpec(project="Demo", timeline="Main", format="tif"), OFFERS)
    kind.check_offers(RenderSpec(project="Demo", timeline="Main", format="exr", node="n1"), {"n1": OFFERS["n1"]})
    kind.check_offers(RenderSpec(project="Demo", timeline="Main", format="exr"), {})  # no catalog yet: not known


def test_a_node_offers_only_the_image_codecs_its_ffmpeg_writes() -> None:
    missing = formats.Codec("RGB12", "RGB 12 bits", "no_such_encoder", "rgb24", image_sequence=True)
    assert not imageseq.writable(missing) and imageseq.writable(formats.TIFF)
    made_up = (
        formats.Format("cin", "Cineon", "cin", "image2", (missing,), None, image_sequence=True),
        formats.Format("dpx", "DPX", "dpx", "image2", (formats.DPX_10, missing), None, image_sequence=True),
    )
    assert [(f.key, [c.key for c in f.codecs]) for f in formats.offered(made_up)] == [("dpx", ["RGB10"])]
    keys = {f.key for f in formats.FORMATS}
    assert {"tif", "dpx"} <= keys and ("exr" in keys) == imageseq.writable(formats.EXR_HALF)


def render(project: Any) -> None:
    project.StartRendering(project.AddRenderJob())
    while project.IsRenderingInProgress():
        time.sleep(0.01)


@pytest.mark.parametrize(("fmt", "codec"), [("dpx", "RGB10"), ("exr", "RGBHalf"), ("tif", "RGB16")])
def test_the_simulator_writes_each_frame_under_resolves_name(demo, tmp_path: Path, fmt: str, codec: str) -> None:
    if fmt not in {f.key for f in formats.FORMATS}:
        pytest.skip(f"this FFmpeg cannot write {fmt}: the simulator does not offer it")
    assert demo.SetCurrentRenderFormatAndCodec(fmt, codec)
    out = tmp_path / "out"
    demo.SetRenderSettings({"MarkIn": 86400, "MarkOut": 86402, "TargetDir": str(out), "CustomName": "seq"})
    render(demo)
    assert sorted(os.listdir(out)) == [f"seq_{f:08d}.{fmt}" for f in range(86400, 86403)]
    with av.open(str(out / f"seq_00086401.{fmt}")) as picture:
        assert framecode.read(next(picture.decode(video=0)).to_ndarray(format="rgb24")) == 86401


@pytest.fixture
def rendered(demo, tmp_path: Path) -> Sequence:
    """Frames 86400..86405 of Demo/Main as the simulator writes a TIFF sequence, in tmp_path/Demo_Main."""
    s = seq(tmp_path / "Demo_Main", 86400, 86405)
    Path(s.folder).mkdir()
    assert demo.SetCurrentRenderFormatAndCodec("tif", "RGB8")
    demo.SetRenderSettings({"MarkIn": 86400, "MarkOut": 86405, "TargetDir": s.folder, "CustomName": s.name})
    render(demo)
    return s


def test_an_attempt_is_taken_from_its_files_frame_by_frame(rendered: Sequence) -> None:
    folder = Path(rendered.folder)
    digest = check_attempt(folder, rendered, 86400, 86405)
    assert digest["frames"] == 6 and (digest["first"], digest["last"]) == (86400, 86405)
    (folder / rendered.file_name(86403)).write_bytes((folder / rendered.file_name(86403)).read_bytes()[:300])
    with pytest.raises(FramesUnreadable, match=r"frame 86403 \(Demo_Main_00086403.tif\) is unreadable"):
        check_attempt(folder, rendered, 86400, 86405)
    (folder / rendered.file_name(86403)).unlink()
    with pytest.raises(FramesUnreadable, match=r"frame 86403 \(Demo_Main_00086403.tif\) is missing"):
        check_attempt(folder, rendered, 86400, 86405)
    with pytest.raises(
        FramesUnreadable, match=r"wrote 2 file\(s\) outside frames 86400..86402, e.g. Demo_Main_00086404"
    ):
        check_attempt(folder, rendered, 86400, 86402)  # Resolve wrote more than the range


def piece(name: str, start: int, end: int, s: Sequence, **details: Any) -> TaskRecord:
    recorded = {**content_digest(s, Path(s.folder), start, end, decoded=False), "files": files_digest(s, start, end)}
    return TaskRecord(name=name, kind="segment", state="done", start=start, end=end,
                      details={"sequence": recorded, **details})  # fmt: skip


def test_the_check_names_the_frame_that_changed_after_its_piece_moved_it(rendered: Sequence) -> None:
    first, second = piece("segment 1", 86400, 86402, rendered), piece("segment 2", 86403, 86405, rendered)
    check_coverage(rendered, [first, second])
    check_piece_frames(rendered, first)
    with pytest.raises(SequenceIncomplete, match=r"the pieces do not cover 86400..86405 once each"):
        check_coverage(rendered, [second])
    with pytest.raises(SequenceIncomplete, match=r"the pieces cover 86400..86402, not 86400..86405"):
        check_coverage(rendered, [first])
    spoiled = rendered.path(86401)
    spoiled.write_bytes(b"not a picture")
    with pytest.raises(SequenceIncomplete, match=r"frame 86401 \(Demo_Main_00086401.tif\) is unreadable: it does not"):
        check_piece_frames(rendered, first)
    swapped = rendered.path(86404)  # whole and readable, but not what segment 2 rendered: frame 86405's picture
    swapped.write_bytes(rendered.path(86405).read_bytes())
    with pytest.raises(SequenceIncomplete, match=r"frames 86403..86405 are not the files segment 2 rendered"):
        check_piece_frames(rendered, second)


class Spec(BaseModel):
    what: str = "x"


class Plan(BaseModel):
    sequence: Sequence


def test_the_check_wants_every_frame_of_the_range_once(rendered: Sequence) -> None:
    first, second = piece("segment 1", 86400, 86402, rendered), piece("segment 2", 86403, 86405, rendered)
    copy = piece("segment 3", 86400, 86402, rendered).model_copy(update={"params": {"copy_of": "segment 1"}})
    check = TaskRecord(name="check", kind="check", after=["segment 1", "segment 3", "segment 2"])
    record = JobRecord[Spec, Plan](kind="render", spec=Spec(), plan=Plan(sequence=rendered),
                                   tasks=[first, copy, second, check])  # fmt: skip
    rendered.path(86399).write_bytes(b"an earlier render's frame")  # outside the range: left alone
    assert check_sequence(record) == {"frames": 6, "first": 86400, "last": 86405, "folder": rendered.folder,
                                      "pattern": rendered.pattern, "outside": 1}  # fmt: skip
    doubled = Path(rendered.folder) / "Demo_Main_86401.tif"
    doubled.write_bytes(rendered.path(86401).read_bytes())
    with pytest.raises(
        SequenceIncomplete, match=r"frame 86401 is there 2 times \(Demo_Main_00086401.tif, Demo_Main_86401"
    ):
        check_sequence(record)
    doubled.unlink()
    rendered.path(86404).unlink()
    with pytest.raises(SequenceIncomplete, match=r"_%08d.tif: 1 of 6 frame\(s\) missing: 86404$"):
        check_sequence(record)


def test_a_cancelled_sequence_removes_only_the_frames_still_its_own(rendered: Sequence) -> None:
    mine, theirs = piece("segment 1", 86400, 86402, rendered), piece("segment 2", 86403, 86405, rendered)
    (Path(rendered.folder) / ".j1.g1.segment-3.abc-1").mkdir()
    replaced = rendered.path(86404)  # a later render of the same name replaced one frame of segment 2's
    Path(f"{replaced}.new").write_bytes(replaced.read_bytes())
    os.replace(f"{replaced}.new", replaced)
    record = JobRecord[Spec, Plan](
        id="j1", kind="render", spec=Spec(), plan=Plan(sequence=rendered), tasks=[mine, theirs]
    )
    left = kind.leftovers(record, rendered, generation=1)
    assert left.remove == [rendered.attempts_glob("j1", 1), *(str(rendered.path(f)) for f in range(86400, 86403))]
    assert left.if_empty == [rendered.folder]
