"""What a timeline's stretches cost to render, and the speeds learnt with them.

In memory: work and frames over cost steps, where a render's time went stretch by stretch,
pieces and ETAs weighed by cost. Against a real (embedded) Redis: the cost book and the speed
book, whose firm and provisional figures keep a heavy stretch from being taken for a slow node.
The fit of costs and speeds itself is proven in test_fit.py.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from farm_helpers import farm_env
from test_pulled import pool

from orchestrator.kinds.render import RenderJob, RenderSpec
from orchestrator.models import TaskRecord
from orchestrator.pull.costs import BIN, CostBook, StretchClock, frames_for, work
from orchestrator.pull.looks import Span, share_out, visible
from orchestrator.pull.sizing import frames_to_take
from orchestrator.pull.speeds import SpeedBook

HEAVY = ((1000, 1.0), (2440, 4.0))  # 2,880 frames from 1000: the second half costs 4 a frame


def test_work_and_frames_follow_the_steps() -> None:
    assert work((), 10, 19) == 10  # nothing known: a frame is a frame
    assert work(HEAVY, 2430, 2449) == 10 * 1 + 10 * 4
    assert work(((2000, 3.0),), 1990, 2009) == 10 * 1 + 10 * 3  # before the first step a frame costs 1
    assert frames_for(HEAVY, 2430, 3879, 50.0) == 20  # ten light frames, then ten heavy ones
    assert frames_for(HEAVY, 2430, 3879, 51.0) == 21  # a part of a frame is a frame
    assert frames_for(HEAVY, 3870, 3879, 1e9) == 10  # never past the end
    assert frames_for(HEAVY, 1000, 3879, 0.0) == 1  # at least one


def test_a_render_time_is_spread_over_the_stretches_it_went_through_after_its_first_frame() -> None:
    clock = StretchClock(first_frame=BIN - 10)
    clock.count(100.0, 5)  # the first frames: whatever came before was the start
    clock.count(101.0, 15)  # frames BIN-5 .. BIN+4: half in stretch 0, half in stretch 1
    clock.count(101.0, 20)  # no time passed: nothing to spread
    clock.count(103.0, 25)  # five frames of stretch 1 took two seconds
    assert clock.times == {0: [5, 0.5], 1: [10, 2.5]}


def test_a_heavy_section_gives_a_node_fewer_frames_and_leaves_no_heavy_crumb_behind() -> None:
    even, heavy = pool(frames=28800, target=4.0), pool(frames=28800, target=4.0)
    heavy.costs = ((1000, 1.0), (15400, 4.0))
    heavy.next = even.next = 15400  # far from the end: pieces of 18 s to 36 s of work (a 2 s start is <= 10 %)
    light, slow = (
        frames_to_take(even, "n", {"n": 60.0}, ["n", "m"]),
        frames_to_take(heavy, "n", {"n": 60.0}, ["n", "m"]),
    )
    assert 18 * 60 <= light <= 36 * 60 and 18 * 60 <= 4 * slow <= 36 * 60 and slow < light / 3
    # The fast node's share of a last round: all the light frames and some heavy ones. The few hundred heavy
    # frames it leaves are fewer than a piece's frames but the other nodes' share of the work: they are not
    # swallowed as a crumb.
    first = pool(target=4.0, start=2.0)
    first.costs = ((1000, 1.0), (2440, 4.0))
    speeds = {"n1": 30.0, "n2": 15.0, "n3": 114.0, "n4": 236.0}
    taken = frames_to_take(first, "n4", speeds, list(speeds), {"n2": 3.0})
    assert 2880 - taken < 1000 and work(first.costs, 1000 + taken, 3879) > 0.3 * work(first.costs, 1000, 3879)


def test_the_eta_weighs_the_frames_left_by_what_they_cost() -> None:
    spec = RenderSpec(project="p", timeline="t")
    plan = _plan()
    frames = pool(frames=2880)
    frames.next = 2440  # the light half taken, the heavy half left
    record = RenderJob(kind="render", spec=spec, plan=plan, state="running", started_at=0.0, frame_pool=frames,
                       tasks=[TaskRecord(name="a", kind="segment", state="running", start=2340, end=2439,
                                         frames_total=100, frames_done=50, first_frames=(0.0, 10),
                                         last_frames=(4.0, 50))])  # fmt: skip
    record.refresh_progress(now=4.0)
    even = record.eta_seconds
    # 10 frames/s, all alike; the frames no piece has taken cost the node a start (2 s) when its piece is done
    assert even == pytest.approx((50 + 1440) / 10 + 2.0, rel=0.01)
    frames.costs = HEAVY
    record.refresh_progress(now=4.0)
    assert record.eta_seconds == pytest.approx((50 + 4 * 1440) / 10 + 2.0, rel=0.01)


def test_the_eta_counts_the_node_on_the_audio_pass_from_when_its_pass_is_done() -> None:
    """The slowest node renders the audio pass while the others render frames; the frames no piece has taken are
    its last round too: left out, the ETA said the job ends later than it does (15 % at a fifth of the frames)."""
    spec = RenderSpec(project="p", timeline="t")
    frames = pool(frames=2880)
    frames.next = 2440
    segment = TaskRecord(name="a", kind="segment", state="running", start=2340, end=2439, frames_total=100,
                         frames_done=50, first_frames=(0.0, 10), last_frames=(4.0, 50))  # fmt: skip
    audio = TaskRecord(name="audio", kind="audio", state="running", start=1000, end=3879, started_at=0.0,
                       details={"sized_by": 10.0, "busy_for": 8.0})  # fmt: skip
    record = RenderJob(kind="render", spec=spec, plan=_plan(), state="running", started_at=0.0, frame_pool=frames,
                       tasks=[segment, audio])  # fmt: skip
    record.refresh_progress(now=4.0)
    # Both at 10 frames/s: `a` is free in 5 s, the audio node in 2 + 8 - 4 = 6 s; each then pays a 2 s start,
    # and between them they render the 1,440 frames left: 10 (T - 7) + 10 (T - 8) = 1440.
    assert record.eta_seconds == pytest.approx((1440 + 10 * (5 + 2) + 10 * (6 + 2)) / 20, rel=0.01)
    audio.details = {}  # claimed before this change: not counted, as before
    record.refresh_progress(now=4.0)
    assert record.eta_seconds == pytest.approx((50 + 1440) / 10 + 2.0, rel=0.01)


def test_a_piece_still_starting_is_counted_at_the_speed_it_was_sized_by() -> None:
    """The slowest node starts its piece late, after the audio pass: counted at the others' speed, the ETA
    would say the job ends when they do."""
    frames = pool(frames=200)
    frames.next = frames.end + 1  # every frame taken
    started = TaskRecord(
        name="a",
        kind="segment",
        state="running",
        start=1000,
        end=1099,
        frames_total=100,
        frames_done=50,
        first_frames=(0.0, 10),
        last_frames=(4.0, 50),
    )  # 10 frames/s
    late = TaskRecord(name="b", kind="segment", state="running", start=1100, end=1199, frames_total=100,
                      started_at=4.0, details={"sized_by": 2.5})  # fmt: skip
    record = RenderJob(kind="render", spec=RenderSpec(project="p", timeline="t"), plan=_plan(), state="running",
                       started_at=0.0, frame_pool=frames, tasks=[started, late])  # fmt: skip
    record.refresh_progress(now=4.0)
    assert record.eta_seconds == pytest.approx(2.0 + 100 / 2.5)  # its start, then 100 frames at 2.5 frames/s


def _plan():
    from test_units import _plan as plan

    return plan()


@pytest.fixture
def books(tmp_path: Path) -> Iterator[tuple[CostBook, SpeedBook]]:
    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.settings import FarmSettings
    from orchestrator.store import connect

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        try:
            client = connect(server.start())
            yield CostBook(client), SpeedBook(client)
        finally:
            server.stop()


def test_what_renders_measured_is_blended_fitted_and_read_back_as_few_steps(books) -> None:
    costs, _ = books
    assert costs.steps("T", 0, 10 * BIN - 1) == ()  # never rendered: every frame costs 1
    times = {s: [float(BIN), BIN / 60.0] for s in range(5)} | {s: [float(BIN), 4 * BIN / 60.0] for s in range(5, 10)}
    costs.observe("T", "n", times)
    fitted = costs.settle("T", {"n": 60.0})  # n's speed is firm: it sets the unit
    assert fitted.speeds == {"n": pytest.approx(60.0)} and fitted.firm == {"n"}
    near = functools.partial(pytest.approx, rel=0.02)  # (the tie across the step pulls on it a little)
    assert costs.steps("T", 0, 10 * BIN - 1) == ((0, near(1.0)), (5 * BIN, near(4.0)))
    assert costs.known("T", [4, 5, 11]) == {4: near(1.0), 5: near(4.0)}
    # Each node's figure of a stretch is blended with its last (one stretch here: nothing ties it to others).
    costs.observe("B", "n", {9: [float(BIN), 4 * BIN / 60.0]})
    costs.observe("B", "n", {9: [float(BIN), 2 * BIN / 60.0]})  # measured at 2 now
    costs.settle("B", {"n": 60.0})
    assert costs.known("B", [9]) == {9: near(3.0)}
    costs.observe("B", "n", {9: [BIN / 2, BIN / 60.0]})  # half a stretch seen counts half as much
    costs.settle("B", {"n": 60.0})
    assert costs.known("B", [9]) == {9: near(3.0 * 0.75 + 2.0 * 0.25)}
    # A stretch never rendered costs what its nearest rendered neighbour does.
    assert costs.steps("T", 8 * BIN, 14 * BIN - 1) == ((8 * BIN, near(4.0)),)
    assert costs.steps("T", 3 * BIN, 3 * BIN + 9) == ((3 * BIN, near(1.0)),)
    # Within 40 % of the timeline's median a cost is noise (a busy host, a late poll) and is kept as the median;
    # beyond it counts.
    costs.observe("U", "n", {0: [float(BIN), 1.3 * BIN / 60], 1: [float(BIN), BIN / 60], 2: [float(BIN), BIN / 120]})
    costs.settle("U", {"n": 60.0})
    evened = costs.known("U", [0, 1, 2])
    assert evened[0] == evened[1] == near(1.1, rel=0.05) and evened[2] == near(evened[0] / 2, rel=0.1), evened


def test_a_provisional_speed_gives_way_to_the_next_firm_one_and_never_overrides_a_firm_one(books) -> None:
    _, speeds = books
    speeds.settle("k", {"n2": 15.0}, firm=[])  # never recorded: its piece records its own figures
    assert speeds.speeds(["n2"], "k") == {}
    speeds.record("n2", "k", 15.0, 2.0, firm=False)  # its first piece, in a heavy stretch nobody had measured
    assert speeds.speeds(["n2"], "k") == {"n2": 15.0} and speeds.firm_speed("n2", "k") is None
    assert speeds.firm_speeds("k") == {}
    speeds.settle("k", {"n2": 55.0}, firm=[])  # a later fit: still provisional
    assert speeds.speeds(["n2"], "k") == {"n2": 55.0} and speeds.firm_speed("n2", "k") is None
    speeds.record("n2", "k", 60.0, 2.0)  # measured where costs were known: replaces, not blended
    assert speeds.firm_speeds("k") == {"n2": 60.0}
    speeds.record("n2", "k", 15.0, 4.0, firm=False)  # a provisional figure after a firm one changes no speed
    speeds.settle("k", {"n2": 10.0}, firm=[])
    assert speeds.firm_speed("n2", "k") == 60.0 and speeds.start_seconds("k") == 3.0
    speeds.settle("k", {"n2": 58.0}, firm=["n2"])  # a firm fit replaces it, and keeps the start cost
    assert speeds.firm_speed("n2", "k") == 58.0 and speeds.start_seconds("k") == 3.0
    speeds.record("n2", "k", 42.0, 3.0)  # firm after firm: blended
    assert speeds.firm_speed("n2", "k") == 50.0


def test_how_unsteady_a_node_was_is_blended_like_its_speed_and_kept_through_a_fit(books) -> None:
    _, speeds = books
    speeds.record("n1", "k", 60.0, 2.0)  # a piece that measured no spread (its render went through no stretch)
    assert speeds.spreads(["n1", "n2"], "k") == {}
    speeds.record("n1", "k", 60.0, 2.0, spread=0.08)
    speeds.record("n1", "k", 60.0, 2.0, spread=0.02)  # blended, as the speed is
    speeds.record("n1", "k", 60.0, 2.0)  # none measured: the last figure stands
    speeds.settle("k", {"n1": 58.0}, firm=["n1"])  # a fit moves the speed, not the spread
    assert speeds.spreads(["n1", "n2"], "k") == {"n1": pytest.approx(0.05)}
    assert speeds.firm_speed("n1", "k") == 58.0 and speeds.start_seconds("k") == 2.0


def test_a_node_busy_with_another_job_joins_the_last_round_late_and_the_others_take_more() -> None:
    from test_pulled import pulled_job

    from orchestrator import lifecycle
    from orchestrator.pull.sizing import Sizing

    speeds = {"a": 60.0, "b": 60.0}
    sizes = []
    for elsewhere in ({}, {"b": 30.0}):  # b still renders 30 s for another job
        record = pulled_job(opened=2, frames=1440)
        piece = record.task("segment 1")
        lifecycle.claim(record, "segment 1", "a", str(piece.celery_id), record.generation, (), ["a", "b"],
                        context=Sizing(speeds, elsewhere=elsewhere))  # fmt: skip
        sizes.append(record.task("segment 1").frames_total)
    assert sizes[0] == 720 and sizes[1] > 720, sizes  # free: half each; b busy: a takes more than half


def _item(media: str, start: int, end: int, luts: tuple[str, ...] = ()) -> dict[str, object]:
    return {"media": media, "start": start, "end": end, "in": 0, "nodes": max(1, len(luts)), "luts": list(luts)}


def _content(fingerprint: str, *clips: tuple[str, int], luts: dict[str, tuple[str, ...]] | None = None) -> dict:
    """A one-track timeline of `clips` ((media, frames), ...) back to back from frame 0, with a title over the
    first 24 frames on track 2 (what shows there is the title's look)."""
    items, at = [], 0
    for media, frames in clips:
        items.append(_item(media, at, at + frames, (luts or {}).get(media, ())))
        at += frames
    return {"name": fingerprint, "fingerprint": fingerprint, "tracks": [items, [_item("T", 0, 24)]]}


def _observe(costs: CostBook, key: str, content: dict, cost_of: dict[str, float], speed: float = 60.0) -> None:
    """What one node at `speed` would measure rendering all of `content`, each look costing `cost_of[media]`."""
    spans = visible(content["tracks"])
    end = spans[-1].end
    times = {}
    for stretch in range(0, math.ceil(end / BIN)):
        seconds = sum(frames * cost_of[s.media] / speed
                      for s in spans if (frames := min(end, (stretch + 1) * BIN, s.end) - max(stretch * BIN, s.start)) > 0)  # fmt: skip
        times[stretch] = [float(min(BIN, end - stretch * BIN)), seconds]
    costs.observe(key, "n", times, content["fingerprint"])


def test_what_shows_is_the_topmost_item_and_gaps_are_a_look_of_their_own() -> None:
    tracks = [[_item("A", 0, 100), _item("B", 150, 200)], [_item("T", 50, 60, ("lut",))]]
    assert [(s.start, s.end, s.media) for s in visible(tracks)] == [
        (0, 50, "A"), (50, 60, "T"), (60, 100, "A"), (100, 150, "gap"), (150, 200, "B")
    ]  # fmt: skip
    assert visible(tracks)[1].look == "T|1|lut" and visible(tracks)[0].look == "A|1|"
    assert visible([[_item("A", 0, 10), _item("A", 10, 20)]]) == [Span(0, 20, "A|1|", "A")]  # one look, one span


def test_a_cost_learnt_on_one_timeline_costs_another_made_of_the_same_clips(books) -> None:
    costs, _ = books
    cost_of = {"A": 1.0, "H": 4.0, "B": 1.0, "T": 1.0, "N": 1.0}
    main = _content("main-1", ("A", 240), ("H", 240), ("B", 480))
    _observe(costs, "Demo/Main|k", main, cost_of)
    costs.settle("Demo/Main|k", {"n": 60.0}, main)
    # A recut: other order, other lengths, a clip graded anew (H with a LUT: its look is new, its media is known),
    # and a clip no timeline showed yet.
    recut = _content("recut-1", ("B", 192), ("H", 144), ("A", 192), ("N", 192), luts={"H": ("film.cube",)})
    steps = costs.steps("Demo/Main recut|k", 0, 719, recut)  # never rendered: costed by its looks
    near = functools.partial(pytest.approx, rel=0.15)
    assert work(steps, 192, 335) == near(144 * 4.0)  # H, wherever it sits: its clip's cost (its look is new)
    assert work(steps, 24, 191) == near(168 * 1.0) and work(steps, 336, 527) == near(192 * 1.0)
    assert work(steps, 528, 719) == near(192 * 1.0)  # N is unknown: the median of what is known here
    assert costs.steps("Demo/Main recut|other-key", 0, 719, recut) == ()  # another codec or size: nothing known
    assert costs.steps("Demo/Main recut|k", 0, 719) == ()  # no content published: nothing to go by
    # An edit that keeps the name: the costs learnt at the old fingerprint are passed over, the looks used.
    edited = _content("main-2", ("H", 240), ("A", 240), ("B", 480))
    assert work(costs.steps("Demo/Main|k", 0, 959, main), 0, 239) == near(240 * 1.0)  # as rendered
    assert work(costs.steps("Demo/Main|k", 0, 959, edited), 0, 239) == near(240 * 4.0)  # as it is now
    _observe(costs, "Demo/Main|k", edited, {**cost_of, "A": 3.0})  # what the edited one measures replaces the rest
    costs.settle("Demo/Main|k", {"n": 60.0}, edited)
    now = costs.steps("Demo/Main|k", 0, 959, edited)
    assert work(now, 0, 239) == near(240 * 4.0) and work(now, 240, 479) == near(240 * 3.0)  # nothing of before


def test_what_is_not_rendered_yet_of_a_timeline_costs_what_its_looks_do_not_what_was_rendered_nearest(books) -> None:
    costs, _ = books
    main = _content("main-1", ("A", 240), ("H", 240), ("B", 480))
    _observe(costs, "Demo/Main|k", main, {"A": 1.0, "H": 4.0, "B": 1.0, "T": 1.0})
    costs.settle("Demo/Main|k", {"n": 60.0}, main)
    recut = _content("recut-1", ("B", 480), ("A", 240), ("H", 240))
    # The recut's first piece rendered its light start (B); H, at its end, is not rendered yet.
    costs.observe("Demo/Main recut|k", "n", {stretch: [float(BIN), BIN / 60.0] for stretch in range(10)}, "recut-1")
    costs.settle("Demo/Main recut|k", {"n": 60.0}, recut)
    steps = costs.steps("Demo/Main recut|k", 0, 959, recut)
    near = functools.partial(pytest.approx, rel=0.15)
    assert work(steps, 720, 959) == near(240 * 4.0) and work(steps, 0, 719) == near(720 * 1.0)


def test_the_fit_sets_two_nodes_against_each_other_through_a_clip_both_rendered_where_their_pieces_never_met(
    books,
) -> None:
    costs, _ = books
    content = _content("c-1", ("A", 240), ("H", 240), ("B", 240), ("A", 240), ("H", 240), ("B", 240))
    cost_of, speed_of = {"A": 1.0, "H": 4.0, "B": 1.0}, {"n1": 60.0, "n2": 120.0}
    spans = visible(content["tracks"][:1])
    # n1 rendered A H and the last B, n2 the B A H between: each piece ends where the heavy clip does.
    for node, stretches in (("n1", [*range(0, 10), *range(25, 30)]), ("n2", range(10, 25))):
        times = {st: [float(BIN), sum(BIN * cost_of[s.media] for s in spans if s.start <= st * BIN < s.end)
                      / speed_of[node]] for st in stretches}  # fmt: skip
        costs.observe("Demo/C|k", node, times, "c-1")
    blind = costs.settle("Demo/C|k", {"n1": 60.0})  # no content: the heavy clip at n2's end reads as a slow n2
    assert blind.speeds["n2"] < 90.0
    fitted = costs.settle("Demo/C|k", {"n1": 60.0}, content)
    assert fitted.speeds == {"n1": pytest.approx(60.0, rel=0.05), "n2": pytest.approx(120.0, rel=0.05)}
    assert fitted.firm == {"n1", "n2"}


def test_looks_are_shared_out_of_stretches_that_mix_them() -> None:
    # Two looks alternating every 36 frames: no stretch of 48 shows one alone, yet both are told apart.
    spans = [Span(at, at + 36, "L" if at % 72 else "H", "m") for at in range(0, 48 * 36, 36)]
    truth = {"L": 1.0, "H": 3.0}
    measured = {}
    for stretch in range(36):
        parts = [(s, min((stretch + 1) * BIN, s.end) - max(stretch * BIN, s.start)) for s in spans]
        measured[stretch] = sum(f * truth[s.look] for s, f in parts if f > 0) / BIN
    learnt = share_out(spans, measured, BIN)
    assert learnt["L"][0] == pytest.approx(1.0, rel=0.05) and learnt["H"][0] == pytest.approx(3.0, rel=0.05)
