"""What a job is: the parts of specs every kind shares, and the record the farm keeps of each job.

Each job kind owns its spec and plan models (`orchestrator.kinds`) and, when it schedules its
pieces its own way, a model of its run-time state; the record here holds them typed
(`JobRecord[RenderSpec, RenderPlan, FramePool]`), with the pieces the kind compiled and the
kind's rules (`orchestrator.rules`).
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, ClassVar, Generic, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import TypeVar

from orchestrator import telemetry
from orchestrator.rules import KindRules

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]
# waiting: for the jobs it runs after (`JobRecord.after`) to succeed; nothing of it is sent meanwhile.
# input_required: a piece asks its client a question (`ASK`); what waits for the answer is not sent.
JobState = Literal["waiting", "queued", "input_required", "running", "stitching", "succeeded", "failed", "cancelled"]
JOB_STATES: tuple[JobState, ...] = get_args(JobState)
# waiting: for the pieces it runs after; pending: ready, a message carries it; asking: an `ASK` piece, ready,
# waiting for its client's answers (no message: no worker runs it).
TaskState = Literal["waiting", "pending", "asking", "running", "done", "failed", "cancelled", "skipped"]
ASK = "ask"  # the kind of piece that asks its job's client to confirm, instead of running (`lifecycle.answer`)
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
RESOLVE_POOLS = ("render", "edit")  # pools every Resolve host serves
SETTLED: frozenset[str] = frozenset({"done", "failed", "cancelled", "skipped"})
SpecT = TypeVar("SpecT", bound=BaseModel)
PlanT = TypeVar("PlanT", bound=BaseModel)
StateT = TypeVar("StateT", default=Any)  # a kind's own run-time state (a pulled render's frame pool), or None
Work = Callable[[int, int], float]  # what frames start..end (inclusive) cost to render


class Spec(BaseModel):
    """A user's request, validated: unknown keys refused, frozen once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(Spec):
    """A Resolve project database every host can reach."""

    type: Literal["Disk", "PostgreSQL"] = "PostgreSQL"
    name: Name
    host: str = Field("127.0.0.1", max_length=255)

    def as_resolve(self) -> dict[str, str]:
        info = {"DbType": self.type, "DbName": self.name}
        if self.type == "PostgreSQL":
            info["IpAddress"] = self.host
        return info


class ProjectRef(Spec):
    """Which project: by name (with folders, "Clients/Acme/Ad_2026"), from a database or a .drp."""

    project: Name
    database: Database | None = None
    drp: str | None = Field(None, min_length=1, max_length=4096, description="a .drp on shared storage")

    @field_validator("drp")
    @classmethod
    def _drp(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().endswith(".drp"):
            raise ValueError("drp must name a .drp file")
        return value


class FrameRange(Spec):
    """Timeline frames start..end, both included (Resolve's MarkIn/MarkOut)."""

    start: int = Field(ge=0, le=100_000_000)
    end: int = Field(ge=0, le=100_000_000)

    @model_validator(mode="after")
    def _ordered(self) -> FrameRange:
        if self.start > self.end:
            raise ValueError(f"start ({self.start}) is after end ({self.end}): MarkIn must not be after MarkOut")
        return self

    @property
    def frames(self) -> int:
        return self.end - self.start + 1


# --- the record ---------------------------------------------------------------------------

RESULTS_SHOWN = 50


def results_report(results: list[dict[str, Any]], shown: int = RESULTS_SHOWN) -> dict[str, Any]:
    """A target's per-item report as people and agents read it: all of it when short; else
    counts per operation (`results_summary`), `shown` results with the refusals first, and how
    many more there are (`results_omitted`).

    Note: a batch over thousands of items would otherwise hand an agent megabytes of "ok"
    lines; the full report stays in the record (`resolve-farm status JOB --json`).
    """
    if len(results) <= shown:
        return {"results": results}
    summary: dict[int, dict[str, Any]] = {}
    for r in results:
        counts = summary.setdefault(r["op"], {"op": r["op"], "kind": r["kind"], "ok": 0, "refused": 0})
        counts["ok" if r["ok"] else "refused"] += 1
    first = sorted(results, key=lambda r: r["ok"])[:shown]  # refusals first; the sort is stable
    return {"results_summary": list(summary.values()), "results": first, "results_omitted": len(results) - len(first)}


class Placement(BaseModel):
    """Where a piece may run: a pool of workers (`render`, `edit`, `post`), narrowed to a node or tags.

    Note: `node` and `tags` narrow the Resolve pools only; a `post` piece runs on any post worker.
    """

    model_config = ConfigDict(frozen=True)

    pool: str
    node: str | None = None
    tags: tuple[str, ...] = ()


def project_lease(database: str | None, project: str) -> str:
    """The write lease name of `project` in the library `database` (None: the host's current one)."""
    return f"{database or ''}/{project}"


class TaskRecord(BaseModel):
    """One piece of a job as compiled and as it went: what runs it, where, after what, how far it got."""

    name: str
    kind: str  # what the piece is within its job: segment, audio, stitch, render, edit, ...
    task: str = ""  # the Celery task that runs it, by name
    placement: Placement = Placement(pool="render")
    after: list[str] = Field(default_factory=list)  # pieces that must be done first
    # True: it runs once every piece in `after` has settled, done or not, and works with what was made
    # (a proxies job's link, after its transcodes); it is never skipped for one of them failing.
    after_settled: bool = False
    job_state: Literal["running", "stitching"] = "running"  # what the job shows while this piece runs
    final: bool = False  # its output is one of the job's outputs
    params: dict[str, Any] = Field(default_factory=dict)  # the kind's own parameters
    state: TaskState = "pending"
    node: str | None = None
    attempts: int = 0
    frames_done: int = 0
    frames_total: int = 0
    start: int | None = None  # first timeline frame (renders)
    end: int | None = None  # last timeline frame, inclusive
    output: str | None = None
    target: dict[str, Any] | None = None  # edits: project and timeline
    lease: str | None = None  # the project it writes, held exclusively while it runs (orchestrator.leases)
    results: list[dict[str, Any]] = Field(default_factory=list)
    details: dict[str, Any] = Field(default_factory=dict)  # what it reported when done (running: `sized_by`)
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    celery_id: str | None = None  # the one message that may run it now
    generation: int = 0  # the job generation of its latest claim
    failed_on: list[str] = Field(default_factory=list)
    first_frames: tuple[float, int] | None = None  # when this attempt first reported frames, and how many

    def held_seconds(self, until: float) -> float:
        """Seconds its node has worked on it up to `until`: from its start to its end, or to `until` while
        it runs (its latest attempt: an earlier one's time is not kept)."""
        if self.started_at is None or self.started_at >= until:
            return 0.0
        if self.state == "running":
            return until - self.started_at
        if self.finished_at is None:
            return 0.0
        return max(0.0, min(self.finished_at, until) - self.started_at)

    last_frames: tuple[float, int] | None = None  # when it last reported frames since, and how many
    recent_frames: tuple[float, int] | None = None  # where the window of its recent reports begins (`RECENT_SECONDS`)


def frame_count(start: int, end: int) -> float:
    """What frames start..end cost when every frame costs the same: their count."""
    return float(end - start + 1)


RECENT_SECONDS = 3.0  # a piece's speed is read over its last reports spanning this long at least...
RECENT_SHARE = 0.1  # ...and this share of its frames (Resolve's percentage is coarse on long pieces)


def piece_speed(piece: TaskRecord, now: float, work: Work = frame_count) -> float | None:
    """Work per second of a piece rendering now (frames per second when `work` counts frames), over its recent
    reports of frames (`recent_frames` on: a node that slowed down part-way is seen at its speed now), else
    between its first and its last (its start cost left out); None until two reports tell.

    Note: between reports its count stands still while the clock runs, so the speed is taken
    at its last report, not now: a record written for another piece's report would otherwise
    see this one slow down.
    """
    if piece.state != "running" or piece.first_frames is None:
        return None
    seen, frames = piece.recent_frames or piece.first_frames
    last, done = piece.last_frames or (now, piece.frames_done)
    if done <= frames or last <= seen:
        return None
    first = piece.start or 0
    return work(first + frames, first + done - 1) / (last - seen)


def rest_of(piece: TaskRecord, work: Work = frame_count) -> float:
    """The work left of a piece: its frames not rendered yet, weighed by what they cost."""
    if piece.start is None or piece.end is None or piece.frames_done >= piece.frames_total:
        return float(max(0, piece.frames_total - piece.frames_done))
    return work(piece.start + piece.frames_done, piece.end)


class Running:
    """When each piece rendering now is done, from its measured speed: what an ETA is made of.

    Note: a piece still starting (no frames yet) is counted, after what is left of its start
    (`start_seconds`), at the speed it was sized by (`details.sized_by`), else at the median
    speed of those rendering (the slowest node, just done with the audio pass, would otherwise
    count as a typical one).
    """

    def __init__(self, pieces: list[TaskRecord], now: float, work: Work = frame_count, start_seconds: float = 0.0):
        measured = {t.name: speed for t in pieces if (speed := piece_speed(t, now, work))}
        self.measured = bool(measured)
        self.longest = self.owed = 0.0  # when the last of them is done; the work they still owe
        self.free_at: dict[str, float] = {}  # piece -> seconds until it is done
        self.speeds: dict[str, float] = {}  # piece -> its speed
        if not measured:
            return
        typical = statistics.median(measured.values())
        for piece in pieces:
            speed = measured.get(piece.name) or float(piece.details.get("sized_by") or typical)
            starting = 0.0 if piece.name in measured else max(0.0, start_seconds - (now - (piece.started_at or now)))
            rest = rest_of(piece, work)
            ends = starting + rest / speed
            self.longest, self.owed = max(self.longest, ends), self.owed + rest
            self.free_at[piece.name], self.speeds[piece.name] = ends, speed

    @property
    def rate(self) -> float:
        return sum(self.speeds.values())


class JobRecord(BaseModel, Generic[SpecT, PlanT, StateT]):
    """A job as the farm tracks it in Redis: the source of truth for what users see.

    Note: parametrised by its kind's spec, plan and run-time state (`kinds.get(kind).record`,
    which also binds the kind's `rules`), so that all are read typed once, where the record
    is read. A record of the generic class follows the generic rules only.
    """

    rules: ClassVar[KindRules] = KindRules()

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    kind: str
    spec: SpecT
    state: JobState = "queued"
    progress: float = 0.0  # percent
    eta_seconds: float | None = None
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    tasks: list[TaskRecord] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    plan: PlanT
    priority: int = 5
    max_attempts: int = 1
    fail_fast: bool = True  # a piece that fails for good fails the job at once (renders), or not (edits)
    generation: int = 1  # a retry starts the next; messages of an older one change nothing
    cancel_requested: bool = False
    cleanup_at: float | None = None  # when a cancelled job's leftovers are due to be removed
    blocked_nodes: dict[str, int] = Field(default_factory=dict)  # node -> failures in this job
    after: list[str] = Field(default_factory=list)  # jobs (ids) that must succeed before this one queues
    waiting_on: list[str] = Field(default_factory=list)  # those of `after` not seen succeeded yet
    version_key: str = ""
    schedule: StateT | None = None  # the kind's own run-time state (a pulled render's frames not yet taken)
    trace: dict[str, str] = Field(default_factory=dict)  # its trace context (`traceparent`): `orchestrator.telemetry`

    def task(self, name: str) -> TaskRecord:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"job {self.id} has no task {name!r}")

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def settled(self) -> bool:
        """Finished, and no piece of it still running (a cancel waits for running pieces to stop)."""
        return self.finished and not any(t.state == "running" for t in self.tasks)

    @property
    def trace_id(self) -> str | None:
        """The id of the job's trace (32 hex digits), where its spans are; None when it was submitted untraced."""
        return telemetry.trace_id(self.trace)

    def refresh_progress(self, now: float | None = None) -> None:
        """Derive progress and ETA from the pieces' frames (the kind's `frames` and `eta`), or from settled
        pieces when none counts frames."""
        now = now or time.time()
        framed = self.rules.counts_frames(self)
        if framed:
            done, total = self.frames()
        else:
            total, done = len(self.tasks), sum(1 for t in self.tasks if t.state in SETTLED)
        self.progress = 100.0 if self.state == "succeeded" else (99.0 * done / total if total else 0.0)
        if self.finished:
            self.eta_seconds = 0.0
            return
        if not framed or not done:
            return
        self.eta_seconds = self.rules.eta(self, done, total - done, now)

    def frames_eta(self, done: int, left: int, now: float) -> float | None:
        """Seconds until the frames left are rendered: their count over the summed speed of the pieces
        rendering now (each measured from its own progress, its start cost left out), and never before
        the piece that will take longest is done; the job's rate so far while none is measured.

        Note: it follows the farm as nodes join, leave or slow down; only pieces whose frames count
        toward the job's are counted (the kind's `counted`).
        """
        running = Running([t for t in self.tasks if t.state == "running" and self.rules.counted(self, t)], now)
        if not running.measured:
            return self.rate_eta(done, left, now)
        return round(max(running.longest, left / running.rate), 1)

    def rate_eta(self, done: int, left: int, now: float) -> float | None:
        """Seconds left at the job's rate so far (frames since it started); None before it did."""
        rate = done / max(now - self.started_at, 1e-6) if self.started_at else 0.0
        return round(left / rate, 1) if rate else None

    def asking(self) -> dict[str, str]:
        """What the job asks its client and has not been answered yet: key -> a yes-or-no question (the
        `asking` pieces' `params["questions"]`, `lifecycle.answer`)."""
        asked: dict[str, str] = {}
        for piece in self.tasks:
            if piece.state == "asking":
                answered = piece.details.get("answers", {})
                asked.update({k: q for k, q in piece.params.get("questions", {}).items() if k not in answered})
        return asked

    def node_seconds(self, until: float | None = None) -> float:
        """Seconds of Resolve hosts' time its pieces have had, up to `until` (now): what jobs of one priority
        share fairly (`orchestrator.pull.sizing.share_of`), and what the CLI and MCP show of it."""
        until = until or time.time()
        return sum(t.held_seconds(until) for t in self.tasks if t.placement.pool in RESOLVE_POOLS)

    def frames(self) -> tuple[int, int]:
        """(frames rendered, frames to render) of the job's pieces that count frames (the kind's `frames`)."""
        return self.rules.frames(self)

    def public(self) -> dict[str, Any]:
        """The JSON form the CLI, the MCP server and the docs show: the record, its node-seconds and trace id."""
        seconds = round(self.node_seconds(), 1)
        return {**self.model_dump(mode="json"), "node_seconds": seconds, "trace_id": self.trace_id}
