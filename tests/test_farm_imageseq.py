"""Image sequences on a real farm: split across nodes, every frame in place once, under Resolve's names.

One farm for the module: two plain nodes, and one whose Resolve never says Complete for an
image sequence (`imageseq-stall`), reached by its tag. Short ranges of Demo/Teaser.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import av
import pytest
from farm_helpers import run, running_farm, wait_for_record

from bridge.sim import framecode
from mcp_server.views import job_view, submitted_view
from orchestrator import jobs, kinds, lifecycle
from orchestrator.kinds.base import SubmitRefused
from orchestrator.kinds.render import FrameSpan, RenderPlan, RenderSpec
from orchestrator.models import TaskRecord
from orchestrator.sequences import Sequence
from tasks.base import Superseded
from tasks.imageseq import FrameMover

NODES: dict[str, dict[str, Any]] = {
    "a": {"tags": ["plain"]},
    "b": {"tags": ["plain"]},
    "stall": {"tags": ["stall"], "env": {"RESOLVE_SIM_QUIRKS": "imageseq-stall"}},
}
TEASER = {"project": "Demo", "timeline": "Teaser", "format": "tif"}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("imageseq")
    with running_farm(home, NODES, RESOLVE_FARM_PIECE_SECONDS="0.5", RESOLVE_SIM_RENDER_START="0.1") as (_local, farm):
        yield farm


def in_folder(seq: Sequence) -> list[str]:
    return sorted(os.listdir(seq.folder)) if os.path.isdir(seq.folder) else []


def test_a_split_tiff_render_puts_every_frame_in_place_once(farm) -> None:
    record = run(farm, {**TEASER, "frames": {"start": 86400, "end": 86495}, "tags": ["plain"], "output_name": "split"})
    assert record.state == "succeeded", record.errors
    seq = record.plan.sequence
    assert record.plan.pulled and record.plan.stitch == "check" and not record.plan.audio  # `audio` (on) is ignored
    assert record.outputs == [seq.pattern] and seq.pattern.endswith("/split/split_%08d.tif")
    segments = [t for t in record.tasks if t.kind == "segment" and t.state == "done"]
    assert len(segments) >= 2 and {t.node for t in segments} == {"a", "b"}  # really split
    assert not any(t.kind == "audio" for t in record.tasks)
    # Exactly the range, once, under Resolve's names; no attempt folder left; each frame the right picture.
    assert in_folder(seq) == [f"split_{f:08d}.tif" for f in range(86400, 86496)]
    for frame in range(86400, 86496):
        with av.open(str(seq.path(frame))) as picture:
            assert framecode.read(next(picture.decode(video=0)).to_ndarray(format="rgb24")) == frame
    check = record.task("check").details
    assert (check["frames"], check["first"], check["last"], check["pattern"]) == (96, 86400, 86495, seq.pattern)
    # What an agent sees over MCP, and what the CLI prints (`status`: the record's outputs).
    assert job_view(record)["outputs"] == [seq.pattern]
    assert (
        submitted_view(record)["plan"]["output"] == seq.pattern and submitted_view(record)["plan"]["stitch"] == "check"
    )


def test_a_sequence_the_farm_cannot_write_is_refused_naming_the_field(farm) -> None:
    before = len(farm.store.list(limit=10_000))
    for spec, field in [
        ({**TEASER, "format": "cin"}, "format"),
        ({**TEASER, "codec": "RGB12"}, "codec"),
        ({**TEASER, "settings": {"AudioSampleRate": 48000}}, "settings"),
    ]:
        with pytest.raises(SubmitRefused) as refused:
            jobs.submit_render(farm, spec)
        assert refused.value.field == field, refused.value
    assert len(farm.store.list(limit=10_000)) == before  # nothing stored, nothing queued


def test_a_stalled_render_is_taken_from_its_files_and_a_frame_spoiled_before_the_check_fails_the_job(farm) -> None:
    """Resolve never says Complete (`imageseq-stall`): each piece is done from its files. A frame of a done piece
    is spoiled while the other piece still renders: the check fails the job, naming that frame."""
    record = jobs.submit_render(farm, {**TEASER, "frames": {"start": 86400, "end": 86447}, "split": 2,
                                       "tags": ["stall"], "output_name": "stalled"})  # fmt: skip
    seq = record.plan.sequence

    def one_done_one_not(r: Any) -> bool:
        segments = [t for t in r.tasks if t.kind == "segment"]
        return any(t.state == "done" for t in segments) and any(t.state != "done" for t in segments)

    midway = wait_for_record(farm, record.id, one_done_one_not, "no segment done while the other renders")
    done = next(t for t in midway.tasks if t.kind == "segment" and t.state == "done")
    spoiled = seq.path(done.start + 3)
    spoiled.write_bytes(b"half a frame")
    final = jobs.wait(farm, record.id, timeout=60)
    assert final.state == "failed"
    assert all(t.state == "done" and t.node == "stall" for t in final.tasks if t.kind == "segment")
    assert f"frame {done.start + 3} ({spoiled.name}) is unreadable" in final.task("check").error
    assert final.outputs == [] and any(spoiled.name in e for e in final.errors)
    logs = jobs.piece_logs(farm, record.id, done.name)[done.name]
    said = [line for line in logs if "Resolve: " in line]
    assert said and not any("Complete" in line for line in said), said  # Resolve never said it: the files did


def test_a_cancelled_sequence_leaves_no_frame(farm) -> None:
    """Cancelled while one piece is done (its frames in place) and the other waits at 100 %: the running one
    removes its attempt, and the cleanup removes the frames the done one moved into place."""
    record = jobs.submit_render(farm, {**TEASER, "frames": {"start": 86400, "end": 86447}, "split": 2,
                                       "tags": ["stall"], "output_name": "cancelled"})  # fmt: skip
    seq = record.plan.sequence

    def one_in_place_one_at_full(r: Any) -> bool:
        segments = [t for t in r.tasks if t.kind == "segment"]
        at_full = [t for t in segments if t.state == "running" and t.frames_done == t.frames_total]
        return any(t.state == "done" for t in segments) and bool(at_full)

    wait_for_record(farm, record.id, one_in_place_one_at_full, "no piece done while the other stalls")
    assert len([n for n in in_folder(seq) if not n.startswith(".")]) == 24  # the done piece's frames are in place
    final = jobs.cancel(farm, record.id)
    assert final.state == "cancelled" and not any(t.state == "running" for t in final.tasks)
    assert not [n for n in in_folder(seq) if n.startswith(".")]  # the stopped piece removed its attempt itself
    deadline = time.monotonic() + 30
    while os.path.isdir(seq.folder):  # the post worker's cleanup (cancel_cleanup_delay 0 here)
        assert time.monotonic() < deadline, in_folder(seq)
        time.sleep(0.1)


def stored_tail(farm, folder: Path) -> tuple[str, Sequence]:
    """A render job in Redis whose segment 1 (frames 86400..86402) renders on n1 while its tail copy, segment 2,
    renders the same frames on n2. No worker runs them (the job reads as cancelled, so the janitor leaves it alone):
    the test moves their frames itself, with the farm's locks and records."""
    seq = Sequence(folder=str(folder), name=folder.name, extension="tif", start=86400, end=86402)
    frames = FrameSpan(start=86400, end=86402, count=3)
    plan = RenderPlan(frames=frames, segments=2, single_pass=False, stitch="check", work_dir=str(folder / "w"),
                      output=seq.pattern, eligible_nodes=["n1", "n2"], known_nodes=["n1", "n2"], sequence=seq)  # fmt: skip
    now = time.time()
    tasks = [
        TaskRecord(name="segment 1", kind="segment", state="running", node="n1", start=86400, end=86402,
                   frames_total=3, generation=1, started_at=now),
        TaskRecord(name="segment 2", kind="segment", state="running", node="n2", start=86400, end=86402,
                   frames_total=3, generation=1, started_at=now, params={"copy_of": "segment 1"}),
    ]  # fmt: skip
    record = kinds.get("render").record(kind="render", spec=RenderSpec(**TEASER), plan=plan, tasks=tasks,
                                        state="cancelled")  # fmt: skip
    farm.store.create(record)
    return record.id, seq


def attempt(seq: Sequence, job_id: str, who: str) -> Path:
    folder = seq.attempt_dir(job_id, 1, who)
    folder.mkdir(parents=True)
    for frame in range(seq.start, seq.end + 1):
        (folder / seq.file_name(frame)).write_bytes(f"{who} {frame}".encode())
    return folder


def test_a_tail_copy_and_its_original_move_the_frames_once_and_a_piece_that_lost_its_lock_none(
    farm, tmp_path: Path
) -> None:
    job_id, seq = stored_tail(farm, farm.settings.storage_roots[0] / f"tail-{tmp_path.name}")
    record = farm.store.get(job_id)
    original, copy = record.task("segment 1"), record.task("segment 2")
    # A piece whose lock another worker holds now (its own lapsed while it was cut off) moves nothing.
    assert farm.locks.acquire(job_id, "segment 1", "n9:other", 30)
    lost = attempt(seq, job_id, "lost")
    with pytest.raises(Superseded):
        FrameMover(farm, job_id, original, "n1:m1", 30).move(seq, lost)
    assert in_folder(seq) == [lost.name]
    farm.locks.release(job_id, "segment 1", "n9:other")
    # The copy finishes first: its frames go into place, and it keeps the range's frames lock until its outcome
    # is recorded. The original, done rendering meanwhile, waits for that lock, then finds the range done.
    assert farm.locks.acquire(job_id, "segment 1", "n1:m1", 30) and farm.locks.acquire(job_id, "segment 2", "n2:m2", 30)
    by_copy = FrameMover(farm, job_id, copy, "n2:m2", 30)
    assert by_copy.move(seq, attempt(seq, job_id, "copy"))
    theirs: list[bool] = []
    by_original = FrameMover(farm, job_id, original, "n1:m1", 30)
    late = threading.Thread(target=lambda: theirs.append(by_original.move(seq, attempt(seq, job_id, "original"))))
    late.start()
    assert by_original.waiting.wait(10)  # the original now polls for the frames lock the copy holds
    assert not theirs and farm.locks.holder(job_id, "segment 1 frames") == "n2:m2"
    farm.store.apply(job_id, lambda rec: lifecycle.piece_done(rec, "segment 2", "n2", 1))
    by_copy.let_go()
    late.join(timeout=10)
    assert theirs == [False]  # it dropped its own frames
    assert in_folder(seq) == [lost.name, *(seq.file_name(f) for f in range(86400, 86403))]
    assert [seq.path(f).read_bytes() for f in range(86400, 86403)] == [
        f"copy {f}".encode() for f in range(86400, 86403)
    ]
    assert farm.store.get(job_id).task("segment 1").state == "done"
