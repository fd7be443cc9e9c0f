"""How many frames a free node takes from a pulled render: sized by its speed, shrinking toward the end.

Far from the end a node takes what it renders in the target piece duration. Near it (when
the work left, taken pieces' unrendered frames included, would keep the whole farm busy for
less than about twice that), each node takes what it renders by the time the farm as a
whole is done: its speed's share, so that all finish together, in pieces that get smaller
as the end nears (weighted factoring). No piece is so short that starting it (seconds on
Resolve) is a large part of it; none leaves behind a crumb too small to be worth a start of
its own; none is expected to take more than half the render time limit. A node whose speed
is not known yet takes a small first piece, and is measured.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.models import FramePool, JobRecord, piece_speed

START_SHARE = 0.2  # at most this part of a piece's time may go to starting it
UNKNOWN_SHARE = 4  # a node of unknown speed takes 1/(4 x nodes) of what is left
LAST_ROUND = 2.0  # within this many target durations of the end, pieces are shares of what is left


def frames_to_take(
    pool: FramePool, node: str, speeds: Mapping[str, float], nodes: Sequence[str], in_flight: int = 0
) -> int:
    """How many of the frames left `node` takes now (all of them, at the end).

    `speeds` are frames per second by node (measured in this job or remembered from others);
    `nodes` are the nodes that can take pieces of this job now; `in_flight` the frames that
    pieces already taken have still to render.
    """
    left = pool.remaining
    if left <= 0:
        return 0
    working = sorted({*nodes, node})
    mine = speeds.get(node, 0.0)
    if mine <= 0:
        size = math.ceil(left / (UNKNOWN_SHARE * len(working)))
        return _whole(left, max(size, pool.min_frames), pool.min_frames)
    typical = statistics.median(s for n in working if (s := speeds.get(n, 0.0)) > 0)
    farm_speed = sum(speeds.get(n, 0.0) or typical for n in working)
    until_done = (left + in_flight) / farm_speed  # seconds the whole farm needs for what is left
    longest = max(pool.min_frames, math.floor(min(mine * pool.longest_seconds, left)))  # well inside the time limit
    if until_done <= LAST_ROUND * pool.target_seconds:
        # The last round: a share each, finishing with the others; each pays one start whatever its size.
        size = min(max(math.ceil(mine * until_done), pool.min_frames), longest)
        return _whole(left, size, min(pool.min_frames, size))
    floor = max(pool.min_frames, math.ceil(mine * pool.start_seconds * (1 - START_SHARE) / START_SHARE))
    size = min(max(math.ceil(mine * pool.target_seconds), floor), longest)
    return _whole(left, size, min(floor, size))


def _whole(left: int, size: int, floor: int) -> int:
    """`size`, or everything when what it would leave is too small to be worth a piece of its own."""
    return left if size >= left or left - size < floor else size


def measured_speeds(record: JobRecord[Any, Any], now: float) -> dict[str, float]:
    """Each node's speed in this job: the piece it renders now, else the last one it finished."""
    speeds: dict[str, float] = {}
    finished = sorted((t for t in record.tasks if t.kind == "segment" and t.state == "done" and t.node),
                      key=lambda t: t.finished_at or 0.0)  # fmt: skip
    for piece in finished:
        if piece.details.get("fps"):
            speeds[str(piece.node)] = float(piece.details["fps"])
    for piece in record.tasks:
        if piece.kind == "segment" and piece.node and (speed := piece_speed(piece, now)):
            speeds[piece.node] = speed
    return speeds
