"""`PulledRender`: the render kind's rules beside the lifecycle's (`orchestrator.rules`).

A pulled render's pieces are open until a node claims one: the claim cuts the next range of
frames from the pool (`FramePool`), sized for that node (`sizing.frames_to_take`), and a
successor takes the open piece's place while frames are left. A node that comes free when
none are left may get a copy of a piece still rendering far slower elsewhere (`copy_of`): the
first of the two to finish is kept, the other stops at its next report. A render cut up front
(no pool) follows the generic rules.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.lifecycle import make_ready, new_message, settle
from orchestrator.models import RESOLVE_POOLS, JobRecord, TaskRecord, piece_speed, rest_of
from orchestrator.outcome import Outcome, Send
from orchestrator.pull.eta import pulled_eta
from orchestrator.pull.pool import FramePool
from orchestrator.pull.sizing import (
    RESERVE,
    UNSTEADY,
    Sizing,
    audio_speed,
    frames_to_take,
    one_round,
    share_of,
)
from orchestrator.rules import KindRules

COPY_MARGIN = 0.7  # a copy of a slow piece is made only when it would finish in under 70% of the original's time left
Record = JobRecord[Any, Any, FramePool]


def _original(record: Record, piece: TaskRecord) -> TaskRecord | None:
    """The piece `piece` is a tail copy of; None when it is no copy."""
    return record.task(piece.params["copy_of"]) if piece.params.get("copy_of") else None


class PulledRender(KindRules):
    """Frames taken at claim, successors, tail copies, a pulled render's progress, ETA and index entry.

    Note: the context of a claim (and of a piece done, for a copy) is a `Sizing`, read from the
    farm before the transaction (`orchestrator.pull.dispatch.context`).
    """

    def before_claim(self, record: Record, piece: TaskRecord, now: float) -> Outcome | None:
        original = _original(record, piece)
        if original is None:
            return None
        if original.state != "running":
            piece.state, piece.finished_at = "cancelled", now
            settle(record, now)  # the copy may be the last piece the job waited for
            return Outcome("skip", f"{original.name} finished before its copy {piece.name} started")
        if piece.state == "running":
            piece.state, piece.finished_at = "cancelled", now
            settle(record, now)
            return Outcome("skip", f"the copy {piece.name} was lost with its worker on {piece.node}",
                           lost_on=piece.node)  # fmt: skip
        return None

    def on_claim(
        self, record: Record, piece: TaskRecord, node: str, candidates: Sequence[str], context: Any, now: float
    ) -> Outcome | None:
        if piece.kind == "audio" and record.schedule is not None and context is not None:
            left = _leave_to_rival(record, piece, node, context, candidates, now)
            if left is None and context.speeds.get(node):  # what the ETA counts this node at, once it is done
                pass_speed = audio_speed(context.speeds, node)
                busy = ((piece.end or 0) - (piece.start or 0) + 1) / pass_speed if pass_speed > 0 else None
                piece.details = {"sized_by": round(context.speeds[node], 3),
                                 **({"busy_for": round(busy, 3)} if busy else {})}  # fmt: skip
            return left
        if not piece.params.get("open"):
            return None
        return _take_frames(record, piece, node, context or Sizing(), candidates, now)

    def stop(self, record: Record, piece: TaskRecord) -> str | None:
        original = _original(record, piece)
        if original is not None and original.state == "done":
            return f"{original.name} finished first: its copy is not needed"
        return None

    def before_done(self, record: Record, piece: TaskRecord, now: float) -> Outcome | None:
        original = _original(record, piece)
        if original is not None and original.state == "done":
            piece.state, piece.finished_at = "cancelled", now
            settle(record, now)
            return Outcome("stale", f"{original.name} finished first: the copy {piece.name} is not wanted")
        return None

    def on_done(self, record: Record, piece: TaskRecord, node: str, context: Any, now: float) -> list[Send]:
        """A copy that won gives the original its output (and the original's render stops); a piece's start
        cost is blended into the pool's (replaces it while that is the setting's guess); a segment done with
        no frames left may leave its node a copy."""
        original = _original(record, piece)
        if original is not None:
            original.state, original.finished_at, original.output = "done", now, piece.output
            original.frames_done = original.frames_total
            original.details = {**piece.details, "rendered_by": f"{piece.name} on {node}"}
        pool = record.schedule
        if pool is None:
            return []
        if piece.details.get("start_seconds") is not None:  # what starting a render costs here
            measured = float(piece.details["start_seconds"])
            # A guess is replaced by the first measure: blended, a 5 s guess against a 0.2 s start would
            # size pieces for starts ten times too dear for several pieces more.
            blended = (pool.start_seconds + measured) / 2 if pool.start_measured else measured
            pool.start_seconds, pool.start_measured = round(blended, 3), True
        if record.finished or pool.remaining or piece.kind != "segment" or original is not None or not context:
            return []
        return _offer_copy(record, node, context.speeds, now)

    def before_failure(self, record: Record, piece: TaskRecord, node: str, error: str, now: float) -> Outcome | None:
        if not piece.params.get("copy_of"):
            return None
        # A spare copy: the original still runs (or finished: settle then).
        piece.state, piece.finished_at, piece.error = "cancelled", now, error
        piece.failed_on.append(node)
        settle(record, now)
        return Outcome("stale", f"the copy {piece.name} failed on {node}: {error}", count_failure=True)

    def retried(self, record: Record, piece: TaskRecord) -> bool:
        return not piece.params.get("copy_of")  # a spare copy is not made again: the original runs again

    def counted(self, record: Record, piece: TaskRecord) -> bool:
        return bool(piece.frames_total) and not piece.params.get("copy_of")  # a copy's frames are the original's

    def frames(self, record: Record) -> tuple[int, int]:
        """A pulled render counts the frames no piece has taken yet."""
        done, total = super().frames(record)
        return done, record.schedule.count if record.schedule is not None else total

    def counts_frames(self, record: Record) -> bool:
        return record.schedule is not None or super().counts_frames(record)

    def eta(self, record: Record, done: int, left: int, now: float) -> float | None:
        if record.schedule is None:
            return super().eta(record, done, left, now)
        return pulled_eta(record, record.schedule, done, left, now)

    def dispatch(self, record: Record) -> dict[str, Any] | None:
        """While frames are left: the nodes rendering its pieces, the node-seconds it has had, whether an open
        piece waits in the queue (and where it may run), and the nodes kept off it: what a rival's claim
        reads (`dispatch.rivals`)."""
        pool = record.schedule
        if pool is None or not pool.remaining or record.finished:
            return None
        opened = [t for t in record.tasks if t.params.get("open") and t.state == "pending"]
        where = opened[0].placement if opened else None
        hosted, now = [t for t in record.tasks if t.placement.pool in RESOLVE_POOLS], time.time()
        return {
            # node-seconds received: those of pieces that ran, and since when each running piece runs
            "held_seconds": round(sum(t.held_seconds(now) for t in hosted if t.state != "running"), 3),
            "held_since": [t.started_at for t in hosted if t.state == "running" and t.started_at is not None],
            "holding": sorted({str(t.node) for t in record.tasks
                               if t.state == "running" and t.node and t.kind in ("segment", "audio")}),
            "open": bool(opened) and record.state in ("queued", "running"),
            "tags": list(where.tags) if where else [],
            "node": where.node if where else None,
            "blocked": record.blocked_nodes,
        }  # fmt: skip


def _busy(record: Record, speeds: Mapping[str, float], now: float) -> dict[str, float]:
    """Seconds each node still needs for the piece of this job it renders now, from its speed (at the audio
    pass, `<node>/audio`, which counts no frames as it goes: from its start); the node the audio pass was
    sent to is busy with it before it even took it."""
    pool = record.schedule
    start = pool.start_seconds if pool else 0.0
    busy: dict[str, float] = {}
    for piece in record.tasks:
        if piece.kind == "audio" and piece.state == "pending" and piece.params.get("prefer"):  # sent to that node
            prefer = str(piece.params["prefer"])
            if (speed := audio_speed(speeds, prefer)) > 0:
                busy[prefer] = start + ((piece.end or 0) - (piece.start or 0) + 1) / speed
        if piece.state != "running" or not piece.node or piece.started_at is None:
            continue
        elapsed = now - piece.started_at
        if piece.kind == "segment" and speeds.get(piece.node, 0.0) > 0 and pool is not None:
            left = max(0.0, start - elapsed) + rest_of(piece, pool.work) / speeds[piece.node]
        elif piece.kind == "audio" and (speed := audio_speed(speeds, piece.node)) > 0:
            frames = (piece.end or 0) - (piece.start or 0) + 1
            left = max(0.0, start + frames / speed - elapsed)
        else:
            left = max(0.0, start - elapsed)
        busy[piece.node] = max(busy.get(piece.node, 0.0), left)
    return busy


def _holding(record: Record) -> list[str]:
    """The nodes rendering this job's segments or its audio pass now."""
    return [str(t.node) for t in record.tasks if t.state == "running" and t.node and t.kind in ("segment", "audio")]


def _leave_to_rival(
    record: Record, piece: TaskRecord, node: str, sizing: Sizing, nodes: Sequence[str], now: float
) -> Outcome | None:
    """The audio pass, sent at submit to the node it would cost least: when that node has since become a
    rival's share (this job holds its share and the rival fewer), it goes back to the job's queue, to be
    rendered on one of the job's own nodes.

    Note: two jobs submitted together each pick an audio node before either has claimed a node;
    rendered on the other job's node, the pass costs that job a node for its length and leaves it
    its last round on fewer nodes.
    """
    leave, _ = share_of(
        _holding(record), node, nodes, sizing.held, sizing.rivals, sizing.received, record.node_seconds(now)
    )
    if not leave:
        return None
    piece.params = {k: v for k, v in piece.params.items() if k != "prefer"}  # no longer sent to that node
    new_message(piece)
    return Outcome("move", f"job {record.id} holds its share of the nodes; {node} is left to another job",
                   send=[Send(piece.name)])  # fmt: skip


def _keep_reserve(record: Record, piece: TaskRecord, node: str, sizing: Sizing, nodes: Sequence[str]) -> None:
    """On an unsteady farm (the nodes' recorded spread at `UNSTEADY` or over), the first claim of a job that
    would be one round sets a reserve of `RESERVE` of its work aside from that round; the first node back
    for a second piece opens it to all.

    Note: set per job, not per claim: a share of each node's own time kept back would be
    handed to the next claimer, which counts the first node in for later and sizes its own
    piece larger (the slow nodes then took more, not less). A job of several rounds keeps
    none: its later rounds are sized by the speeds its first one showed.
    """
    pool = record.schedule
    assert pool is not None
    if pool.next == pool.start and sizing.spread >= UNSTEADY and one_round(pool, sizing.speeds, [*nodes, node]):
        pool.reserve = RESERVE * pool.work(pool.start, pool.end)
    elif any(t.kind == "segment" and t.node == node for t in record.tasks if t is not piece):
        pool.reserve = 0.0


def _take_frames(
    record: Record, piece: TaskRecord, node: str, sizing: Sizing, nodes: Sequence[str], now: float
) -> Outcome | None:
    """An open piece of a pulled render takes the next range, sized for `node`; None when it got one.

    While frames are left after it, a new open piece takes its place in the queue (and in the
    `after` of whatever waited for it); when none are, the open pieces still queued are
    skipped (their messages revoked), and the outcome sends what no longer waits for them.
    """
    pool = record.schedule
    assert pool is not None, f"{piece.name} is open but job {record.id} has no frame pool"
    if sizing.costs is not None:  # what the farm learnt of the timeline's costs since the job was compiled
        pool.costs = sizing.costs
    leave, nodes = share_of(
        _holding(record), node, nodes, sizing.held, sizing.rivals, sizing.received, record.node_seconds(now)
    )
    if leave:  # back in the queue: this node takes the next message, a rival's
        new_message(piece)
        return Outcome("move", f"job {record.id} holds its share of the nodes; {node} is left to another job",
                       send=[Send(piece.name)])  # fmt: skip
    busy = {**sizing.elsewhere, **_busy(record, sizing.speeds, now)}  # (a node works for one job at a time)
    _keep_reserve(record, piece, node, sizing, nodes)
    size = frames_to_take(pool, node, sizing.speeds, nodes, busy, pool.reserve)
    if size:
        number = int(piece.name.rpartition(" ")[2])
        piece.start, piece.end, piece.frames_total = pool.next, pool.next + size - 1, size
        piece.output = f"{pool.work_dir}/seg_{number:04d}.{pool.extension}"
        piece.params = {}
        if sizing.speeds.get(node):  # what the ETA counts the piece at until its frames come out
            piece.details = {"sized_by": round(sizing.speeds[node], 3)}
        pool.next += size
    sends: list[Send] = []
    revoke: list[str] = []
    if pool.remaining and size:
        pool.made += 1
        successor = TaskRecord(name=f"segment {pool.made}", kind="segment", task=piece.task,
                               placement=piece.placement, params={"open": True})  # fmt: skip
        new_message(successor)
        record.tasks.insert(record.tasks.index(piece) + 1, successor)
        for waiting in record.tasks:
            if piece.name in waiting.after:
                waiting.after.append(successor.name)
        sends.append(Send(successor.name))
    elif not pool.remaining:
        for other in record.tasks:
            if other.params.get("open") and other.state in ("pending", "waiting"):
                if other.state == "pending" and other.celery_id and other is not piece:
                    revoke.append(other.celery_id)
                other.state = "skipped"
                for waiting in record.tasks:
                    if other.name in waiting.after:
                        waiting.after.remove(other.name)
    if size:
        return None if not (sends or revoke) else Outcome("run", send=sends, revoke=revoke)
    return Outcome("skip", f"{piece.name}: no frames left", send=make_ready(record), revoke=revoke)


def _offer_copy(record: Record, node: str, speeds: Mapping[str, float], now: float) -> list[Send]:
    """The tail: `node` just came free and no frames are left; if a piece still rendering elsewhere
    would finish far later than a copy made here, make that copy (`copy_of`) and send it to `node`.
    The first of the two to finish is kept; the other stops at its next report."""
    slow = _worth_copying(record, node, speeds, now)
    pool = record.schedule
    if slow is None or pool is None:
        return []
    pool.made += 1
    copy = TaskRecord(
        name=f"segment {pool.made}", kind="segment", task=slow.task, placement=slow.placement,
        start=slow.start, end=slow.end, frames_total=slow.frames_total, params={"copy_of": slow.name},
        output=f"{pool.work_dir}/seg_{pool.made:04d}.{pool.extension}",
    )  # fmt: skip
    new_message(copy)
    record.tasks.insert(record.tasks.index(slow) + 1, copy)
    return [Send(copy.name, node)]


def _worth_copying(record: Record, node: str, speeds: Mapping[str, float], now: float) -> TaskRecord | None:
    """The running piece a copy on `node` would finish well before, the latest-finishing one; None if none.

    Note: a copy renders the whole range again (Resolve cannot take over half a render), so it
    pays only when the original is far slower. A piece already copied gets another copy only
    when that would finish well before the original and every copy of it (the first copy may
    have gone to a slow node that happened to come free first); never a copy of a copy, and
    none while a copy is on its way. Time left is taken at the speed a piece's reports show
    (`piece_speed`), in the same units as its work left: a node believed fast, or frames
    believed light, that render slowly are seen as they are.
    """
    pool = record.schedule
    mine = speeds.get(node, 0.0)
    if pool is None or mine <= 0:
        return None
    best: tuple[float, TaskRecord] | None = None
    for original in record.tasks:
        if original.kind != "segment" or original.state != "running" or original.params:
            continue
        copies = [
            t for t in record.tasks if t.params.get("copy_of") == original.name and t.state in ("pending", "running")
        ]
        attempts = [original, *copies]
        if any(t.node == node or t.state == "pending" for t in attempts):
            continue
        lefts = [left for t in attempts if (left := _time_left(t, pool, speeds, now)) is not None]
        if len(lefts) < len(attempts):
            continue
        left = min(lefts)
        copy = pool.start_seconds + pool.work(original.start or 0, original.end or 0) / mine
        if copy < COPY_MARGIN * left and (best is None or left > best[0]):
            best = (left, original)
    return best[1] if best else None


def _time_left(piece: TaskRecord, pool: FramePool, speeds: Mapping[str, float], now: float) -> float | None:
    """Seconds until a running piece is done: at the speed its reports show, else its node's (after what is left
    of its start); None when neither is known."""
    measured = piece_speed(piece, now, pool.work)
    speed = measured or speeds.get(str(piece.node), 0.0)
    if speed <= 0:
        return None
    starting = 0.0 if measured else max(0.0, pool.start_seconds - (now - (piece.started_at or now)))
    return starting + rest_of(piece, pool.work) / speed
