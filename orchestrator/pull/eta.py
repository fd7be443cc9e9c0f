"""The ETA of a pulled render: the work left over the nodes rendering now, with the starts still to pay."""

from __future__ import annotations

from typing import Any

from orchestrator.models import JobRecord, Running, rest_of
from orchestrator.pull.finish import finish_time
from orchestrator.pull.pool import FramePool


def pulled_eta(
    record: JobRecord[Any, Any, FramePool], pool: FramePool, done: int, left: int, now: float
) -> float | None:
    """Seconds until the frames left are rendered: their work over the summed speed of the pieces rendering
    now, and never before the piece that will take longest is done.

    Note: frames are weighed by what they cost (`orchestrator.pull.costs`): the frames of a
    heavy section take longer than those rendered so far. A piece still starting counts its
    start (`Running`); a tail copy adds no frames and is left out. The frames no piece has
    taken yet cost each node rendering now a start more when its piece is done (`finish_time`), and the
    node on the audio pass one when its pass is done (at the speeds it was claimed with: `details`).
    """
    rendering = [t for t in record.tasks if t.state == "running" and record.rules.counted(record, t)]
    running = Running(rendering, now, pool.work, pool.start_seconds)
    if not running.measured:
        return record.rate_eta(done, left, now)
    for audio in record.tasks:  # its node joins the last round when its pass is done
        if audio.kind == "audio" and audio.state == "running" and audio.details.get("busy_for"):
            elapsed = now - audio.started_at if audio.started_at is not None else 0.0
            running.speeds[audio.name] = float(audio.details["sized_by"])
            running.free_at[audio.name] = max(0.0, pool.start_seconds + float(audio.details["busy_for"]) - elapsed)
    untaken = pool.work(pool.next, pool.end) if pool.remaining else 0.0
    untaken += sum(
        rest_of(t, pool.work) for t in record.tasks if t.state == "pending" and record.rules.counted(record, t)
    )
    if not untaken:
        return round(max(running.longest, running.owed / running.rate), 1)
    return round(max(running.longest, finish_time(untaken, running.speeds, running.free_at, pool.start_seconds)), 1)
