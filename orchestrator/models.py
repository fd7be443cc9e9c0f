"""What a job is: the specs users submit and the record the farm keeps of each job.

Specs are validated here (shape, ranges, names); what only the farm can tell (does the
project exist, is the output inside the storage roots) is checked by `jobs.submit`.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00-\x1f]+$")]
JobState = Literal["queued", "running", "stitching", "succeeded", "failed", "cancelled"]
TaskState = Literal["pending", "running", "done", "failed", "cancelled", "skipped"]
FINISHED: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})

# Keys the farm sets itself on every render; a spec may not override them.
FARM_RENDER_KEYS = frozenset(
    {"SelectAllFrames", "MarkIn", "MarkOut", "TargetDir", "CustomName", "ExportVideo", "ExportAudio"}
)
# Every other key of Resolve's SetRenderSettings (fusionscript-stubs RenderSettings).
RENDER_SETTING_KEYS = frozenset({
    "UniqueFilenameStyle", "FormatWidth", "FormatHeight", "FrameRate", "PixelAspectRatio", "VideoQuality",
    "AudioCodec", "AudioBitDepth", "AudioSampleRate", "ColorSpaceTag", "GammaTag", "ExportAlpha",
    "EncodingProfile", "MultiPassEncode", "AlphaMode", "NetworkOptimization", "ClipStartFrame",
    "TimelineStartTimecode", "ReplaceExistingFilesInPlace", "ExportSubtitle", "SubtitleFormat",
})  # fmt: skip
# Codecs whose every frame is a keyframe: segments join frame-exactly by stream copy.
INTRA_CODECS = frozenset(
    {
        "ProRes422HQ",
        "ProRes422",
        "ProRes4444",
        "ProRes4444XQ",
        "ProResLT",
        "ProResProxy",
        "DNxHRHQ",
        "DNxHRHQX",
        "DNxHRSQ",
        "DNxHRLB",
        "DNxHR444",
        "DNxHD",
    }
)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Database(_Spec):
    """A Resolve project database every host can reach."""

    type: Literal["Disk", "PostgreSQL"] = "PostgreSQL"
    name: Name
    host: str = Field("127.0.0.1", max_length=255)

    def as_resolve(self) -> dict[str, str]:
        info = {"DbType": self.type, "DbName": self.name}
        if self.type == "PostgreSQL":
            info["IpAddress"] = self.host
        return info


class ProjectRef(_Spec):
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


class FrameRange(_Spec):
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


class RenderSpec(ProjectRef):
    """A render of one timeline (or a range of it), split across hosts or not.

    Defaults when only project and timeline are given: QuickTime ProRes 422 HQ, the whole
    timeline, split `auto`, audio on, output in the first storage root named
    `<project>_<timeline>`.
    """

    timeline: Name
    format: str | None = Field(None, min_length=1, max_length=64, description="format key, e.g. mov, mxf_op1a, mp4")
    codec: str | None = Field(None, min_length=1, max_length=64, description="codec key, e.g. ProRes422HQ")
    preset: Name | None = None
    settings: dict[str, str | int | float | bool] = Field(default_factory=dict)
    frames: FrameRange | None = None
    output_dir: str | None = Field(None, min_length=1, max_length=4096, description="inside a storage root")
    output_name: str | None = Field(None, min_length=1, max_length=200, description="file name, no extension")
    split: Literal["auto", "none"] | Annotated[int, Field(ge=1, le=999)] = "auto"
    audio: bool = True
    priority: int = Field(5, ge=0, le=9, description="0 is the most urgent")
    node: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(default_factory=list, max_length=16)
    max_attempts: int | None = Field(None, ge=1, le=20)

    @field_validator("settings")
    @classmethod
    def _settings(cls, settings: dict[str, Any]) -> dict[str, Any]:
        for key in settings:
            if key in FARM_RENDER_KEYS:
                raise ValueError(f"{key} is set by the farm; use frames, output_dir, output_name or audio")
            if key not in RENDER_SETTING_KEYS:
                raise ValueError(f"{key!r} is not a Resolve render setting")
        return settings

    @field_validator("output_name")
    @classmethod
    def _name(cls, name: str | None) -> str | None:
        if name is not None and (
            name in (".", "..") or name.startswith("..") or any(c in name for c in "/\\:") or not name.isprintable()
        ):
            raise ValueError("must be a plain file name, not a path (no '/', '\\', ':', '..' or control characters)")
        return name

    @model_validator(mode="after")
    def _codec(self) -> RenderSpec:
        if self.preset and (self.format or self.codec):
            raise ValueError("give either a preset or format/codec, not both")
        if self.preset and isinstance(self.split, int) and self.split > 1:
            raise ValueError("a preset render cannot be split: name its format and codec to split it")
        return self

    @property
    def format_key(self) -> str | None:
        return None if self.preset else (self.format or "mov")

    @property
    def codec_key(self) -> str | None:
        return None if self.preset else (self.codec or "ProRes422HQ")

    @property
    def intra(self) -> bool:
        return self.codec_key in INTRA_CODECS


class EditTarget(ProjectRef):
    """One timeline of a project, or all its timelines when `timeline` is omitted."""

    timeline: Name | None = None


class EditSpec(_Spec):
    """A batch edit: the same operations applied to each target, one task per timeline.

    Note: the operations are the bridge's edit vocabulary; the node validates them fully
    before it touches anything, and a refusal fails the job with the field and the reason.
    """

    targets: list[EditTarget] = Field(min_length=1, max_length=10_000)
    operations: list[dict[str, Any]] = Field(min_length=1, max_length=10_000)
    dry_run: bool = False
    priority: int = Field(5, ge=0, le=9)
    node: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    tags: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]] = Field(default_factory=list, max_length=16)
    max_attempts: int | None = Field(None, ge=1, le=20)

    @field_validator("operations")
    @classmethod
    def _ops(cls, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, op in enumerate(operations):
            if not isinstance(op.get("op"), str) or not op["op"]:
                raise ValueError(f"operation {i} has no 'op' naming what it does")
        return operations


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


class TaskRecord(BaseModel):
    """One task of a job as users see it: where it runs, how far it got, what it made."""

    name: str
    kind: Literal["segment", "audio", "stitch", "render", "edit"]
    state: TaskState = "pending"
    node: str | None = None
    attempts: int = 0
    frames_done: int = 0
    frames_total: int = 0
    start: int | None = None  # first timeline frame (renders)
    end: int | None = None  # last timeline frame, inclusive
    output: str | None = None
    target: dict[str, Any] | None = None  # edits: project and timeline
    results: list[dict[str, Any]] = Field(default_factory=list)
    started_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    celery_id: str | None = None
    failed_on: list[str] = Field(default_factory=list)


class JobRecord(BaseModel):
    """A job as the farm tracks it in Redis: the source of truth for what users see."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:16])
    kind: Literal["render", "edit"]
    spec: dict[str, Any]
    state: JobState = "queued"
    progress: float = 0.0  # percent
    eta_seconds: float | None = None
    created_at: float = Field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    tasks: list[TaskRecord] = Field(default_factory=list)
    outputs: list[str] = Field(default_factory=list)
    errors: list[str] = Field(default_factory=list)
    plan: dict[str, Any] = Field(default_factory=dict)
    cancel_requested: bool = False
    blocked_nodes: dict[str, int] = Field(default_factory=dict)  # node -> failures in this job
    version_key: str = ""

    def task(self, name: str) -> TaskRecord:
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(f"job {self.id} has no task {name!r}")

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def refresh_progress(self, now: float | None = None) -> None:
        """Derive progress and ETA from the tasks' frames (edits: from finished targets)."""
        now = now or time.time()
        if self.kind == "edit":
            done = sum(1 for t in self.tasks if t.state in ("done", "failed", "skipped"))
            self.progress = 100.0 * done / len(self.tasks) if self.tasks else 0.0
            return
        video = [t for t in self.tasks if t.kind in ("segment", "render")]
        total = sum(t.frames_total for t in video)
        done = sum(t.frames_done for t in video)
        self.progress = 100.0 if self.state == "succeeded" else (99.0 * done / total if total else 0.0)
        if self.started_at and done and self.state in ("running", "stitching"):
            rate = done / max(now - self.started_at, 1e-6)
            self.eta_seconds = round((total - done) / rate, 1) if rate else None
        elif self.finished:
            self.eta_seconds = 0.0

    def public(self) -> dict[str, Any]:
        """The JSON form the CLI, the MCP server and the docs show."""
        return self.model_dump(mode="json")
