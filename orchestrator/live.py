"""Live progress beside the job record: what running pieces report, and what they read back.

A running piece reports its frames every `progress_interval`. Writing that into the record
would be a WATCH/MULTI read-modify-write of the whole record per report, growing with the
job; instead each report is one plain write of the piece's own entry in `rf:job:<id>:live`
(a hash: `<piece>|<node>` -> that attempt's frames, first and last report), merged into the record
where the record is read (`JobStore.get`, `apply`, `list`), by the lifecycle's own fold
(`lifecycle.progress`). What the report needs back, stop or go, is read from
`rf:job:<id>:control`, a small hash the store writes in the same transaction as the record
(`control_fields`): why the job's pieces should stop, each claimed piece's state and node and
what the kind's rules say, the job's frames, and the write lease of each piece that has one.

Note: an entry counts only for the attempt that wrote it (node, generation and attempt must
match the record's running piece): a late report from a worker cut off, or from an earlier
attempt, changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import redis

from orchestrator import lifecycle
from orchestrator.models import JobRecord
from orchestrator.nodes import stopping_key

PREFIX = "rf:job"
JOB = "job"  # control: why every piece should stop ("" while the job runs)
STATE = "state"  # control: the job's state
GENERATION = "generation"
LEASE = "lease:"  # control: "lease:<piece>" -> the write lease the piece needs
FRAMES = "frames"  # control: [frames of the job's pieces not running, frames to render]
Record = JobRecord[Any, Any]


def live_key(job_id: str) -> str:
    return f"{PREFIX}:{job_id}:live"


def control_key(job_id: str) -> str:
    return f"{PREFIX}:{job_id}:control"


def control_fields(record: Record) -> dict[str, str]:
    """The control entry of a record as written: what reports and a claiming worker read instead of the record."""
    done, total = record.frames()
    running = {t.name for t in record.tasks if t.state == "running"}
    fields = {JOB: lifecycle.job_control(record), STATE: record.state, GENERATION: str(record.generation)}
    for piece in record.tasks:
        if piece.node is not None:
            said = lifecycle.piece_control(record, piece)
            said["counted"], said["attempt"] = record.rules.counted(record, piece), piece.attempts
            fields[f"piece:{piece.name}"] = json.dumps(said, separators=(",", ":"))
        if piece.lease:
            fields[f"{LEASE}{piece.name}"] = piece.lease
    elsewhere = sum(t.frames_done for t in record.tasks if t.name in running and record.rules.counted(record, t))
    fields[FRAMES] = f"{done - elsewhere},{total}"
    return fields


@dataclass(frozen=True)
class Report:
    """One attempt's frames as its worker last wrote them."""

    node: str
    generation: int
    attempt: int
    done: int
    total: int
    first: tuple[float, int] | None  # when frames were first reported, and how many
    last: tuple[float, int] | None  # the latest report since, and how many
    recent: tuple[float, int] | None = None  # where the window of recent reports begins (`RECENT_SECONDS`)

    def dumps(self) -> str:
        return json.dumps([self.node, self.generation, self.attempt, self.done, self.total, self.first, self.last,
                           self.recent])  # fmt: skip

    @classmethod
    def loads(cls, raw: str) -> Report:
        node, generation, attempt, done, total, first, last, *rest = json.loads(raw)  # (a report of before: 7)
        recent = rest[0] if rest else None
        return cls(node, generation, attempt, done, total, tuple(first) if first else None,
                   tuple(last) if last else None, tuple(recent) if recent else None)  # fmt: skip


@dataclass(frozen=True)
class Answer:
    """What a report reads back: why to stop (None: go on), the job's progress in percent (None: unknown), and
    whether the reporting node's worker is stopping (its piece is then given back)."""

    stop: str | None
    job_progress: float | None
    node_stopping: bool = False


def field(name: str, node: str) -> str:
    """A report's field in the live hash: one per piece and node, so a worker cut off from its piece,
    still reporting, never overwrites the report of the node that took the piece over."""
    return f"{name}|{node}"


def merge(record: Record, reports: Mapping[str, str]) -> None:
    """Fold the reports kept beside the record into its running pieces (those of their current attempt only)."""
    for key, raw in reports.items():
        name = key.rpartition("|")[0]
        try:
            piece = record.task(name)
        except KeyError:
            continue
        report = Report.loads(raw)
        if (piece.state != "running" or piece.node != report.node or piece.attempts != report.attempt
                or piece.generation != report.generation or report.first is None):  # fmt: skip
            continue
        lifecycle.progress(record, name, report.node, report.first[1], report.total, now=report.first[0])
        if report.last is not None:
            lifecycle.progress(record, name, report.node, report.last[1], report.total, now=report.last[0],
                               recent=report.recent)  # fmt: skip


class LiveProgress:
    """The reports of running pieces, beside their job records in Redis."""

    def __init__(self, client: redis.Redis, retention: int) -> None:
        self.redis = client
        self.retention = retention

    def report(self, job_id: str, name: str, report: Report) -> Answer:
        """Keep one report (a plain write) and read back whether the piece should go on, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(live_key(job_id), field(name, report.node), report.dumps())
        pipe.expire(live_key(job_id), self.retention)
        pipe.hgetall(control_key(job_id))
        pipe.hgetall(live_key(job_id))
        pipe.exists(stopping_key(report.node))
        _, _, control, reports, stopping = pipe.execute()
        if not control:  # a record written before control entries existed: go on
            return Answer(None, None, bool(stopping))
        said = json.loads(control.get(f"piece:{name}") or "{}")
        why = lifecycle.stop_reason(control.get(JOB, ""), said, name, report.node)
        return Answer(why, _percent(control, reports), bool(stopping))

    def read(self, job_id: str) -> dict[str, str]:
        return dict(self.redis.hgetall(live_key(job_id)))

    def control(self, job_id: str) -> dict[str, str]:
        """The control entry of a job ({} for a record written before control entries existed)."""
        return dict(self.redis.hgetall(control_key(job_id)))

    def progress_of(self, job_id: str, name: str, node: str) -> Report | None:
        """The latest report of one piece of a job from `node`, whatever its attempt; None when it made none."""
        raw = self.redis.hget(live_key(job_id), field(name, node))
        return Report.loads(raw) if raw else None

    @staticmethod
    def write(pipe: Any, record: Record, retention: int) -> None:
        """Queue on `pipe` (the record's transaction) the control entry anew, and the expiry of both entries."""
        key = control_key(record.id)
        pipe.delete(key)
        pipe.hset(key, mapping=control_fields(record))
        if record.finished:
            pipe.expire(key, retention)
            pipe.expire(live_key(record.id), retention)


def _percent(control: Mapping[str, str], reports: Mapping[str, str]) -> float | None:
    """The job's progress: its control entry's frames of pieces not running, plus the latest report of each
    running piece's current attempt that counts frames."""
    base, _, total = control.get(FRAMES, "0,0").partition(",")
    if not int(total):
        return None
    done = int(base)
    for key, raw in reports.items():
        said = json.loads(control.get(f"piece:{key.rpartition('|')[0]}") or "{}")
        report = Report.loads(raw)
        current = (said.get("state"), said.get("node"), said.get("attempt")) == ("running", report.node, report.attempt)
        if current and said.get("counted"):
            done += min(report.done, report.total)
    return round(99.0 * min(done, int(total)) / int(total), 1)
