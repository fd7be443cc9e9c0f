"""Pulled renders on records in memory: open pieces take frames sized by speed when claimed (no Redis, no Celery).

The sizing rule alone (`orchestrator.pull.sizing`), then the lifecycle around it: a successor
takes each claimed open piece's place, the last frames close the queue, and whatever the
order of claims, every frame of the range is taken exactly once.
"""

from __future__ import annotations

import random
import time
from typing import Any

from pydantic import BaseModel

from orchestrator import lifecycle
from orchestrator.kinds.base import record_model
from orchestrator.models import Placement, TaskRecord
from orchestrator.pull import rules as pull_rules
from orchestrator.pull.pool import FramePool
from orchestrator.pull.rules import PulledRender
from orchestrator.pull.sizing import RESERVE, UNSTEADY, Sizing, audio_speed, frames_to_take


class Spec(BaseModel):
    what: str = "x"


class Plan(BaseModel):
    pulled: bool = True
    cost_key: str | None = None


Job = record_model("render", Spec, Plan, FramePool, PulledRender(), ("frame_pool",))


def pool(
    frames: int = 2880, target: float = 300.0, start: float = 2.0, min_frames: int = 24, opened: int = 4
) -> FramePool:
    return FramePool(start=1000, end=1000 + frames - 1, next=1000, made=opened, open_pieces=opened,
                     target_seconds=target, start_seconds=start, min_frames=min_frames, speed_key="k",
                     work_dir="/w", extension="mov")  # fmt: skip


def pulled_job(opened: int = 4, **kw: Any) -> Job:
    where = Placement(pool="render")
    pieces = [TaskRecord(name=f"segment {i}", kind="segment", task="t.seg", placement=where, params={"open": True})
              for i in range(1, opened + 1)]  # fmt: skip
    record = Job(
        kind="render", spec=Spec(), plan=Plan(), frame_pool=pool(opened=opened, **kw),
        tasks=[*pieces, TaskRecord(name="stitch", kind="stitch", task="t.join", placement=Placement(pool="post"),
                                   after=[p.name for p in pieces], job_state="stitching", final=True)],
    )  # fmt: skip
    lifecycle.submit(record)
    return record


def claim(record: Job, name: str, node: str, speeds: dict[str, float], nodes: list[str]) -> lifecycle.Outcome:
    piece = record.task(name)
    return lifecycle.claim(record, name, node, str(piece.celery_id), record.generation, (), nodes,
                           context=Sizing(speeds))  # fmt: skip


MIXED = {"n30": 30.0, "n60": 60.0, "n120": 120.0, "n240": 240.0}


def test_known_speeds_share_a_short_render_so_that_all_finish_together() -> None:
    """Four free nodes at 30..240 frames/s, 2,880 frames: one piece each, frames in proportion to speed."""
    record = pulled_job()
    for name, node in zip(
        ["segment 1", "segment 2", "segment 3", "segment 4"], ["n240", "n30", "n120", "n60"], strict=True
    ):
        claim(record, name, node, MIXED, list(MIXED))
    taken = {t.node: t.frames_total for t in record.tasks if t.state == "running"}
    assert taken == {"n240": 1536, "n30": 192, "n120": 768, "n60": 384}  # 2,880 x speed / 450
    assert record.schedule is not None and record.schedule.remaining == 0
    assert all(t.state == "skipped" for t in record.tasks if t.params.get("open"))


def test_an_unsteady_farm_keeps_a_reserve_out_of_a_one_round_job_s_first_pieces_for_a_last_round() -> None:
    """The same render on a farm whose nodes' speeds have wandered (their recorded spread at the threshold):
    each node's first piece is cut short of the end, and the frames left are a last round, which the first
    node back for its second piece opens; a job of several rounds keeps no reserve."""
    order = [("segment 1", "n240"), ("segment 2", "n30"), ("segment 3", "n120"), ("segment 4", "n60")]
    records, now = {}, time.time()
    for spread in (UNSTEADY, UNSTEADY / 2):
        record = records[spread] = pulled_job()
        for name, node in order:
            piece = record.task(name)
            lifecycle.claim(record, name, node, str(piece.celery_id), record.generation, (), list(MIXED), now=now,
                            context=Sizing(MIXED, spread=spread))  # fmt: skip
    steady = {t.node: t.frames_total for t in records[UNSTEADY / 2].tasks if t.state == "running"}
    assert steady == {"n240": 1536, "n30": 192, "n120": 768, "n60": 384}  # under the threshold: as before
    reserved = records[UNSTEADY]
    firsts = {t.node: t.frames_total for t in reserved.tasks if t.state == "running"}
    assert all(firsts[n] < steady[n] for n in MIXED), firsts
    assert reserved.schedule is not None and reserved.schedule.remaining > 2880 * RESERVE / 2, firsts
    # A job of several rounds keeps none: its later rounds are sized by what its first one showed.
    long = pulled_job(frames=10 * 2880, target=4.0)
    lifecycle.claim(long, "segment 1", "n240", str(long.task("segment 1").celery_id), long.generation, (),
                    list(MIXED), now=now, context=Sizing(MIXED, spread=UNSTEADY))  # fmt: skip
    assert long.schedule is not None and long.schedule.reserve == 0 and long.task("segment 1").frames_total
    # Without n60 (busy elsewhere), n240 back for its second piece opens the reserve: it sizes its piece as
    # the last round over every frame left, not over those the reserve leaves.
    record = pulled_job()
    for name, node in order[:3]:
        piece = record.task(name)
        lifecycle.claim(record, name, node, str(piece.celery_id), record.generation, (), list(MIXED), now=now,
                        context=Sizing(MIXED, spread=UNSTEADY))  # fmt: skip
    lifecycle.piece_done(record, "segment 1", "n240", record.generation, output="/w/a")
    assert record.schedule is not None and record.schedule.reserve > 0
    opened = next(t.name for t in record.tasks if t.params.get("open") and t.state == "pending")
    unreserved = frames_to_take(record.schedule.model_copy(update={"reserve": 0.0}), "n240", MIXED, list(MIXED),
                                pull_rules._busy(record, MIXED, now + 10))  # fmt: skip
    piece = record.task(opened)
    lifecycle.claim(record, opened, "n240", str(piece.celery_id), record.generation, (), list(MIXED), now=now + 10,
                    context=Sizing(MIXED, spread=UNSTEADY))  # fmt: skip
    assert record.task(opened).frames_total == unreserved > 0 and record.schedule.reserve == 0


def test_a_node_that_would_join_the_last_round_for_a_sliver_is_left_out_and_the_others_take_it_all() -> None:
    """Sixteen equal nodes, one busy 2.5 s with the audio pass: the fifteen free ones take every frame.

    Counting the audio node in would leave it a sliver to render after its pass and a start of
    its own, plus whatever the others' estimates left over: it would finish last.
    """
    nodes = [f"n{i}" for i in range(1, 17)]
    speeds = dict.fromkeys(nodes, 60.0)
    record = pulled_job(opened=16)
    busy = {"n16": 2.5}  # the audio pass, as `PulledRender`'s `_busy` counts it
    assert record.schedule is not None
    taken: list[int] = []
    for node in nodes[:-1]:
        size = frames_to_take(record.schedule, node, speeds, nodes, busy)
        record.schedule.next += size
        busy[node] = 2.0 + size / speeds[node]  # its piece: a start, then its frames
        taken.append(size)
    # Counted in, the audio node would be left 39 frames, to start at 4.5 s and end last.
    assert record.schedule.remaining == 0 and set(taken) == {192}


def test_a_late_joiner_counted_in_only_if_it_would_still_render_long_enough_with_it() -> None:
    """The last free node (60 frames/s) and 539 frames left; the 30 frames/s node ends its audio pass
    at 3.95 s. Counted in, it would start at 5.95 s and render 3.45 s, under two starts: the free
    node takes everything rather than leave it a sliver to finish last."""
    record = pulled_job(frames=539, target=4.0)
    assert record.schedule is not None
    busy = {"n30": 3.95, "n120": 8.6, "n240": 8.6}
    assert frames_to_take(record.schedule, "n60", MIXED, list(MIXED), busy) == 539


def test_the_audio_node_counts_as_busy_even_before_it_ever_rendered_an_audio_pass() -> None:
    """The audio pass goes to the 30 frames/s node, measured so far only at video; n120 rendered one
    at 50x its video speed. The slow node is busy about 2 + 2,880 / 1,500 s, not free."""
    record = pulled_job()
    record.tasks.append(TaskRecord(name="audio", kind="audio", task="t.audio", start=1000, end=3879,
                                   params={"prefer": "n30"}))  # fmt: skip
    speeds = {**MIXED, "n120/audio": 6000.0}
    assert audio_speed(speeds, "n30") == 1500.0 and audio_speed(speeds, "n120") == 6000.0
    assert audio_speed(MIXED, "n30") == 0.0  # nothing tells
    assert pull_rules._busy(record, speeds, now=0.0) == {"n30": 2.0 + 2880 / 1500}


def test_far_from_the_end_a_node_takes_its_target_duration_and_a_successor_takes_its_place() -> None:
    record = pulled_job(frames=100_000, target=20.0)
    outcome = claim(record, "segment 1", "n60", MIXED, list(MIXED))
    first = record.task("segment 1")
    # The farm (450 frames/s) renders for 222.2 s more: 6 even rounds of 37.0 s, each between the target (20 s)
    # and twice it; at 60 frames/s that is 2,223 frames.
    assert (first.start, first.end, first.frames_total) == (1000, 3222, 2223)
    assert first.output == "/w/seg_0001.mov" and not first.params
    assert first.details == {"sized_by": 60.0}  # the ETA counts it at that until its frames come out
    assert [s.piece for s in outcome.send] == ["segment 5"]  # the queue keeps one open piece per node
    successor = record.task("segment 5")
    assert successor.state == "pending" and successor.params == {"open": True} and successor.celery_id
    assert "segment 5" in record.task("stitch").after


def test_an_unknown_node_takes_a_small_first_piece() -> None:
    record = pulled_job(frames=2880)
    claim(record, "segment 1", "new", {"n60": 60.0}, ["new", "n60"])
    assert record.task("segment 1").frames_total == 2880 // (4 * 2)


def test_an_unknown_node_s_first_piece_is_sized_in_time_at_the_slowest_known_speed() -> None:
    """A newcomer on a long render: what the slowest node known renders in four starts (4 x 2 s at 30 frames/s),
    not a share of the frames (28,800 / 12 = 2,400: 80 s at that speed); half as many frames where each costs
    twice as much; a share again when no speed is known at all (a fresh farm)."""
    p = pool(frames=28_800)
    speeds = {"n30": 30.0, "n240": 240.0, "n30/audio": 1.0}  # (an audio pass's speed is not a node's)
    assert frames_to_take(p, "new", speeds, ["new", "n30", "n240"]) == 240
    p.costs = ((1000, 2.0),)
    assert frames_to_take(p, "new", speeds, ["new", "n30", "n240"]) == 120
    p.costs = ()
    assert frames_to_take(p, "new", {}, ["new", "n30", "n240"]) == 2400
    p.start_seconds = 0.0  # starts that cost nothing: a piece of the target duration, within the share
    assert frames_to_take(p, "new", speeds, ["new", "n30", "n240"]) == 2400


def test_no_piece_is_so_short_that_its_start_dominates_and_none_leaves_a_crumb() -> None:
    p = pool(frames=100_000, target=0.1, start=2.0)
    # Far from the end a piece is at least 9 x its 2 s start (18 s, 1,080 frames at 60 frames/s), not the 0.1 s
    # target: here 7 even rounds of 31.7 s to the end, between 18 s and 36 s.
    assert frames_to_take(p, "n60", MIXED, list(MIXED)) == 1905
    p = pool(frames=1000, min_frames=600)
    pair = {"a": 60.0, "b": 60.0}
    assert frames_to_take(p, "a", pair, ["a", "b"]) == 1000  # half would leave 400: not worth a piece of its own


def test_no_piece_is_expected_to_outlast_half_the_render_time_limit() -> None:
    """A node left alone near the end must not take an hour of frames against a 10 s limit: it would be killed."""
    p = pool(frames=2880, target=300.0)
    p.longest_seconds = 5.0
    assert frames_to_take(p, "n60", MIXED, ["n60"]) == 300
    p.target_seconds = 1.0  # far from the end too
    assert frames_to_take(p, "n60", MIXED, ["n60"]) == 300


def test_an_open_piece_claimed_after_the_last_frames_went_is_skipped_and_the_stitch_sent_once_all_are_done() -> None:
    record = pulled_job(opened=2, frames=200)
    claim(record, "segment 1", "a", {"a": 100.0, "b": 100.0}, ["a", "b"])
    assert record.task("segment 1").frames_total == 100
    out = claim(record, "segment 2", "b", {"a": 100.0, "b": 100.0}, ["a", "b"])
    assert record.task("segment 2").frames_total == 100 and not out.send
    lifecycle.piece_done(record, "segment 1", "a", record.generation, output="/o1")
    late = lifecycle.Outcome("run")
    if any(t.params.get("open") and t.state == "pending" for t in record.tasks):
        late = claim(record, next(t.name for t in record.tasks if t.params.get("open") and t.state == "pending"),
                     "a", {}, ["a", "b"])  # fmt: skip
        assert late.verdict == "skip"
    outcome = lifecycle.piece_done(record, "segment 2", "b", record.generation, output="/o2")
    assert [s.piece for s in outcome.send + late.send] == ["stitch"]
    assert record.task("stitch").after == ["segment 1", "segment 2"]


def test_a_guessed_start_cost_is_replaced_by_the_first_measured_then_blended() -> None:
    record = pulled_job(opened=3, frames=3000, start=5.0)
    assert record.schedule is not None
    record.schedule.start_measured = False  # compiled before any host measured a start: the setting's 5 s
    for name, node in (("segment 1", "a"), ("segment 2", "b"), ("segment 3", "c")):
        claim(record, name, node, {}, ["a", "b", "c"])
    lifecycle.piece_done(record, "segment 1", "a", record.generation, output="/o1", details={"start_seconds": 0.2})
    assert record.schedule.start_seconds == 0.2 and record.schedule.start_measured
    lifecycle.piece_done(record, "segment 2", "b", record.generation, output="/o2", details={"start_seconds": 0.4})
    assert record.schedule.start_seconds == 0.3  # measured ones are blended


def test_any_order_of_claims_and_speeds_takes_every_frame_exactly_once() -> None:
    rng = random.Random(7)
    for _ in range(200):
        nodes = [f"n{i}" for i in range(rng.randint(1, 6))]
        speeds = {n: rng.choice([0.0, 10.0, 60.0, 240.0, 1000.0]) for n in nodes}
        record = pulled_job(opened=len(nodes), frames=rng.randint(48, 20_000), target=rng.choice([0.5, 5.0, 60.0]),
                            start=rng.choice([0.0, 2.0]))  # fmt: skip
        for _ in range(10_000):
            ready = [t for t in record.tasks if t.state == "pending" and t.kind == "segment"]
            running = [t for t in record.tasks if t.state == "running"]
            if not ready and not running:
                break
            if ready and (not running or rng.random() < 0.6):
                claim(record, rng.choice(ready).name, rng.choice(nodes), speeds, nodes)
            else:
                piece = rng.choice(running)
                lifecycle.piece_done(record, piece.name, str(piece.node), record.generation, output=piece.output)
        assert record.schedule is not None
        frames = sorted(f for t in record.tasks if t.state == "done" for f in range(t.start or 0, (t.end or 0) + 1))
        assert frames == list(range(record.schedule.start, record.schedule.end + 1))
        assert record.task("stitch").state == "pending"
        assert all(record.task(n).state == "done" for n in record.task("stitch").after)


def test_the_stitch_joins_pieces_in_frame_order_not_in_the_order_they_were_taken(sim_env, tmp_path) -> None:
    """Open pieces are numbered when queued and take frames when claimed: "segment 2" may hold earlier frames."""
    from bridge.session import connect
    from bridge.settings import BridgeSettings
    from orchestrator.kinds.render import FrameSpan, RenderJob, RenderPlan, RenderSpec
    from orchestrator.local.demo import verify
    from tasks.proof import video_digest
    from tasks.stitch import _join

    work = tmp_path / "work"
    with connect(BridgeSettings.from_env(mode="sim")) as session:
        session.open_project("Demo")
        later = session.render("Teaser", 86424, 86447, str(work), "seg_0001", settings={"ExportAudio": False})
        earlier = session.render("Teaser", 86400, 86423, str(work), "seg_0002", settings={"ExportAudio": False})
    plan = RenderPlan(frames=FrameSpan(start=86400, end=86447, count=48), segments=2, single_pass=False, stitch="copy",
                      work_dir=str(work), output=str(tmp_path / "out"), eligible_nodes=[], known_nodes=[], fps=24.0,
                      audio=False, pulled=True)  # fmt: skip
    record = RenderJob(kind="render", spec=RenderSpec(project="Demo", timeline="Teaser"), plan=plan, tasks=[
        TaskRecord(name="segment 1", kind="segment", state="done", start=86424, end=86447, output=later.outputs[0],
                   details={"video": video_digest(later.outputs[0])}),
        TaskRecord(name="segment 2", kind="segment", state="done", start=86400, end=86423, output=earlier.outputs[0],
                   details={"video": video_digest(earlier.outputs[0])}),
        TaskRecord(name="stitch", kind="stitch", after=["segment 1", "segment 2"], final=True),
    ])  # fmt: skip
    final, how = _join(record)
    assert how.method == "copy"
    assert verify(str(final), plan)["exact"]


def _tail(
    fast_speed: float = 240.0, believed: float = 10.0, reported: tuple[float, float] | None = None
) -> tuple[Job, dict[str, float], lifecycle.Outcome]:
    """Two nodes: `slow` took a long first piece (its speed unknown) and renders it; `fast` took the rest of the
    frames and has just finished its last piece: the outcome of that report. The speed book has `slow` at
    `believed`; `reported`: (seconds, frames) between its piece's first and last reports of frames."""
    speeds = {"slow": believed, "fast": fast_speed}
    record = pulled_job(opened=2, frames=1200, target=300.0, start=1.0)
    claim(record, "segment 1", "slow", {}, ["slow", "fast"])
    first = record.task("segment 1")
    first.frames_done = 10
    if reported is not None:
        now = time.time()
        first.frames_done = 10 + int(reported[1])
        first.first_frames, first.last_frames = (now - reported[0], 10), (now, first.frames_done)
    assert record.schedule is not None
    while True:
        piece = next(t for t in record.tasks if t.state == "pending" and t.params.get("open"))
        claim(record, piece.name, "fast", speeds, ["slow", "fast"])
        outcome = lifecycle.piece_done(
            record, piece.name, "fast", record.generation, output="/w/f", context=Sizing(speeds)
        )
        if not record.schedule.remaining:
            return record, speeds, outcome


def test_an_idle_node_copies_the_piece_that_would_finish_last_and_the_first_to_finish_wins() -> None:
    record, speeds, outcome = _tail()
    (sent,) = outcome.send
    spare = record.task(sent.piece)
    assert sent.node == "fast" and spare.params == {"copy_of": "segment 1"} and spare.state == "pending"
    assert (spare.start, spare.end) == (record.task("segment 1").start, record.task("segment 1").end)
    assert spare.name not in record.task("stitch").after  # the stitch takes one of the two: the original's record
    assert lifecycle.claim(record, spare.name, "fast", str(spare.celery_id), 1, (), ["slow", "fast"]).verdict == "run"
    done = lifecycle.piece_done(
        record, spare.name, "fast", record.generation, output="/w/copy.mov", context=Sizing(speeds)
    )
    original = record.task("segment 1")
    assert original.state == "done" and original.output == "/w/copy.mov"
    assert [s.piece for s in done.send] == ["stitch"]
    # The slow original learns at its next report that it lost, stops, and changes nothing.
    assert lifecycle.progress(record, "segment 1", "slow", 20, original.frames_total).stop
    assert lifecycle.piece_cancelled(record, "segment 1", "slow", record.generation).verdict == "stale"
    assert lifecycle.piece_done(record, "segment 1", "slow", record.generation, output="/w/late.mov").verdict == "stale"
    assert original.output == "/w/copy.mov"


def test_when_the_original_finishes_first_the_copy_stops_and_counts_for_nothing() -> None:
    record, _, outcome = _tail()
    spare = record.task(outcome.send[0].piece)
    lifecycle.claim(record, spare.name, "fast", str(spare.celery_id), 1, (), ["slow", "fast"])
    lifecycle.piece_done(record, "segment 1", "slow", record.generation, output="/w/seg_0001.mov")
    assert lifecycle.progress(record, spare.name, "fast", 5, spare.frames_total).stop
    assert lifecycle.piece_done(record, spare.name, "fast", record.generation, output="/w/c.mov").verdict == "stale"
    assert spare.state == "cancelled" and record.task("segment 1").output == "/w/seg_0001.mov"
    stitch = record.task("stitch")
    assert stitch.state == "pending"
    lifecycle.claim(record, "stitch", "post", str(stitch.celery_id), record.generation, (), [])
    lifecycle.piece_done(record, "stitch", "post", record.generation, output="/out.mov")
    assert record.state == "succeeded" and record.outputs == ["/out.mov"]


def test_a_copy_whose_original_finished_before_it_started_never_runs_and_the_job_still_settles() -> None:
    record, _, outcome = _tail()
    spare = record.task(outcome.send[0].piece)
    lifecycle.piece_done(record, "segment 1", "slow", record.generation, output="/w/seg_0001.mov")
    stitch = record.task("stitch")
    lifecycle.claim(record, "stitch", "post", str(stitch.celery_id), record.generation, (), [])
    lifecycle.piece_done(record, "stitch", "post", record.generation, output="/out.mov")
    assert not record.finished  # the copy's message is still on its way
    assert lifecycle.claim(record, spare.name, "fast", str(spare.celery_id), 1, (), ["slow", "fast"]).verdict == "skip"
    assert spare.state == "cancelled"
    assert record.state == "succeeded" and record.outputs == ["/out.mov"]  # the copy was the last thing it waited for
    assert record.frames() == (1200, 1200)  # a spare copy counts no frames


def test_a_copy_that_fails_is_dropped_and_the_job_goes_on() -> None:
    record, _, outcome = _tail()
    spare = record.task(outcome.send[0].piece)
    lifecycle.claim(record, spare.name, "fast", str(spare.celery_id), 1, (), ["slow", "fast"])
    failed = lifecycle.piece_failed(record, spare.name, "fast", record.generation, "disk full", ["slow", "fast"])
    assert failed.verdict == "stale" and not failed.send and spare.state == "cancelled"
    assert not record.finished and record.task("segment 1").state == "running"


def test_no_copy_when_it_would_not_finish_sooner() -> None:
    _, _, outcome = _tail(fast_speed=12.0)
    assert not outcome.send


def test_a_piece_rendering_slower_than_its_node_was_believed_to_is_copied_by_what_its_reports_show() -> None:
    # The speed book has `slow` as fast as `fast` (frames it costed light, or a node misjudged): no copy pays.
    _, _, believed = _tail(fast_speed=240.0, believed=240.0)
    assert not believed.send
    # Its reports show 2 frames a second: the copy on `fast` finishes long before it.
    record, _, reported = _tail(fast_speed=240.0, believed=240.0, reported=(20.0, 40.0))
    (sent,) = reported.send
    assert record.task(sent.piece).params == {"copy_of": "segment 1"}


def test_a_piece_copied_to_a_slow_node_gets_another_copy_when_a_fast_one_comes_free() -> None:
    speeds, nodes = {"slow": 10.0, "mid": 30.0, "fast": 300.0}, ["slow", "mid", "fast"]
    record = pulled_job(opened=3, frames=1200, target=300.0, start=1.0)
    claim(record, "segment 1", "slow", {}, nodes)
    record.task("segment 1").frames_done = 10
    assert record.schedule is not None
    last: dict[str, str] = {}
    while record.schedule.remaining:  # mid and fast take the rest, each keeping its last piece running
        piece = next(t for t in record.tasks if t.state == "pending" and t.params.get("open"))
        node = "fast" if len(last) % 2 else "mid"
        claim(record, piece.name, node, speeds, nodes)
        if node in last:
            lifecycle.piece_done(record, last[node], node, record.generation, output="/w/x", context=Sizing(speeds))
        last[node] = piece.name
    # mid comes free first: a copy there still beats slow by far.
    first = lifecycle.piece_done(record, last["mid"], "mid", record.generation, output="/w/m", context=Sizing(speeds))
    (to_mid,) = first.send
    assert to_mid.node == "mid" and record.task(to_mid.piece).params == {"copy_of": "segment 1"}
    claim(record, to_mid.piece, "mid", speeds, nodes)
    # fast comes free: a copy there beats both the original and mid's copy.
    then = lifecycle.piece_done(record, last["fast"], "fast", record.generation, output="/w/f", context=Sizing(speeds))
    (to_fast,) = then.send
    assert to_fast.node == "fast" and record.task(to_fast.piece).params == {"copy_of": "segment 1"}
    claim(record, to_fast.piece, "fast", speeds, nodes)
    won = lifecycle.piece_done(record, to_fast.piece, "fast", record.generation, output="/w/c", context=Sizing(speeds))
    assert record.task("segment 1").output == "/w/c" and [s.piece for s in won.send] == ["stitch"]
    assert lifecycle.progress(record, to_mid.piece, "mid", 5, 100).stop  # mid's copy stops at its next report


def test_a_job_at_its_share_of_the_nodes_leaves_a_free_node_to_a_rival_of_its_priority() -> None:
    from orchestrator.pull.sizing import share_of

    farm = ["n1", "n2", "n3", "n4"]
    # Two jobs, four nodes: this one renders on n1 and n2, the rival on none: n3 is left to the rival.
    assert share_of(["n1", "n2"], "n3", farm, {}, {"rival": 0}) == (True, ["n1", "n2"])
    # Under its share it takes the node, and sizes its pieces for its share: two nodes, not the farm.
    assert share_of(["n1"], "n3", farm, {}, {"rival": 0}) == (False, ["n1", "n3"])
    # A rival at its share leaves it nothing to yield; three jobs on four nodes: no job holds more than two.
    assert share_of(["n1", "n2"], "n4", farm, {"n3": "rival"}, {"rival": 1})[0] is True  # the rival has one of two
    assert share_of(["n1", "n2"], "n4", farm, {"n3": "rival"}, {"rival": 2})[0] is False
    assert share_of(["n1", "n2"], "n4", farm, {}, {"b": 0, "c": 1})[0] is True
    # Alone, it counts every node but those busy with other jobs (an edit, a job of another priority).
    assert share_of(["n1"], "n2", farm, {"n4": "edit"}, {}) == (False, ["n1", "n2", "n3"])


def test_the_node_over_an_even_share_goes_to_the_job_that_has_had_fewer_node_seconds() -> None:
    """Three nodes, two jobs: n1 comes free from this job, which also renders on n2; the rival renders on n3."""
    from orchestrator.pull.sizing import share_of

    farm = ["n1", "n2", "n3"]
    rival = {"n3": "rival"}
    assert share_of(["n2"], "n1", farm, rival, {"rival": 1}, {"rival": 40.0}, had=60.0) == (True, ["n2"])
    assert share_of(["n2"], "n1", farm, rival, {"rival": 1}, {"rival": 60.0}, had=40.0) == (False, ["n2", "n1"])
    assert share_of(["n2"], "n1", farm, rival, {"rival": 1}, {"rival": 50.0}, had=50.0)[0] is False  # even: kept
    # Never below its even share: alone on n1 (n2 idle), it keeps n1 however much it has had.
    assert share_of([], "n1", farm, rival, {"rival": 1}, {"rival": 0.0}, had=90.0)[0] is False
    # Three jobs on two nodes: a job holding none leaves the node to one that has had less.
    pair = ["n1", "n2"]
    assert share_of([], "n1", pair, {"n2": "b"}, {"b": 1, "c": 0}, {"b": 30.0, "c": 10.0}, had=20.0)[0] is True
    assert share_of([], "n1", pair, {"n2": "b"}, {"b": 1, "c": 0}, {"b": 30.0, "c": 25.0}, had=20.0)[0] is False


def test_node_seconds_count_each_piece_on_a_host_from_its_start_to_its_end_or_to_now() -> None:
    record = pulled_job(opened=2)
    first, second, stitch = record.task("segment 1"), record.task("segment 2"), record.task("stitch")
    first.state, first.started_at, first.finished_at = "done", 100.0, 130.0
    second.state, second.started_at = "running", 120.0
    stitch.state, stitch.started_at, stitch.finished_at = "done", 140.0, 150.0  # on a post worker: not counted
    assert record.node_seconds(until=125.0) == 25.0 + 5.0
    assert record.node_seconds(until=160.0) == 30.0 + 40.0
    assert record.public()["node_seconds"] > 0
    second.state, second.finished_at = "pending", None  # given back (its worker lost): its time is not kept
    assert record.node_seconds(until=160.0) == 30.0


def test_a_claim_over_its_share_goes_back_to_the_queue_and_takes_no_frames() -> None:
    record = pulled_job(opened=4)
    assert claim(record, "segment 1", "n30", MIXED, list(MIXED)).verdict == "run"
    message = record.task("segment 2").celery_id
    rival = Sizing(MIXED, rivals={"other": 0})
    out = lifecycle.claim(record, "segment 2", "n60", str(message), record.generation, (), list(MIXED), context=rival)
    assert out.verdict == "run"  # one node of four: under its share of two
    piece = record.task("segment 3")
    message = piece.celery_id
    before = record.schedule.next
    out = lifecycle.claim(record, "segment 3", "n120", str(message), record.generation, (), list(MIXED), context=rival)
    assert out.verdict == "move" and [s.piece for s in out.send] == ["segment 3"] and out.send[0].node is None
    assert piece.state == "pending" and piece.celery_id != message and piece.start is None
    assert record.schedule.next == before  # no frames taken


def test_two_jobs_submitted_together_send_their_audio_passes_to_two_nodes(tmp_path) -> None:
    """The slowest node takes the first audio pass off its queue at once and tells it renders it only at
    its next heartbeat: the second job's choice must not fall on it meanwhile."""
    from farm_helpers import farm_env

    from orchestrator.farm import Farm
    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.pull.dispatch import audio_node
    from orchestrator.settings import FarmSettings

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        server.start()
        try:
            farm = Farm(FarmSettings())
            known = {"n60": 60.0, "n30": 30.0, "n120": 120.0}
            chosen = [audio_node(farm, known) for _ in range(4)]
            assert chosen == ["n30", "n60", "n120", "n30"]  # all reserved: the slowest again
        finally:
            server.stop()


def test_an_audio_pass_sent_to_a_node_that_became_a_rivals_share_goes_back_to_its_job() -> None:
    """Two jobs submitted together each chose an audio node before either claimed one. This job renders on
    two of four nodes (its share); a rival holds one: the audio pass does not take a rival's node."""
    record = pulled_job(opened=2)
    audio = TaskRecord(name="audio", kind="audio", task="t.audio", start=1000, end=3879, params={"prefer": "n4"})
    record.tasks.insert(0, audio)
    lifecycle.submit(record)
    claim(record, "segment 1", "n1", EQUAL4, list(EQUAL4))
    claim(record, "segment 2", "n2", EQUAL4, list(EQUAL4))
    message = record.task("audio").celery_id
    rival = Sizing(held={"n3": "other"}, rivals={"other": 1})
    out = lifecycle.claim(record, "audio", "n4", str(message), record.generation, (), list(EQUAL4), context=rival)
    assert out.verdict == "move" and out.send == [lifecycle.Send("audio")]  # back to the job's queue, any node
    moved = record.task("audio")
    assert moved.state == "pending" and moved.celery_id != message and "prefer" not in moved.params
    even = Sizing({"n4": 60.0, "n4/audio": 720.0}, held={"n3": "other", "n4": "other"}, rivals={"other": 2})
    out = lifecycle.claim(
        record, "audio", "n4", str(moved.celery_id), record.generation, (), list(EQUAL4), context=even
    )  # the rival has its share: run here
    assert out.verdict == "run" and record.task("audio").node == "n4"
    # What the ETA counts the node at once its pass is done: its video speed, and the pass's length (2,880 frames)
    assert record.task("audio").details == {"sized_by": 60.0, "busy_for": 4.0}


EQUAL4 = {"n1": 60.0, "n2": 60.0, "n3": 60.0, "n4": 60.0}


def test_a_claim_knows_the_rivals_of_its_priority_and_how_unsteady_the_nodes_have_been(tmp_path) -> None:
    import json

    from farm_helpers import farm_env

    from orchestrator.farm import Farm
    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.pull.dispatch import context
    from orchestrator.settings import FarmSettings

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        server.start()
        try:
            farm = Farm(FarmSettings())
            entry = {"holding": ["n3"], "open": True, "tags": [], "node": None, "blocked": {}}
            farm.redis.hset("rf:jobs:holders:5", "other", json.dumps(entry))
            record = pulled_job(opened=2)
            record.tasks.insert(0, TaskRecord(name="audio", kind="audio", task="t.audio", start=1000, end=3879))
            sizing = context(farm, record, "audio", "n4", (), list(EQUAL4))
            assert sizing is not None and dict(sizing.held) == {"n3": "other"} and dict(sizing.rivals) == {"other": 1}
            assert context(farm, record, "stitch", "n4", (), list(EQUAL4)) is None  # nothing to decide there
            # An open piece is sized knowing how unsteady the nodes have been: the most unsteady of them.
            farm.speeds.record("n1", "k", 60.0, 2.0, spread=0.02)
            farm.speeds.record("n2", "k", 60.0, 2.0, spread=0.07)
            sizing = context(farm, record, "segment 1", "n4", (), list(EQUAL4))
            assert sizing is not None and sizing.spread == 0.07
        finally:
            server.stop()
