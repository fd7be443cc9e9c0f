"""How many frames a free node takes from a pulled render: sized by its speed, shrinking toward the end.

Far from the end a node takes what it renders in about the target piece duration: between
it and twice it, so that the rounds left to the end are of even length. Near it (when the
frames no piece has taken would keep the farm busy for less than about twice that, each
node joining when the piece it renders now is done), each node takes what it renders by the
time the farm as a whole is done, so that all finish together, in pieces that get smaller
as the end nears (weighted factoring). No piece is so short that starting it (seconds on
Resolve) is a large part of it; none leaves behind a crumb too small to be worth a start of
its own; none is expected to take more than half the render time limit. A node whose speed
is not known yet takes a first piece sized in time (a few starts' worth at the slowest speed
known), and is measured. On a farm whose nodes' speeds wander (their recorded spread), a first
job that would be one round (each node one piece) keeps a reserve: the first pieces are sized to
share the work less a part of it, and that part is a last round, which the nodes that prove faster
than they were thought take. Speeds are work per second and
frames are weighed by what they cost (`orchestrator.pull.costs`): a node takes fewer frames of a
heavy section than of a light one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.models import JobRecord, frame_count, piece_speed
from orchestrator.pull.costs import Steps
from orchestrator.pull.finish import finish_time
from orchestrator.pull.pool import FramePool

START_SHARE = 0.1  # at most this part of a piece's time may go to starting it
AUDIO_KEY = "/audio"  # speeds of the audio pass: `<node>/audio` among the speeds, `<key>/audio` in the book
UNKNOWN_SHARE = 4  # a node of unknown speed takes at most 1/(4 x nodes) of what is left
FIRST_STARTS = 4  # ... and what the slowest node known renders in this many starts' time
LAST_ROUND = 2.0  # within this many target durations of the end, pieces are shares of what is left
LATE_JOIN = 2.0  # a busy node joins the last round only for at least this many starts' time of frames
UNSTEADY = 0.05  # a farm whose nodes' recorded spread reaches this (`fit.spread`) keeps a reserve ...
RESERVE = 0.3  # ... of this share of a one-round job's work out of its first round


@dataclass(frozen=True)
class Sizing:
    """What a pulled piece is sized (or a copy decided) by: the nodes' speeds, the costs along the timeline,
    and who else works on the farm now.

    Note: speeds of the audio pass are among `speeds` as `<node>/audio`. `held` and `rivals`
    are read from the records of the other pulled renders of the job's priority before the
    claim: a node that took a piece of one of them since is seen at the next claim.
    """

    speeds: Mapping[str, float] = field(default_factory=dict)
    costs: Steps | None = None  # what the job's frames cost, as remembered for its timeline (None: not looked up)
    held: Mapping[str, str] = field(default_factory=dict)  # node -> the rival job it renders for now
    rivals: Mapping[str, int] = field(default_factory=dict)  # other pulled jobs of this priority -> nodes they hold
    received: Mapping[str, float] = field(default_factory=dict)  # those jobs -> node-seconds they have had
    elsewhere: Mapping[str, float] = field(default_factory=dict)  # node -> seconds it still renders for another job
    spread: float = 0.0  # how unsteady the nodes have been lately, the most unsteady of them (`fit.spread`)


def frames_to_take(
    pool: FramePool,
    node: str,
    speeds: Mapping[str, float],
    nodes: Sequence[str],
    busy: Mapping[str, float] | None = None,
    reserve: float = 0.0,
) -> int:
    """How many of the frames left `node` takes now (all of them, at the end).

    `speeds` are work per second by node (measured in this job or remembered from others), and
    the frames left are weighed by what they cost (`pool.costs`): a piece in a heavy section has
    fewer frames;
    `nodes` the nodes that can take pieces of this job now; `busy` how many seconds each node
    still needs for the piece of this job it renders now (a node rendering the audio pass, or
    a long piece, joins the last round late and takes less). A node whose speed is not known takes a
    first piece sized in time (`first_piece`). `reserve` is work left out of the sharing (the first
    round's reserve, `FramePool.reserve`).

    Note: a one-round job has nothing left to rebalance when a node turns out slower than it was
    sized for (a host that gets busy): a copy of so long a piece would finish later still. The
    reserve costs each node one start more, which is why only an unsteady farm keeps one.
    """
    frames = pool.remaining
    if frames <= 0:
        return 0
    working = sorted({*nodes, node})
    mine = speeds.get(node, 0.0)
    if mine <= 0:
        return _whole(pool, first_piece(pool, speeds, len(working)), pool.min_frames)
    left = pool.work(pool.next, pool.end)
    left = left - reserve if reserve < left else left  # (a newcomer when only the reserve is left shares it)
    typical = statistics.median(s for n in working if (s := speeds.get(n, 0.0)) > 0)
    free_at = {n: 0.0 if n == node else (busy or {}).get(n, 0.0) for n in working}
    done_at = finish_time(left, {n: speeds.get(n, 0.0) or typical for n in working}, free_at,
                          pool.start_seconds, least=LATE_JOIN * pool.start_seconds)  # fmt: skip
    longest = max(pool.min_frames, pool.frames_for(mine * pool.longest_seconds))  # well inside the time limit
    rendering = done_at - pool.start_seconds  # seconds each node renders from now to the end
    piece = piece_seconds(pool)
    if rendering <= LAST_ROUND * piece:
        # The last round: what this node renders by the time the farm is done, each paying one start.
        size = min(max(pool.frames_for(mine * rendering), pool.min_frames), longest)
        return _whole(pool, size, min(pool.min_frames, size))
    # Rounds of even length up to the end, each between one and LAST_ROUND pieces long: a fixed
    # piece, then a last round just over the limit, would cost a start more for the same work.
    seconds = rendering / math.ceil(rendering / (LAST_ROUND * piece))
    size = min(max(pool.frames_for(mine * seconds), pool.min_frames), longest)
    return _whole(pool, size, min(pool.min_frames, size))


def piece_seconds(pool: FramePool) -> float:
    """How long a piece far from the end renders: the target, and never so short that starting it is more than
    `START_SHARE` of its time."""
    return max(pool.target_seconds, pool.start_seconds * (1 - START_SHARE) / START_SHARE)


def one_round(pool: FramePool, speeds: Mapping[str, float], nodes: Sequence[str]) -> bool:
    """Whether the frames left are one round on `nodes`, all free now: each node one piece, sized to end with
    the others' (the last round of `frames_to_take`); False when no node's speed is known."""
    known = {n: s for n in nodes if (s := speeds.get(n, 0.0)) > 0}
    if not known:
        return False
    done_at = finish_time(pool.work(pool.next, pool.end), known, dict.fromkeys(known, 0.0), pool.start_seconds)
    return done_at - pool.start_seconds <= LAST_ROUND * piece_seconds(pool)


def first_piece(pool: FramePool, speeds: Mapping[str, float], working: int) -> int:
    """Frames for a node whose speed is not known: a piece sized in time, what the slowest node known renders
    in `FIRST_STARTS` starts' time (it is measured on it, then sized by what it showed), never more than
    its share of the frames left (1 / (`UNKNOWN_SHARE` x the nodes working)); that share when no node's
    speed is known (a fresh farm: the first round then takes a quarter of the frames, and the nodes
    that prove faster take the rest).

    Note: sized at the slowest speed known, an unknown node that turns out slow still finishes
    its first piece within a few starts' time; one that turns out fast has paid one start more
    than it would have at its real speed. Sized by a share of the frames instead, a slow newcomer
    on a long render took minutes of frames while the fast nodes ran out of work.
    """
    share = math.ceil(pool.remaining / (UNKNOWN_SHARE * working))
    known = [s for n, s in speeds.items() if s > 0 and not n.endswith(AUDIO_KEY)]
    if not known:
        return max(share, pool.min_frames)
    seconds = FIRST_STARTS * pool.start_seconds or pool.target_seconds  # (starts that cost nothing: a piece)
    timed = pool.frames_for(min(known) * seconds)
    return max(min(timed, share), pool.min_frames)


def share_of(
    holding: Sequence[str],
    node: str,
    candidates: Sequence[str],
    held: Mapping[str, str],
    rivals: Mapping[str, int],
    received: Mapping[str, float] | None = None,
    had: float = 0.0,
) -> tuple[bool, list[str]]:
    """(whether this job should leave `node` to a rival, the nodes its pieces are sized for).

    `holding` are the nodes rendering this job's pieces now (`node` aside), `candidates` the
    live nodes that could take them. Jobs of one priority share the nodes: each holds about
    its share (the nodes over the jobs), and a job at its share leaves a free node to a rival
    under its own. Where the nodes do not divide evenly (three nodes, two jobs), the node over
    goes to the job that has had fewer node-seconds (`received` by rival, `had` by this job),
    so that over the render each has about as many. A job's pieces are sized for the nodes it
    holds and will hold: its own, the free ones up to its share, never those rendering for a
    rival.

    Note: sized for all nodes, two jobs would each cut pieces for the whole farm and take
    turns on every node, paying a start each time; sized for their share, each keeps its
    nodes and finishes when the fair-share ideal says. Counted in nodes alone, the job that
    took the node over first would keep it to its end: two thirds of the farm against one.
    """
    pool = sorted({*candidates, node})
    fair = len(pool) / (1 + len(rivals))
    mine = sorted(set(holding) - {node})
    received = received or {}
    if rivals and len(mine) >= math.ceil(fair) and min(rivals.values()) < math.floor(fair):
        return True, mine
    behind = [j for j, n in rivals.items() if n < math.ceil(fair) and received.get(j, 0.0) < had]
    if behind and len(mine) >= math.floor(fair):  # the node over goes to the job that has had less
        return True, mine
    free = [n for n in pool if n not in held and n not in mine and n != node]
    room = max(0, math.ceil(fair) - len(mine) - 1) if rivals else len(free)
    return False, [*mine, node, *free[:room]]


def _whole(pool: FramePool, size: int, floor: int) -> int:
    """`size` frames, or all that are left when what it would leave is too small to be worth a piece of its
    own (fewer than `floor` frames).

    Note: the floor is in frames, not in a node's seconds of work: frames after a light
    stretch may be heavy, so a few frames can be long work (near the end, the last round
    sizes pieces so that none is a crumb).
    """
    left = pool.remaining
    return left if size >= left or left - size < floor else size


def measured_speeds(record: JobRecord[Any, Any, FramePool], now: float) -> dict[str, float]:
    """Each node's speed in this job (work per second): the piece it renders now, else the last one it
    finished."""
    speeds: dict[str, float] = {}
    pool = record.schedule
    finished = sorted((t for t in record.tasks if t.kind == "segment" and t.state == "done" and t.node),
                      key=lambda t: t.finished_at or 0.0)  # fmt: skip
    for piece in finished:
        if piece.details.get("fps"):
            speeds[str(piece.node)] = float(piece.details["fps"])
    work = pool.work if pool else frame_count
    for piece in record.tasks:
        if piece.kind == "segment" and piece.node and (speed := piece_speed(piece, now, work)):
            speeds[piece.node] = speed
    return speeds


def audio_speed(speeds: Mapping[str, float], node: str) -> float:
    """How fast `node` renders the audio pass (frames per second): measured, else estimated from the nodes
    measured at both (their audio speed over their video speed, the median) times this node's video speed;
    0 when nothing tells.

    Note: the audio pass goes to the slowest node, which in a farm's first jobs has rarely
    rendered one; counted as free meanwhile, it would be sized a share of the last round and
    finish it late.
    """
    if speeds.get(node + AUDIO_KEY, 0.0) > 0:
        return speeds[node + AUDIO_KEY]
    ratios = [speeds[n + AUDIO_KEY] / speeds[n] for n in speeds
              if not n.endswith(AUDIO_KEY) and speeds.get(n + AUDIO_KEY, 0.0) > 0 and speeds[n] > 0]  # fmt: skip
    return statistics.median(ratios) * speeds.get(node, 0.0) if ratios else 0.0
