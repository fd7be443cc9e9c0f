"""What a pulled render reads from the farm around a claim: speeds, costs, rival jobs, busy nodes; and where
its audio pass goes.

These are the reads of the control plane that the claim's rules (`PulledRender`) decide by;
`context` gathers them for one claim (or one piece done, for a tail copy) as a `Sizing`. The
render kind calls it (`RenderKind.claim_context`), the task base class calls the kind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from orchestrator import routing
from orchestrator.lifecycle import BLOCK_AFTER
from orchestrator.live import Report
from orchestrator.models import JobRecord
from orchestrator.pull.pool import FramePool
from orchestrator.pull.sizing import AUDIO_KEY, Sizing, measured_speeds

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView

AUDIO_CHOSEN = "rf:audio-chosen"  # "<prefix>:<node>": the node was just chosen for an audio pass
Record = JobRecord[Any, Any, FramePool]


def context(
    farm: FarmView, record: Record, name: str, node: str, tags: Sequence[str], nodes: list[str]
) -> Sizing | None:
    """For a segment of a pulled render: speeds measured in this job, else remembered from others; each
    node's speed at the audio pass (as `<node>/audio`); for an open piece (its frames still to take), the
    costs along its timeline, the nodes busy with other jobs, the other pulled renders of its priority
    this node could work for, with the nodes they hold, and how unsteady the nodes have been. For the audio
    pass, those rivals (it may leave the node to one) and the speeds (what the ETA counts the node at once
    its pass is done). None for other pieces (nothing to size)."""
    pool = record.schedule
    kind = record.task(name).kind
    if pool is None or kind not in ("segment", "audio"):
        return None
    book, key, names = farm.speeds, pool.speed_key, [*nodes, node]
    audio = {f"{n}{AUDIO_KEY}": fps for n, fps in book.speeds(names, key + AUDIO_KEY).items()}
    remembered = book.figures(names, key)  # (one read: the speeds, and how unsteady each node was)
    speeds = {**{n: float(f["fps"]) for n, f in remembered.items()}, **measured_speeds(record, time.time()), **audio}
    if kind == "audio":  # whether to leave this node to a rival (`PulledRender.on_claim`)
        held, rival_nodes, received = rivals(farm, record, node, tags)
        return Sizing(speeds, held=held, rivals=rival_nodes, received=received)
    if not record.task(name).params.get("open"):  # after a piece: only a tail copy is decided, by speeds
        return Sizing(speeds)
    costs = None
    if record.plan.cost_key:
        spec = record.spec
        seen = farm.catalog.content(spec.database.name if spec.database else None, spec.project, spec.timeline)
        costs = farm.costs.steps(record.plan.cost_key, pool.start, pool.end, seen)
    held, rival_nodes, received = rivals(farm, record, node, tags)
    spread = max((float(f["spread"]) for f in remembered.values() if f.get("spread") is not None), default=0.0)
    return Sizing(speeds, costs=costs, held=held, rivals=rival_nodes, received=received,
                  elsewhere=elsewhere(farm, record, {*held, node}, time.time()), spread=spread)  # fmt: skip


def rivals(
    farm: FarmView, record: Record, node: str, tags: Sequence[str]
) -> tuple[dict[str, str], dict[str, int], dict[str, float]]:
    """The other pulled renders of `record`'s priority that still hand out frames: (each node rendering one of
    their pieces -> that job; each of them that `node` could take a piece of (by its `tags`, not kept off
    them) -> how many nodes render its pieces now; each of those -> the node-seconds it has had).

    Note: read from the index of who holds what (`JobStore.holders`), which the store writes
    with each record, so a claim is seen at once; a node's heartbeat says what it renders
    only after the claim, and still says it for a moment after the piece ended.
    """
    held: dict[str, str] = {}
    found: dict[str, int] = {}
    received: dict[str, float] = {}
    now = time.time()
    for job_id, entry in farm.store.holders(record.priority).items():
        if job_id == record.id or not entry.get("open"):
            continue
        holding = entry.get("holding", [])
        held.update(dict.fromkeys(holding, job_id))
        if (
            entry.get("blocked", {}).get(node, 0) < BLOCK_AFTER
            and set(entry.get("tags", [])) <= set(tags)
            and entry.get("node") in (None, node)
        ):
            found[job_id] = len(holding)
            running = sum(max(0.0, now - since) for since in entry.get("held_since", []))
            received[job_id] = float(entry.get("held_seconds", 0.0)) + running
    return held, found, received


def elsewhere(farm: FarmView, record: Record, skip: set[str], now: float) -> dict[str, float]:
    """Nodes rendering a piece of another job (not one of `skip`), each with the seconds it still needs, as far
    as that piece's progress tells (0 when it does not: counted free, as the farm did before it knew).

    Note: what a node renders is read from its heartbeat (`current_task`, set as a piece starts
    and cleared before its end is recorded), then that piece's latest report (`orchestrator.live`).
    """
    found = {}
    for other in farm.nodes.all():
        job_id, _, name = str(other.current_task or "").partition(":")
        if not job_id or job_id == record.id or other.name in skip:
            continue
        report = farm.store.live.progress_of(job_id, name, other.name)
        found[other.name] = _left(report) if report is not None else 0.0
    return found


def _left(report: Report) -> float:
    """Seconds a piece still renders, from its first and last report of frames; 0 when they do not tell."""
    if report.first is None or report.last is None or report.last[0] <= report.first[0]:
        return 0.0
    speed = (report.last[1] - report.first[1]) / (report.last[0] - report.first[0])
    return (report.total - report.done) / speed if speed > 0 else 0.0


def audio_node(farm: FarmView, known: dict[str, float]) -> str:
    """The node a pulled render's audio pass is sent to: the slowest known (it loses least by it), among those
    with nothing already sent to them alone, nor rendering an audio pass, nor chosen for one just now.

    Note: two jobs submitted together would otherwise send both audio passes to one node,
    which then starts one job's pieces late while that job's other nodes wait. A node takes a
    message off its queue at once and tells it renders an audio pass only at its next
    heartbeat: the choice is reserved in Redis (`AUDIO_CHOSEN`, set only where none is) for
    a few heartbeats, which closes that gap even for jobs submitted from two processes.
    """
    rendering = {n.name for n in farm.nodes.all() if str(n.current_task or "").endswith(":audio")}
    slowest = sorted(known, key=lambda n: known[n])
    reserve = max(1, math.ceil(3 * farm.settings.heartbeat_interval))
    for node in slowest:
        if node in rendering or farm.redis.llen(routing.node_queue(node)):
            continue
        if farm.redis.set(f"{AUDIO_CHOSEN}:{node}", "1", nx=True, ex=reserve):
            return node
    return slowest[0]
