"""How many frames a free node takes from a pulled render: sized by its speed, shrinking toward the end.

Far from the end a node takes what it renders in the target piece duration. Near it (when
the frames no piece has taken would keep the farm busy for less than about twice that, each
node joining when the piece it renders now is done), each node takes what it renders by the
time the farm as a whole is done, so that all finish together, in pieces that get smaller
as the end nears (weighted factoring). No piece is so short that starting it (seconds on
Resolve) is a large part of it; none leaves behind a crumb too small to be worth a start of
its own; none is expected to take more than half the render time limit. A node whose speed
is not known yet takes a small first piece, and is measured. Speeds are work per second and
frames are weighed by what they cost (`orchestrator.costs`): a node takes fewer frames of a
heavy section than of a light one.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.costs import Steps
from orchestrator.models import FramePool, JobRecord, piece_speed

START_SHARE = 0.2  # at most this part of a piece's time may go to starting it
AUDIO_KEY = "/audio"  # speeds of the audio pass: `<node>/audio` among the speeds, `<key>/audio` in the book
UNKNOWN_SHARE = 4  # a node of unknown speed takes 1/(4 x nodes) of what is left
LAST_ROUND = 2.0  # within this many target durations of the end, pieces are shares of what is left
LATE_JOIN = 2.0  # a busy node joins the last round only for at least this many starts' time of frames


@dataclass(frozen=True)
class Sizing:
    """What a pulled piece is sized (or a copy decided) by: the nodes' frames per second, and how many
    pulled renders of the same priority share the nodes now (each gets its share of the farm).

    Note: speeds of the audio pass are among `speeds` as `<node>/audio`.
    """

    speeds: Mapping[str, float] = field(default_factory=dict)
    sharing: int = 1
    costs: Steps | None = None  # what the job's frames cost, as remembered for its timeline (None: not looked up)


def frames_to_take(
    pool: FramePool,
    node: str,
    speeds: Mapping[str, float],
    nodes: Sequence[str],
    busy: Mapping[str, float] | None = None,
    sharing: int = 1,
) -> int:
    """How many of the frames left `node` takes now (all of them, at the end).

    `speeds` are work per second by node (measured in this job or remembered from others), and
    the frames left are weighed by what they cost (`pool.costs`): a piece in a heavy section has
    fewer frames;
    `nodes` the nodes that can take pieces of this job now; `busy` how many seconds each node
    still needs for the piece of this job it renders now (a node rendering the audio pass, or
    a long piece, joins the last round late and takes less); `sharing` how many jobs share the
    nodes: each has a share of the farm, so its end is further and its pieces are shorter.
    """
    frames = pool.remaining
    if frames <= 0:
        return 0
    working = sorted({*nodes, node})
    mine = speeds.get(node, 0.0)
    if mine <= 0:
        size = math.ceil(frames / (UNKNOWN_SHARE * len(working)))
        return _whole(pool, max(size, pool.min_frames), pool.min_frames)
    left = pool.work(pool.next, pool.end)
    typical = statistics.median(s for n in working if (s := speeds.get(n, 0.0)) > 0)
    free_at = {n: 0.0 if n == node else (busy or {}).get(n, 0.0) for n in working}
    share = 1 / max(1, sharing)
    done_at = finish_time(left, {n: share * (speeds.get(n, 0.0) or typical) for n in working}, free_at,
                          pool.start_seconds, least=LATE_JOIN * pool.start_seconds)  # fmt: skip
    longest = max(pool.min_frames, pool.frames_for(mine * pool.longest_seconds))  # well inside the time limit
    shortest = pool.start_seconds * (1 - START_SHARE) / START_SHARE  # seconds: no piece shorter, far from the end
    if done_at - pool.start_seconds <= LAST_ROUND * max(pool.target_seconds, shortest):
        # The last round: what this node renders by the time the farm is done, each paying one start.
        size = min(max(pool.frames_for(share * mine * (done_at - pool.start_seconds)), pool.min_frames), longest)
        return _whole(pool, size, min(pool.min_frames, size))
    floor = max(pool.min_frames, pool.frames_for(mine * shortest))
    size = min(max(pool.frames_for(mine * pool.target_seconds), floor), longest)
    return _whole(pool, size, min(pool.min_frames, size))


def finish_time(
    work: float, speeds: Mapping[str, float], free_at: Mapping[str, float], start: float, least: float = 0.0
) -> float:
    """Seconds from now until `work` is rendered, each node starting one piece when it is free.

    Solves sum over nodes of speed x (T - free_at - start), for those that start before T, = work.
    A node busy now that would render for less than `least` seconds by then is left out.

    Note: leaving out a node that joins late for a sliver (the node rendering the audio pass,
    say) costs the others almost nothing, while counting it in would hand it whatever frames
    the others' speed estimates left over, with a start cost of its own: it would finish last.
    """
    ready = sorted((free_at[n] + start, speeds[n], least if free_at[n] > 0 else 0.0) for n in speeds)
    rate = backlog = 0.0  # summed speed of the nodes started so far; work they owe for their late start
    done_at = math.inf  # no nodes
    for begins, speed, shortest in ready:
        joined = (work + backlog + speed * begins) / (rate + speed)
        if rate and joined <= begins + shortest:  # it would start too late to render (long enough) before the end
            break
        rate, backlog, done_at = rate + speed, backlog + speed * begins, joined
    return done_at


def _whole(pool: FramePool, size: int, floor: int) -> int:
    """`size` frames, or all that are left when what it would leave is too small to be worth a piece of its
    own (fewer than `floor` frames).

    Note: the floor is in frames, not in a node's seconds of work: frames after a light
    stretch may be heavy, so a few frames can be long work (near the end, the last round
    sizes pieces so that none is a crumb).
    """
    left = pool.remaining
    return left if size >= left or left - size < floor else size


def measured_speeds(record: JobRecord[Any, Any], now: float) -> dict[str, float]:
    """Each node's speed in this job (work per second): the piece it renders now, else the last one it
    finished."""
    speeds: dict[str, float] = {}
    costs = record.frame_pool.costs if record.frame_pool else ()
    finished = sorted((t for t in record.tasks if t.kind == "segment" and t.state == "done" and t.node),
                      key=lambda t: t.finished_at or 0.0)  # fmt: skip
    for piece in finished:
        if piece.details.get("fps"):
            speeds[str(piece.node)] = float(piece.details["fps"])
    for piece in record.tasks:
        if piece.kind == "segment" and piece.node and (speed := piece_speed(piece, now, costs)):
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
