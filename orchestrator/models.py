"""What a job is: the parts of specs every kind shares, and the record the farm keeps of each job.

Each job kind owns its spec and plan models (`orchestrator.kinds`); the record here holds
them typed (`JobRecord[RenderSpec, RenderPlan]`), with the pieces the kind compiled.
"""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from orchestrator.costs import Steps, frames_for, work
from orchestrator.finish import finish_time

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]
# waiting: for the jobs it runs after (`JobRecord.after`) to succeed; nothing of it is sent meanwhile.
JobState = Literal["waiting", "queued", "running", "stitching", "succeeded", "failed", "cancelled"]
# waiting: for the pieces it runs after; pending: ready, a message carries it.
TaskState = Literal["waiting", "pending", "running", "done", "failed", "cancelled", "skipped"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})
SETTLED: frozenset[str] = frozenset({"done", "failed", "cancelled", "skipped"})
SpecT = TypeVar("SpecT", bound=BaseModel)
PlanT = TypeVar("PlanT", bound=BaseModel)


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
    last_frames: tuple[float, int] | None = None  # when it last reported frames since, and how many


def piece_speed(piece: TaskRecord, now: float, costs: Steps = ()) -> float | None:
    """Work per second of a piece rendering now (frames per second when `costs` tell nothing), between its
    first and its last report of frames (its start cost left out); None until two reports tell.

    Note: between reports its count stands still while the clock runs, so the speed is taken
    at its last report, not now: a record written for another piece's report would otherwise
    see this one slow down.
    """
    if piece.state != "running" or piece.first_frames is None:
        return None
    seen, frames = piece.first_frames
    last, done = piece.last_frames or (now, piece.frames_done)
    if done <= frames or last <= seen:
        return None
    first = piece.start or 0
    return work(costs, first + frames, first + done - 1) / (last - seen)


def rest_of(piece: TaskRecord, costs: Steps) -> float:
    """The work left of a piece: its frames not rendered yet, weighed by what they cost."""
    if piece.start is None or piece.end is None or piece.frames_done >= piece.frames_total:
        return float(max(0, piece.frames_total - piece.frames_done))
    return work(costs, piece.start + piece.frames_done, piece.end)


class FramePool(BaseModel):
    """A render's frames that no piece has taken yet: each free node takes the next range.

    Note: pieces of a pulled render are cut when a node claims them (`lifecycle.claim`), sized
    from that node's speed (`orchestrator.sizing`); until then a piece is `open` (no range).
    """

    start: int
    end: int
    next: int  # the first frame no piece has taken
    made: int = 0  # pieces cut so far, named "segment <n>"
    open_pieces: int = 1  # how many open pieces wait in the queue at once (one per node that could take one)
    target_seconds: float  # how long a piece should take, far from the end
    longest_seconds: float = float("inf")  # no piece expected to take longer (half the render time limit)
    start_seconds: float  # what starting one render costs on Resolve, as far as the farm knows
    min_frames: int  # no piece shorter, unless that is all that is left
    speed_key: str  # codec and picture size: speeds are remembered per key
    costs: Steps = ()  # what each frame costs to render, as far as the farm knows (`orchestrator.costs`)
    work_dir: str
    extension: str

    @property
    def remaining(self) -> int:
        return max(0, self.end - self.next + 1)

    @property
    def count(self) -> int:
        return self.end - self.start + 1

    def work(self, start: int, end: int) -> float:
        """What frames start..end cost to render (`orchestrator.costs`): their count when all are alike."""
        return work(self.costs, start, end)

    def frames_for(self, amount: float) -> int:
        """How many of the frames left, from the next, make `amount` of work."""
        return frames_for(self.costs, self.next, self.end, amount)


class JobRecord(BaseModel, Generic[SpecT, PlanT]):
    """A job as the farm tracks it in Redis: the source of truth for what users see.

    Note: parametrised by its kind's spec and plan (`kinds.get(kind).record`), so that both
    are read typed once, where the record is read.
    """

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
    frame_pool: FramePool | None = None  # a pulled render's frames not yet taken

    def task(self, name: str) -> TaskRecord:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"job {self.id} has no task {name!r}")

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def refresh_progress(self, now: float | None = None) -> None:
        """Derive progress and ETA from the pieces' frames, or from settled pieces when none counts frames.

        The ETA is the frames left over the summed speed of the pieces rendering now (each
        measured from its own progress, its start cost left out), so it follows the farm as
        nodes join, leave or slow down in a heavy section.
        """
        now = now or time.time()
        framed = [t for t in self.tasks if t.frames_total]
        if framed or self.frame_pool is not None:
            done, total = self.frames()
        else:
            total, done = len(self.tasks), sum(1 for t in self.tasks if t.state in SETTLED)
        self.progress = 100.0 if self.state == "succeeded" else (99.0 * done / total if total else 0.0)
        if self.finished:
            self.eta_seconds = 0.0
            return
        if not (framed or self.frame_pool) or not done:
            return
        self.eta_seconds = self._eta(done, total - done, now)

    def _eta(self, done: int, left: int, now: float) -> float | None:
        """Seconds until the frames left are rendered: their work over the summed speed of the pieces
        rendering now, and never before the piece that will take longest is done.

        Note: a piece still starting (no frames yet) is counted, after what is left of its start,
        at the speed it was sized by (`details.sized_by`), else at the median speed of those
        rendering (the slowest node, just done with the audio pass, would otherwise count as
        a typical one); a tail copy adds no frames and is left out.
        A pulled render weighs frames by what they cost (`orchestrator.costs`): the frames of a
        heavy section take longer than those rendered so far. Its frames no piece has taken yet
        cost each node rendering now a start more when its piece is done (`finish_time`).
        """
        running = [t for t in self.tasks if t.state == "running" and t.frames_total and not t.params.get("copy_of")]
        pool = self.frame_pool
        costs = pool.costs if pool else ()
        measured = {t.name: speed for t in running if (speed := piece_speed(t, now, costs))}
        if not measured:
            rate = done / max(now - self.started_at, 1e-6) if self.started_at else 0.0  # the job's rate so far
            return round(left / rate, 1) if rate else None
        typical = statistics.median(measured.values())
        starting = pool.start_seconds if pool else 0.0
        longest, owed, free_at, speeds = 0.0, 0.0, {}, {}
        for piece in running:
            speed = measured.get(piece.name) or float(piece.details.get("sized_by") or typical)
            still_starting = 0.0 if piece.name in measured else max(0.0, starting - (now - (piece.started_at or now)))
            rest = rest_of(piece, costs)
            ends = still_starting + rest / speed
            longest, owed = max(longest, ends), owed + rest
            free_at[piece.name], speeds[piece.name] = ends, speed
        rate = sum(speeds.values())
        if pool is None:
            return round(max(longest, left / rate), 1)
        untaken = pool.work(pool.next, pool.end) if pool.remaining else 0.0
        untaken += sum(rest_of(t, costs) for t in self.tasks
                       if t.state == "pending" and t.frames_total and not t.params.get("copy_of"))  # fmt: skip
        if not untaken:
            return round(max(longest, owed / rate), 1)
        return round(max(longest, finish_time(untaken, speeds, free_at, pool.start_seconds)), 1)

    def frames(self) -> tuple[int, int]:
        """(frames rendered, frames to render) of the job's pieces that count frames.

        Note: a pulled render counts the frames no piece has taken yet, and a spare copy of a
        piece (`copy_of`) counts nothing: its frames are the original's.
        """
        counted = [t for t in self.tasks if t.frames_total and not t.params.get("copy_of")]
        done = sum(t.frames_done for t in counted)
        if self.frame_pool is not None:
            return done, self.frame_pool.count
        return done, sum(t.frames_total for t in counted)

    def public(self) -> dict[str, Any]:
        """The JSON form the CLI, the MCP server and the docs show."""
        return self.model_dump(mode="json")
