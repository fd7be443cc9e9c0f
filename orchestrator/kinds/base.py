"""What a job kind is: a spec model, a plan model and a compiler from one to the other.

A kind checks a spec against the farm (its catalog, storage roots, nodes) and compiles it
into a typed plan and the pieces that carry it out. Everything after that (sending pieces,
claiming, retrying, waiting on dependencies, settling the job) is the engine's, the same
for every kind. Flamenco's job compilers are the model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal

from pydantic import AliasChoices, BaseModel, Field

from orchestrator.kinds.face import Face
from orchestrator.models import JobRecord, PlanT, SpecT, TaskRecord
from orchestrator.refusals import Refused
from orchestrator.rules import KindRules

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView


SubmitRefused = Refused  # the name the engine and the kinds give the one refusal (`orchestrator.refusals`)


class OutputExists(Refused):
    """A render whose output name names a file already, and whose spec does not say `overwrite`.

    Note: `free` is the next free version of the name (`orchestrator.outputs.next_version`): an
    `output_name` that is not taken now, which an agent asked about the file may choose.
    """

    def __init__(self, existing: str, free: str) -> None:
        super().__init__("overwrite", f"{existing} exists: set overwrite (--overwrite in the CLI) to replace it, "
                                      f"or give another output_name (the next free one is {free!r})")  # fmt: skip
        self.existing = existing
        self.free = free


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
    schedule: BaseModel | None = None  # the kind's run-time state (a pulled render's frame pool)


def record_model(
    name: str, spec: type[Any], plan: type[Any], state: type[Any] | None = None, rules: KindRules | None = None,
    state_aliases: Sequence[str] = (),
) -> type[JobRecord[Any, Any, Any]]:  # fmt: skip
    """The record model of a kind: its spec, plan and run-time state read typed, `kind` fixed to its name (the
    store's discriminated union picks the model by it), its rules bound (`orchestrator.rules`).

    Note: `state_aliases` are earlier names of the state's field in stored records, read as `schedule`.
    """
    annotations: dict[str, Any] = {"kind": Literal[name]}
    namespace: dict[str, Any] = {"__annotations__": annotations, "__module__": __name__, "rules": rules or KindRules()}
    if state is not None:
        annotations["schedule"] = state | None
        namespace["schedule"] = Field(None, validation_alias=AliasChoices("schedule", *state_aliases))
    base = JobRecord[spec, plan, state]  # type: ignore[valid-type]
    return type(f"{name.title()}Record", (base,), namespace)


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
    state_model: ClassVar[type[Any] | None] = None  # its run-time state on the record (`JobRecord.schedule`)
    state_aliases: ClassVar[tuple[str, ...]] = ()  # earlier names of that field in stored records
    rules: ClassVar[KindRules] = KindRules()  # what it adds to the lifecycle's rules
    face: ClassVar[Face | None] = None  # its CLI command and MCP tool, made from it (`orchestrator.kinds.face`)
    followed: ClassVar[bool] = True  # a submit's answer says to follow the job (`wait_for_job`); False: it waited

    @cached_property
    def record(self) -> type[JobRecord[SpecT, PlanT, Any]]:
        """The record model of this kind: spec, plan and run-time state read typed, its rules bound."""
        return record_model(self.name, self.spec_model, self.plan_model, self.state_model, self.rules,
                            self.state_aliases)  # fmt: skip

    def parse(self, spec: Any) -> SpecT:
        return spec if isinstance(spec, self.spec_model) else self.spec_model.model_validate(spec)

    @abstractmethod
    def compile(self, farm: FarmView, spec: SpecT, job_id: str) -> Compiled[PlanT]:
        """Check `spec` against the farm and cut it into pieces; `SubmitRefused` names what is wrong."""

    def leftovers(self, record: JobRecord[SpecT, PlanT], generation: int) -> Leftovers:
        """What a cancelled job's generations up to `generation` left on storage, for `tasks.discard` to remove."""
        return Leftovers()

    def summary(self, record: JobRecord[SpecT, PlanT]) -> str:
        """One line on what the job will do (after `job ID queued:`)."""
        return f"{len(record.tasks)} piece(s)"

    def claim_context(self, farm: FarmView, record: JobRecord[SpecT, PlanT], name: str, node: str,
                      candidates: list[str]) -> Any:  # fmt: skip
        """What the kind's rules need from the farm to claim piece `name` on `node`, or to record it done
        (`KindRules.on_claim`, `on_done`); read by `PieceTask` inside the transaction, before the transition.

        Note: it may run more than once per claim (a conflicting write re-runs the transaction)."""
        return None

    def estimate(self, farm: FarmView, record: JobRecord[SpecT, PlanT]) -> float | None:
        """How long the job should take, in seconds, from what the farm remembers; None: no estimate."""
        return None

    def shown(self, record: JobRecord[SpecT, PlanT], piece: TaskRecord) -> str:
        """What Flower shows for a piece's message instead of its bare arguments."""
        return f"job {record.id} | {record.kind} {piece.name}"
