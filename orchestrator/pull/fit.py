"""Node speeds and timeline costs fitted together from everything renders of a timeline measured.

A render tells how long each stretch of timeline it went through took per frame on its node:
the stretch's cost over the node's speed (`orchestrator.pull.costs`). Neither is measured alone, so
all the measurements of a timeline are fitted at once, by least squares on logarithms
weighted by the seconds each was measured over:

    log(seconds per frame) = log(cost of the stretch) - log(speed of the node)

Pieces meet inside stretches, so two nodes that rendered parts of one stretch tell the ratio
of their speeds, and a node tells the ratio of the costs of the stretches it rendered: one
node's light stretches and another's heavy ones are set against each other through the
stretches they share. Neighbouring stretches are tied (`TIE`), since sections of a timeline
run long: over a run of even stretches all the nodes that rendered it are set against each
other, and a node whose pieces met no other node's gets costs like its neighbours', not
none. Where the content is known, the stretches showing one look (a clip and its visible grade,
`orchestrator.pull.looks`) are tied to a cost of that look wherever they sit: a clip seen on two
nodes in two places sets those nodes against each other though their pieces never met, and a
heavy clip where one node's piece ends is not read as that node being slow.

Note: only ratios are measured. The unit is set by the nodes whose speeds are firm already
(anchors): each group of nodes tied by shared stretches or looks keeps its anchors' speeds
on average (a geometric mean). With no anchor at all, the lightest quarter of the timeline
costs 1. A node is firm when its group has an anchor (or, with none anywhere, is the group measured the
longest) and it was measured for `FIRM_SECONDS` at least: over a second or so, a late status
poll on a busy host is a large error, and a firm speed anchors every later fit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

FIRM_SECONDS = 2.0  # a node measured for less than this (in all) is provisional
TIE = 3.0  # weight of the tie between even neighbouring stretches, over the lighter one's measurements
LOOK_TIE = 3.0  # weight of the tie between a stretch and its look's cost, over the stretch's measurements
STEP = 0.1  # a log cost difference this large halves a tie's weight: steps are free, noise is drawn flat
ROUNDS = 5  # rounds of reweighting the ties
RIDGE = 1e-9  # keeps the fit solvable along the common scale no measurement tells


@dataclass(frozen=True)
class Observation:
    """What renders on `node` measured of one `stretch`: seconds per frame, and how much that counts (the
    seconds it was measured over)."""

    node: str
    stretch: int
    seconds_per_frame: float
    weight: float


@dataclass(frozen=True)
class Fit:
    """Each stretch's cost and each node's speed (work per second), and which speeds are firm."""

    costs: dict[int, float]
    speeds: dict[str, float]
    firm: frozenset[str]


def fit(
    observations: Iterable[Observation], anchors: Mapping[str, float], looks: Mapping[int, str] | None = None
) -> Fit:
    """The costs and speeds that explain `observations` best, in the unit of `anchors` (firm speeds by node);
    `looks` names the look most of a stretch shows (by stretch number), where the content is known."""
    seen = [o for o in observations if o.weight > 0 and o.seconds_per_frame > 0]
    if not seen:
        return Fit({}, {}, frozenset())
    stretches = sorted({o.stretch for o in seen})
    nodes = sorted({o.node for o in seen})
    at = {stretch: i for i, stretch in enumerate(stretches)}
    of = {node: j for j, node in enumerate(nodes)}
    shown = {at[stretch]: look for stretch, look in (looks or {}).items() if stretch in at}
    x, y = _solve(seen, stretches, at, of, shown)
    groups = _groups(seen, at, len(stretches), of, shown)
    group_of = {node: groups[len(stretches) + j] for node, j in of.items()}
    measured = {node: sum(o.weight for o in seen if o.node == node) for node in nodes}
    anchored = {node: math.log(anchors[node]) - y[of[node]] for node in nodes if anchors.get(node, 0) > 0}
    # The unit: each group's anchors' speeds, else the lightest quarter of the timeline costs 1.
    overall = float(np.mean(list(anchored.values()))) if anchored else -float(np.quantile(x, 0.25))
    shift = {}
    for group in set(groups):
        mine = [value for node, value in anchored.items() if group_of[node] == group]
        shift[group] = float(np.mean(mine)) if mine else overall
    if anchored:
        trusted = {group_of[node] for node in anchored}
    else:  # the group measured the longest sets the unit
        weight: dict[int, float] = {}
        for node in nodes:
            weight[group_of[node]] = weight.get(group_of[node], 0.0) + measured[node]
        trusted = {max(weight, key=lambda group: weight[group])}
    return Fit(
        costs={stretch: math.exp(x[i] + shift[groups[i]]) for stretch, i in at.items()},
        speeds={node: math.exp(y[j] + shift[group_of[node]]) for node, j in of.items()},
        firm=frozenset(node for node in nodes if group_of[node] in trusted and measured[node] >= FIRM_SECONDS),
    )


def spread(fitted: Fit, node: str, times: Mapping[int, Sequence[float]], bin_frames: int) -> float | None:
    """How unsteady one render on `node` was against `fitted`: the root mean square of the log of each stretch's
    time over what the fit says it costs there (`times`: stretch of `bin_frames` -> (frames, seconds), as
    `StretchClock.times` holds them),
    weighted by the seconds and less for a stretch seen in part (where a late status poll weighs most); None
    when it went through no stretch the fit knows.

    Note: the fit has taken this render's figures in already, so it has explained part of the
    render's own unsteadiness away (a stretch only one node rendered may take a node's jitter as
    its cost): the figure reads about two thirds of the true spread of a node's speed. It is
    a measure to compare against a threshold, not the spread itself.
    """
    speed = fitted.speeds.get(node, 0.0)
    squares = weights = 0.0
    for stretch, (frames, seconds) in times.items():
        cost = fitted.costs.get(stretch, 0.0)
        if frames <= 0 or seconds <= 0 or cost <= 0 or speed <= 0:
            continue
        weight = seconds * min(1.0, frames / bin_frames)
        squares += weight * math.log(seconds / frames * speed / cost) ** 2
        weights += weight
    return math.sqrt(squares / weights) if weights else None


def _solve(
    seen: list[Observation], stretches: list[int], at: dict[int, int], of: dict[str, int], shown: dict[int, str]
) -> tuple[np.ndarray, np.ndarray]:
    """Log costs and log speeds by weighted least squares, in no particular unit.

    The ties between neighbouring stretches are strong where their costs differ by little and
    loose across a step (a Cauchy penalty, by reweighting the ties over a few rounds, the
    first with every pair tied as if even): a run of even stretches is drawn flat, so the
    nodes that rendered it are set against each other over all of it, not only where their
    pieces met, while a real step between a light and a heavy section stands out and stays
    sharp. Starting loose instead, the few frames where two pieces met decide the nodes'
    ratio, and an error there reads as a step that is never drawn flat again.

    A look's ties are reweighted the same way: a stretch whose cost the look does not explain
    (a transition, an effect the API does not show) comes loose from it.

    The normal equations are [[A, B], [B^T, D]] [x, y] = [a, b], with A tridiagonal over the
    stretches (their measurements and the ties between neighbours and to their looks) and D
    diagonal over the nodes and looks (y: each node's log speed, negated, then each look's log
    cost). Eliminating x leaves a small dense system in y, and x follows from y, in time
    linear in the stretches.
    """
    size, count = len(stretches), len(of)
    kinds = sorted(set(shown.values()))
    column = {look: count + k for k, look in enumerate(kinds)}
    total = sum(o.weight for o in seen)
    ridge = RIDGE * total
    measured, a = np.full(size, ridge), np.zeros(size)
    coupling, b = np.zeros((size, count)), np.zeros(count)
    for o in seen:
        i, j, w, logged = at[o.stretch], of[o.node], o.weight, math.log(o.seconds_per_frame)
        measured[i] += w
        a[i] += w * logged
        coupling[i, j] -= w
        b[j] -= w * logged
    # Each tie weighs as much as the lighter of its two stretches' measurements (a fast node's
    # stretches are measured over fractions of a second) and less across stretches never rendered.
    local = np.minimum(measured[:-1], measured[1:]) / np.diff(np.array(stretches, dtype=float))
    tie = TIE * local  # the first round: every pair as if even
    tied = np.array(sorted(shown), dtype=int)
    looked = np.array([column[shown[i]] for i in tied], dtype=int)
    held = LOOK_TIE * measured[tied]  # the first round: every stretch as its look
    b = np.concatenate([b, np.zeros(len(kinds))])
    for _ in range(ROUNDS):
        diagonal = measured.copy()
        diagonal[:-1] += tie
        diagonal[1:] += tie
        diagonal[tied] += held
        full = np.zeros((size, count + len(kinds)))
        full[:, :count] = coupling
        full[tied, looked] -= held
        d = ridge - full.sum(axis=0)
        solved = _tridiagonal(diagonal, -tie, np.column_stack([full, a]))
        schur = np.diag(d) - full.T @ solved[:, :-1]
        y = np.linalg.solve(schur, b - full.T @ solved[:, -1])
        x = solved[:, -1] - solved[:, :-1] @ y
        tie = TIE * local * STEP**2 / (STEP**2 + np.diff(x) ** 2)
        held = LOOK_TIE * measured[tied] * STEP**2 / (STEP**2 + (x[tied] - y[looked]) ** 2)
    return x, y[:count]


def _tridiagonal(diagonal: np.ndarray, off: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve T z = rhs for the symmetric tridiagonal T (`diagonal`, `off` above and below it), every column."""
    size = len(diagonal)
    upper, z = np.zeros(size), rhs.astype(float).copy()
    pivot = diagonal[0]
    z[0] /= pivot
    for i in range(1, size):
        upper[i - 1] = off[i - 1] / pivot
        pivot = diagonal[i] - off[i - 1] * upper[i - 1]
        z[i] = (z[i] - off[i - 1] * z[i - 1]) / pivot
    for i in range(size - 2, -1, -1):
        z[i] -= upper[i] * z[i + 1]
    return z


def _groups(seen: list[Observation], at: dict[int, int], size: int, of: dict[str, int],
            shown: dict[int, str]) -> list[int]:  # fmt: skip
    """Which group each stretch (0..size-1), then each node (size + its number), is in: tied by measurements
    and by the looks the stretches show."""
    kinds = {look: size + len(of) + k for k, look in enumerate(sorted(set(shown.values())))}
    parent = list(range(size + len(of) + len(kinds)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for o in seen:
        parent[root(at[o.stretch])] = root(size + of[o.node])
    for i, look in shown.items():
        parent[root(i)] = root(kinds[look])
    return [root(i) for i in range(size + len(of))]
