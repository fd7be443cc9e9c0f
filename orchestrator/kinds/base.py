"""What a job kind is: a spec model, a plan model and a compiler from one to the other.

A kind checks a spec against the farm (its catalog, storage roots, nodes) and compiles it
into a typed plan and the pieces that carry it out. Everything after that (sending pieces,
claiming, retrying, waiting on dependencies, settling the job) is the engine's, the same
for every kind. Flamenco's job compilers are the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic

from orchestrator.models import FramePool, JobRecord, PlanT, SpecT, TaskRecord

if TYPE_CHECKING:
    from orchestrator.farm import Farm


class SubmitRefused(ValueError):
    """A spec the farm cannot run; `field` names what is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass
class Leftovers:
    """Paths to remove (glob patterns: files, or folders with what they hold), then folders to remove if empty."""

    remove: list[str] = field(default_factory=list)
    if_empty: list[str] = field(default_factory=list)


@dataclass
class Compiled(Generic[PlanT]):
    """A kind's answer to a spec: its plan and its pieces (in the order users see them)."""

    plan: PlanT
    pieces: list[TaskRecord]
    priority: int = 5
    max_attempts: int | None = None  # None: the farm's setting
    frame_pool: FramePool | None = None  # frames that free nodes take as they come (pulled renders)


class JobKind(ABC, Generic[SpecT, PlanT]):
    """One kind of job. Subclasses name the kind, its models, and compile.

    Note: `compile` runs in the submitting process (the CLI, the MCP server), which may not
    see the storage: it reasons about paths, never touches them.
    """

    name: ClassVar[str]
    spec_model: ClassVar[type[Any]]
    plan_model: ClassVar[type[Any]]
    fail_fast: ClassVar[bool] = True  # a piece that fails for good fails the whole job
    task_modules: ClassVar[tuple[str, ...]] = ()  # where its pieces' Celery tasks live (workers import them)

    @cached_property
    def record(self) -> type[JobRecord[SpecT, PlanT]]:
        """The record model of this kind: spec and plan read typed."""
        return JobRecord[self.spec_model, self.plan_model]  # type: ignore[name-defined]

    def parse(self, spec: Any) -> SpecT:
        return spec if isinstance(spec, self.spec_model) else self.spec_model.model_validate(spec)

    @abstractmethod
    def compile(self, farm: Farm, spec: SpecT, job_id: str) -> Compiled[PlanT]:
        """Check `spec` against the farm and cut it into pieces; `SubmitRefused` names what is wrong."""

    def leftovers(self, record: JobRecord[SpecT, PlanT], generation: int) -> Leftovers:
        """What a cancelled job's generations up to `generation` left on storage, for `tasks.discard` to remove."""
        return Leftovers()

    def summary(self, record: JobRecord[SpecT, PlanT]) -> str:
        """One line on what the job will do (after `job ID queued:`)."""
        return f"{len(record.tasks)} piece(s)"

    def shown(self, record: JobRecord[SpecT, PlanT], piece: TaskRecord) -> str:
        """What Flower shows for a piece's message instead of its bare arguments."""
        return f"job {record.id} | {record.kind} {piece.name}"
