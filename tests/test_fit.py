"""Speeds and costs fitted together (`orchestrator.pull.fit`), in memory: what renders of a timeline measured,
stretch by stretch, made up as a farm measures it, with the errors a farm makes."""

from __future__ import annotations

import random

import pytest

from orchestrator.pull.costs import BIN
from orchestrator.pull.fit import FIRM_SECONDS, Fit, Observation, fit, spread
from orchestrator.pull.sizing import UNSTEADY

SPEEDS = {"n1": 30.0, "n2": 60.0, "n3": 120.0, "n4": 240.0}
# A pulled render as the farm hands it out: each node's first piece small, the rest sized by speed; pieces
# meet inside stretches (2,880 frames, 60 stretches).
PIECES = [("n1", 0, 179), ("n2", 180, 359), ("n3", 360, 539), ("n4", 540, 719), ("n4", 720, 1500),
          ("n3", 1501, 1900), ("n2", 1901, 2300), ("n1", 2301, 2879)]  # fmt: skip


def measured(cost, pieces=PIECES, speeds=SPEEDS, edges: tuple[float, float] = (1.0, 1.0)) -> list[Observation]:
    """What `pieces` measured of each stretch, frames of stretch s costing `cost(s)`; a stretch seen in part
    at a piece's start or end measured `edges` times what it took, as a late status poll does."""
    observations = []
    for node, first, last in pieces:
        for stretch in range(first // BIN, last // BIN + 1):
            frames = min(last, (stretch + 1) * BIN - 1) - max(first, stretch * BIN) + 1
            slip = 1.0 if frames == BIN else edges[0] if stretch == first // BIN else edges[1]
            per_frame = cost(stretch) / speeds[node] * slip
            observations.append(Observation(node, stretch, per_frame, per_frame * frames))
    return observations


def ratios(fitted: Fit) -> dict[str, float]:
    return {node: fitted.speeds[node] / fitted.speeds["n2"] for node in fitted.speeds}


def test_nodes_are_set_against_each_other_over_even_stretches_not_only_where_their_pieces_met() -> None:
    # Where two pieces meet, a part of a stretch on each node, measured 50 % too long or 30 % too short.
    fitted = fit(measured(lambda stretch: 1.0, edges=(1.5, 0.7)), {})
    assert ratios(fitted) == pytest.approx({n: s / 60.0 for n, s in SPEEDS.items()}, rel=0.05)
    assert max(fitted.costs.values()) < 1.4 * min(fitted.costs.values())  # an even timeline stays even


def test_a_heavy_section_is_a_sharp_step_in_cost_not_a_slow_node() -> None:
    fitted = fit(measured(lambda stretch: 1.0 if stretch < 30 else 4.0), {"n2": 60.0})
    assert fitted.speeds == pytest.approx(SPEEDS, rel=0.02)
    assert all(cost == pytest.approx(1.0, rel=0.02) for s, cost in fitted.costs.items() if s < 30)
    assert all(cost == pytest.approx(4.0, rel=0.02) for s, cost in fitted.costs.items() if s >= 30)
    assert fitted.firm == set(SPEEDS)


def test_the_unit_is_the_anchors_speeds_else_the_lightest_quarter_of_the_timeline() -> None:
    heavy = lambda stretch: 1.0 if stretch < 20 else 3.0  # noqa: E731  (two thirds heavy)
    alone = fit(measured(heavy), {})
    assert alone.costs[0] == pytest.approx(1.0, rel=0.02) and alone.costs[59] == pytest.approx(3.0, rel=0.02)
    assert alone.speeds == pytest.approx(SPEEDS, rel=0.02)
    # n2 and n3 known at twice what this timeline says, on average: all is in that unit
    anchored = fit(measured(heavy), {"n2": 100.0, "n3": 288.0})
    assert anchored.speeds == pytest.approx({n: 2 * s for n, s in SPEEDS.items()}, rel=0.02)
    assert anchored.costs[0] == pytest.approx(2.0, rel=0.02)


def test_a_node_whose_pieces_met_no_other_is_provisional_and_its_stretches_cost_like_their_neighbours() -> None:
    pieces = [("n2", 0, 10 * BIN - 1), ("n4", 20 * BIN, 30 * BIN - 1)]  # ten stretches apart
    fitted = fit(measured(lambda stretch: 1.0, pieces), {"n2": 60.0})
    assert fitted.speeds == pytest.approx({"n2": 60.0, "n4": 240.0}, rel=0.02)
    assert fitted.firm == {"n2"}
    # With a firm speed of its own, n4's stretches are set by it, not by the neighbours' (their costs differ).
    fitted = fit(measured(lambda stretch: 1.0 if stretch < 15 else 2.0, pieces), {"n2": 60.0, "n4": 240.0})
    assert fitted.costs[25] == pytest.approx(2.0, rel=0.02) and fitted.firm == {"n2", "n4"}


def test_a_node_measured_briefly_is_provisional_and_with_no_anchor_the_longest_measured_group_sets_the_unit() -> None:
    brief = 240.0 * FIRM_SECONDS / 2  # frames n4 renders in half the time that makes a speed firm
    pieces = [("n2", 0, 10 * BIN - 1), ("n4", 10 * BIN - 24, 10 * BIN - 24 + int(brief)), ("n1", 40 * BIN, 42 * BIN)]
    fitted = fit(measured(lambda stretch: 1.0, pieces), {})
    assert fitted.firm == {"n2"}  # n4 met n2 but was measured too briefly; n1 met nobody
    assert fitted.speeds == pytest.approx({"n1": 30.0, "n2": 60.0, "n4": 240.0}, rel=0.02)


def test_a_clip_seen_on_two_nodes_sets_them_against_each_other_where_their_pieces_never_met() -> None:
    # Six clips of five stretches each, over and over; two of them heavy. Each piece ends where a clip
    # does, light beside heavy: no stretch was rendered by two nodes, and no even run spans two pieces.
    look = lambda stretch: f"c{(stretch // 5) % 6}"  # noqa: E731
    cost = lambda stretch: 4.0 if look(stretch) in ("c1", "c4") else 1.0  # noqa: E731
    pieces = [("n1", 0, 10 * BIN - 1), ("n2", 10 * BIN, 25 * BIN - 1), ("n3", 25 * BIN, 40 * BIN - 1),
              ("n4", 40 * BIN, 60 * BIN - 1)]  # fmt: skip
    blind = fit(measured(cost, pieces), {})
    assert blind.speeds["n4"] > 2 * SPEEDS["n4"]  # without the looks, a heavy clip reads as a slow node
    fitted = fit(measured(cost, pieces), {}, {stretch: look(stretch) for stretch in range(60)})
    assert ratios(fitted) == pytest.approx({n: s / 60.0 for n, s in SPEEDS.items()}, rel=0.05)
    assert all(fitted.costs[s] == pytest.approx(cost(s) * fitted.costs[0], rel=0.05) for s in range(60))
    assert fitted.firm == set(SPEEDS)  # one group, through the clips


def test_how_unsteady_a_render_was_is_how_far_its_stretches_stray_from_the_fit() -> None:
    """Nodes whose speed wanders by up to a fifth from stretch to stretch read at the threshold that keeps a
    reserve (`sizing.UNSTEADY`) or over; by a twentieth (a late status poll, a busy moment), under it;
    a heavy section the fit explains is no unsteadiness."""
    heavy = lambda stretch: 1.0 if stretch < 30 else 4.0  # noqa: E731
    found = {}
    for wander in (0.0, 0.05, 0.2):
        draw = random.Random(7)
        factor = {(node, stretch): 1 + wander * draw.uniform(-1, 1) for node in SPEEDS for stretch in range(60)}
        seen = [Observation(o.node, o.stretch, o.seconds_per_frame * factor[o.node, o.stretch],
                            o.weight * factor[o.node, o.stretch]) for o in measured(heavy)]  # fmt: skip
        fitted = fit(seen, {"n2": 60.0})
        for node in SPEEDS:  # each node's render as the farm reads it: (frames, seconds) by stretch
            times = {o.stretch: (o.weight / o.seconds_per_frame, o.weight) for o in seen if o.node == node}
            found[wander, node] = spread(fitted, node, times, BIN)
    assert all(found[0.0, node] == pytest.approx(0.0, abs=0.005) for node in SPEEDS), found
    assert all(found[0.05, node] < UNSTEADY for node in SPEEDS), found
    assert all(found[0.2, node] >= UNSTEADY for node in SPEEDS), found
    assert spread(fitted, "n9", {0: (48.0, 1.0)}, BIN) is None  # a node the fit never saw


def test_nothing_measured_fits_nothing() -> None:
    assert fit([Observation("n", 0, 0.0, 0.0)], {"n": 60.0}) == Fit({}, {}, frozenset())
