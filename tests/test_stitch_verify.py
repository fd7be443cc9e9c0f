"""The stitch proves its output by content: segments corrupted, swapped or doubled after their pieces
finished make it fail with a reason, and nothing appears under the final name."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from farm_helpers import running_farm

from mcp_server.views import job_view
from orchestrator import jobs
from orchestrator.cli.views import stitch_line
from orchestrator.kinds.render import FrameSpan, RenderJob, RenderPlan, RenderSpec
from orchestrator.local.demo import verify
from orchestrator.models import JobRecord, TaskRecord
from tasks.joinable import JoinDecision
from tasks.proof import check_copy, video_digest
from tasks.stitch import ContentMismatch, _join, stitch_details

ENV = {"RESOLVE_SIM_FPS": "4000", "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24"}


def _corrupt(files: list[Path]) -> None:
    data = bytearray(files[1].read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    files[1].write_bytes(bytes(data))


def _swap(files: list[Path]) -> None:
    temp = files[0].with_name("swap.tmp")
    os.replace(files[0], temp)
    os.replace(files[1], files[0])
    os.replace(temp, files[1])


def _double(files: list[Path]) -> None:
    shutil.copyfile(files[0], files[1])  # the first segment twice, the second missing


TAMPER: dict[str, tuple[Callable[[list[Path]], None], int]] = {
    "corrupt": (_corrupt, 1),  # the piece the stitch must name
    "swap": (_swap, 0),
    "double": (_double, 1),
}


def _segments_done(farm, job_id: str) -> JobRecord:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        record = farm.store.get(job_id)
        pieces = [t for t in record.tasks if t.kind == "segment"]
        if len(pieces) >= 2 and all(t.state == "done" for t in pieces):
            return record
        assert not record.finished, record.errors
        time.sleep(0.05)  # polling the record: the segments finish on other processes
    raise AssertionError("segments never finished")


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_tampered_segments_fail_the_stitch(tmp_path, how: str) -> None:
    with running_farm(tmp_path, {"v-1": {}, "v-2": {}}, **ENV) as (local, farm):
        local.stop_worker("post")  # no stitch until the segments are tampered with
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "split": 3, "output_name": how})
        done = _segments_done(farm, record.id)
        pieces = sorted((t for t in done.tasks if t.kind == "segment"), key=lambda t: t.start or 0)
        assert all(t.details["video"]["packets"] == t.end - t.start + 1 for t in pieces)  # type: ignore[operator]
        files = [Path(str(t.output)) for t in pieces]
        TAMPER[how][0](files)
        local.add_worker("post", post=True, resolve=False)
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "failed"
        error = str(final.task("stitch").error)
        named = pieces[TAMPER[how][1]].name
        assert f"packets for {named} are not the ones {named} rendered" in error, error
        out = Path(final.plan.output + ".mov")
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.stem}.*partial*"))


def test_untouched_segments_stitch_and_record_digests(tmp_path) -> None:
    with running_farm(tmp_path, {"v-1": {}, "v-2": {}}, **ENV) as (_local, farm):
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "split": 3, "output_name": "ok"})
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "succeeded", final.errors
        pieces = [t for t in final.tasks if t.kind == "segment"]
        assert len(pieces) == 3
        assert len({t.details["video"]["digest"] for t in pieces}) == 3
        assert verify(str(Path(final.plan.output + ".mov")), final.plan)["exact"]


# H.264 on records in memory: the simulator renders the segments, the stitch (`_join`) runs in this process.

H264_RANGES = [(86400, 86423), (86424, 86447), (86448, 86471)]


def _h264_job(tmp_path: Path, stitch: str, fmt: str = "mp4", codec: str = "H264") -> RenderJob:
    """A render job whose three H.264 segments (and audio) the simulator rendered, each recorded as its piece did."""
    from bridge.session import connect
    from bridge.settings import BridgeSettings

    work = tmp_path / "work"
    with connect(BridgeSettings.from_env(mode="sim")) as session:
        session.open_project("Demo")
        files = [session.render("Teaser", a, b, str(work), f"seg_{n}", format=fmt, codec=codec,
                                settings={"ExportAudio": False}).outputs[0]
                 for n, (a, b) in enumerate(H264_RANGES)]  # fmt: skip
        audio = session.render("Teaser", 86400, 86471, str(work), "audio", format=fmt, codec="H264",
                               settings={"ExportVideo": False, "AudioCodec": "aac"}).outputs[0]  # fmt: skip
    plan = RenderPlan(frames=FrameSpan(start=86400, end=86471, count=72), segments=3, single_pass=False,
                      stitch=stitch, work_dir=str(work), output=str(tmp_path / "out" / "h264"), eligible_nodes=[],
                      known_nodes=[], fps=24.0, audio=True)  # type: ignore[arg-type]  # fmt: skip
    pieces = [TaskRecord(name=f"segment {n}/3", kind="segment", state="done", start=a, end=b, output=path,
                         details={"video": video_digest(path)})
              for n, ((a, b), path) in enumerate(zip(H264_RANGES, files, strict=True), 1)]  # fmt: skip
    pieces.append(TaskRecord(name="audio", kind="audio", state="done", start=86400, end=86471, output=audio))
    stitch_piece = TaskRecord(name="stitch", kind="stitch", after=[p.name for p in pieces], final=True)
    return RenderJob(kind="render", spec=RenderSpec(project="Demo", timeline="Teaser", format=fmt, codec=codec),
                     plan=plan, tasks=[*pieces, stitch_piece])  # fmt: skip


def _garble(files: list[Path]) -> None:
    data = bytearray(files[1].read_bytes())
    start = data.index(b"mdat") + 64  # into the packets, NAL lengths too: the decoder refuses them
    data[start : start + 1024] = b"\xff" * 1024
    files[1].write_bytes(bytes(data))


IN_MEMORY = {**TAMPER, "garble": (_garble, 1)}


@pytest.mark.parametrize(
    "stitch,fmt,codec",
    [("copy", "mp4", "H264"), ("reencode", "mp4", "H264"), ("copy", "mov", "ProRes422HQ")],  # (ProRes: read by index)
)
@pytest.mark.parametrize("how", sorted(IN_MEMORY))
def test_tampered_segments_fail_the_stitch_in_memory(sim_env, tmp_path, how: str, stitch: str, fmt: str,
                                                      codec: str) -> None:  # fmt: skip
    record = _h264_job(tmp_path, stitch, fmt, codec)
    pieces = [t for t in record.tasks if t.kind == "segment"]
    IN_MEMORY[how][0]([Path(str(t.output)) for t in pieces])
    with pytest.raises(ContentMismatch) as failed:
        _join(record)
    named = pieces[IN_MEMORY[how][1]].name
    assert f"packets for {named} are not the ones {named} rendered" in str(failed.value)
    out = Path(record.plan.output + "." + fmt)
    assert not out.parent.exists() or not list(out.parent.iterdir())  # nothing under the final name, no partial


def test_h264_segments_join_by_copy_with_every_frame_in_order_and_their_packets(sim_env, tmp_path) -> None:
    record = _h264_job(tmp_path, "copy", fmt="mov")
    final, how = _join(record)
    assert how == JoinDecision("copy")
    assert verify(str(final), record.plan)["exact"]
    pieces = [(t.name, t.details["video"]) for t in record.tasks if t.kind == "segment"]
    assert check_copy(str(final), pieces) == {"frames": 72, "audio_seconds": 3.0}


def test_h264_segments_that_do_not_fit_are_encoded_again_and_the_record_says_why(sim_env, tmp_path) -> None:
    record = _h264_job(tmp_path, "copy")
    second = record.task("segment 2/3")
    second.details["video"]["stream"]["extradata"] = "0" * 16  # as if another encoder build had rendered it
    final, how = _join(record)
    assert how.method == "reencode"
    assert how.reason == (f"segment 2/3 differs from segment 1/3 in extradata '{'0' * 16}' vs "
                          f"{record.task('segment 1/3').details['video']['stream']['extradata']!r}")  # fmt: skip
    assert verify(str(final), record.plan)["exact"]
    record.task("stitch").details = stitch_details(how, 0.5)  # what the record, the CLI and MCP then show
    assert job_view(record)["stitch"] == {"method": "reencode", "reason": how.reason}
    assert stitch_line(record) == f"stitch: reencode ({how.reason})"
    planned = _h264_job(tmp_path / "planned", "reencode")
    assert _join(planned)[1].reason == "H264 in mp4 is not known to join losslessly by stream copy"
