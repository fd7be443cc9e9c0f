"""The `hold` kind: a job that holds one post worker for a number of seconds, then succeeds, or fails as asked.

What it is for: checking the farm's path from a submit to a finished job without Resolve or
storage (the queue, a worker, progress, following, cancelling, a failure's report): an agent
client's task handling (the MCP conformance suite's `slow_compute` and `failing_job` are this
kind, `mcp_server.conformance`), a new deploy's post workers. Its one piece counts tenths of a
second as its progress and stops at a cancel within a progress interval, as a render does. With
`questions` it first asks its client to confirm each (an `ASK` piece: the job is `input_required`
until they are answered, `jobs.answer`; a no cancels it).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field

from orchestrator import kinds
from orchestrator.kinds.base import Compiled, JobKind
from orchestrator.models import ASK, JobRecord, Placement, Spec, TaskRecord

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView

HOLD = "tasks.hold"


class HoldSpec(Spec):
    """How long to hold a worker, and how the job ends."""

    seconds: float = Field(ge=0, le=3600, description="how long the piece runs")
    fail: str | None = Field(None, min_length=1, max_length=500, description="fail with this error when the time is up")
    label: str | None = Field(None, pattern=r"^[\w .,:;!?'()-]{1,80}$", description="names its piece: 'hold <label>'")
    questions: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")], Annotated[str, Field(max_length=500)]] = (
        Field(default_factory=dict, max_length=8, description="yes-or-no questions (key -> question) asked first")
    )
    priority: int = Field(5, ge=0, le=9)


class HoldPlan(BaseModel):
    seconds: float
    fails: bool


class HoldKind(JobKind[HoldSpec, HoldPlan]):
    """One piece on a post worker that runs for the asked seconds."""

    name = "hold"
    spec_model = HoldSpec
    plan_model = HoldPlan
    task_modules = ("tasks.hold",)

    def compile(self, farm: FarmView, spec: HoldSpec, job_id: str) -> Compiled[HoldPlan]:
        name = f"hold {spec.label}" if spec.label else "hold"
        piece = TaskRecord(name=name, kind="hold", task=HOLD, placement=Placement(pool="post"),
                           frames_total=max(1, math.ceil(spec.seconds * 10)),
                           params={"seconds": spec.seconds, "fail": spec.fail, "label": spec.label})  # fmt: skip
        pieces = [piece]
        if spec.questions:  # asked before it holds anything: the job is `input_required` until answered
            pieces.insert(0, TaskRecord(name="confirm", kind=ASK, placement=Placement(pool="post"),
                                        params={"questions": dict(spec.questions)}))  # fmt: skip
            piece.after = ["confirm"]
        return Compiled(HoldPlan(seconds=spec.seconds, fails=spec.fail is not None), pieces, priority=spec.priority)

    def summary(self, record: JobRecord[Any, Any]) -> str:
        return f"hold a worker {record.plan.seconds:g} s" + (", then fail" if record.plan.fails else "")


kinds.register(HoldKind())
