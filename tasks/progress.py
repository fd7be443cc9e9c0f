"""Progress from a running piece: beside the job record, out as a Celery event, and back as cancel."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from celery import Task

from orchestrator.live import Report
from orchestrator.locks import PieceLocks
from orchestrator.models import RECENT_SECONDS, RECENT_SHARE
from orchestrator.pull.costs import StretchClock
from tasks.runtime import runtime

if TYPE_CHECKING:
    from tasks.base import PieceCancelled

log = logging.getLogger(__name__)

TURN_SECONDS = 1.5  # a change of a piece's speed is read over its latest rises of the count spanning this long...
TURN = 1.5  # ...and seen once that speed and its window's differ by this factor


class Reporter:
    """The bridge's progress callback for one piece of one job.

    Note: throttled to one report per `progress_interval`, a plain write beside the record
    (`orchestrator.live`) that also reads back whether the piece should stop (the job was
    cancelled or finished, or the piece moved on), so a cancel reaches a running render within
    that interval. A report names its attempt (`generation`, `attempt`): only the record's
    current attempt of the piece counts it.
    """

    speaker = "Resolve"  # who reports the status its log lines quote

    def __init__(self, task: Task, job_id: str, name: str, generation: int, attempt: int) -> None:
        self.task = task
        self.job_id = job_id
        self.name = name
        self.generation = generation
        self.attempt = attempt
        self._reported: tuple[tuple[float, int] | None, tuple[float, int] | None] = (None, None)  # first, last
        self._marks: list[tuple[float, int]] = []  # where the window of recent reports begins, and the next one
        self._rises: deque[tuple[float, int]] = deque()  # when the frame count rose, and to what, lately
        self.cancel = threading.Event()
        self.why = ""  # why the piece should stop, once `cancel` is set
        self.giving_back = False  # it stops because its worker does: the piece goes back to the queue
        self._last = 0.0
        self._said: tuple[Any, Any] | None = None
        self.began = 0.0  # when the render started: its first status poll follows it at once
        self.first_frames: tuple[float, int] | None = None  # when the first frames were seen, and how many
        self.last_frames: tuple[float, int] | None = None  # when frames were last counted, and how many
        self.clock: StretchClock | None = None  # where a render's time went along the timeline, when kept

    def speed(self, frames: int, ended: float) -> tuple[float, float]:
        """(frames per second once frames came out, seconds before the first one did) of a finished render."""
        if self.first_frames is not None and frames > self.first_frames[1] and ended > self.first_frames[0]:
            seen, done = self.first_frames
            fps = (frames - done) / (ended - seen)
            return fps, max(0.0, seen - self.began - done / fps)
        return frames / max(ended - self.began, 1e-3), 0.0  # too short to tell its start from its frames

    def stopped(self, default: str) -> PieceCancelled:
        """What the piece raises once its work stopped on `cancel`: given back when its worker is stopping."""
        from tasks.base import PieceCancelled, PieceGivenBack  # (the base imports this module)

        return (PieceGivenBack if self.giving_back else PieceCancelled)(self.why or default)

    def speed_so_far(self) -> tuple[float, float] | None:
        """(frames per second, seconds before the first frame) of a render stopped part-way; None if too early."""
        if self.first_frames is None or self.last_frames is None or self.last_frames[1] <= self.first_frames[1]:
            return None
        return self.speed(self.last_frames[1], self.last_frames[0])

    def __call__(self, done: int, total: int, status: dict[str, Any]) -> None:
        self.began = self.began or time.monotonic()
        if done and self.first_frames is None:
            self.first_frames = (time.monotonic(), done)
        if done:
            self._rose(time.time(), done)
            self.last_frames = (time.monotonic(), done)
            if self.clock is not None:
                self.clock.count(self.last_frames[0], done)
        said = (status.get("status"), status.get("error"))
        if said != self._said:  # what Resolve says, into the piece's log when it changes
            self._said = said
            log.info("%s: %s at %d/%d frames%s", self.speaker, said[0], done, total, f" ({said[1]})" if said[1] else "")
        now = time.monotonic()
        if now - self._last < runtime.settings.progress_interval and done < total:
            return
        self._last = now
        first, last = self._reported
        if done and first is None:  # from here on its speed can be measured
            first = (time.time(), done)
        elif first is not None:
            last = (time.time(), max(done, last[1] if last else first[1]))
        self._reported = first, last
        report = Report(runtime.node, self.generation, self.attempt, max(done, (last or first or (0, 0))[1]),
                        total, first, last, self._recent(first, last, total))  # fmt: skip
        answer = runtime.farm().store.live.report(self.job_id, self.name, report)
        if answer.stop is not None:
            self.why = answer.stop
            self.cancel.set()
        elif answer.node_stopping:
            self.why, self.giving_back = f"the worker on {runtime.node} is stopping", True
            self.cancel.set()
        self.task.send_event(
            "task-progress", job_id=self.job_id, task=self.name, node=runtime.node,
            frames_done=done, frames_total=total, job_progress=answer.job_progress,
        )  # fmt: skip

    def _rose(self, at: float, done: int) -> None:
        """Keep when the frame count rose, over the last two windows: the moment Resolve's coarse percentage
        stepped is known to within a poll, which a report's time is not."""
        if not self._rises or done > self._rises[-1][1]:
            self._rises.append((at, done))
        while at - self._rises[0][0] > 2 * RECENT_SECONDS:
            self._rises.popleft()

    def _recent(self, first: tuple[float, int] | None, last: tuple[float, int] | None,
                total: int) -> tuple[float, int] | None:  # fmt: skip
        """Where the window of recent reports begins: two marks, the window running from the older; once the
        latest report is `RECENT_SECONDS` and `RECENT_SHARE` of the frames past the newer, it becomes the newer
        and the newer the older, so the window spans once to twice that. None while it is the whole render.
        A change of speed (`_turn`) starts the window again where it was seen."""
        if first is None or last is None:
            return None
        marks = self._marks or [first]
        at, frames = marks[-1]
        if last[0] - at >= RECENT_SECONDS and last[1] - frames >= RECENT_SHARE * total:
            marks = [marks[-1], last]
        window = marks[0] if len(marks) == 2 and marks[0] != first else None
        turn = self._turn(window or first)
        if turn is not None:
            window, marks = turn, [turn, last]
        self._marks = marks
        return window

    def _turn(self, begin: tuple[float, int]) -> tuple[float, int] | None:
        """Where the latest `TURN_SECONDS` of rises began, if their speed differs from the window's before them
        (from `begin`) by `TURN` or more: a node that slowed down is seen at its speed now within seconds, not
        once its window has moved past the change (up to twice `RECENT_SECONDS` and `RECENT_SHARE` of the frames).

        Note: the short stretch is read between rises of the count, so the percentage's steps do not
        blur it, and needs three rises; the simulator's jitter of a fifth stays under `TURN`.
        """
        if not self._rises:
            return None
        latest = self._rises[-1]
        since = [r for r in self._rises
                 if begin[0] + TURN_SECONDS <= r[0] <= latest[0] - TURN_SECONDS and r[1] > begin[1]]  # fmt: skip
        if not since or sum(1 for r in self._rises if r[0] > since[-1][0]) < 3:
            return None
        start = since[-1]
        short = (latest[1] - start[1]) / (latest[0] - start[0])
        before = (start[1] - begin[1]) / (start[0] - begin[0])
        return start if short > 0 and max(short / before, before / short) >= TURN else None


class LockKeeper:
    """Keeps a piece's lock alive from a thread while the piece runs.

    Note: the lock's short TTL is what lets a redelivered copy take over soon after a
    worker dies; the keeper is what stops it lapsing under a live one.
    """

    def __init__(self, locks: PieceLocks, job_id: str, name: str, owner: str, ttl: int) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, args=(locks, job_id, name, owner, ttl), name="lock-keeper", daemon=True
        )
        self._thread.start()

    def _keep(self, locks: PieceLocks, job_id: str, name: str, owner: str, ttl: int) -> None:
        while not self._stop.wait(ttl / 3):
            locks.extend(job_id, name, owner, ttl)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
