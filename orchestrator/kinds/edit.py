"""The `edit` kind: a batch of edit operations applied to timelines, one piece per timeline.

Pieces are independent (nothing waits for anything) and a failed timeline does not stop the
others: the job settles when every timeline has, failed if any failed.
"""

from __future__ import annotations

import ntpath
import os
from pathlib import PurePath
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, Field, field_validator

from orchestrator import kinds
from orchestrator.kinds import checks
from orchestrator.kinds.base import Compiled, JobKind, SubmitRefused
from orchestrator.kinds.face import Face, OnNode, Priority, WithTags
from orchestrator.models import ASK, JobRecord, Name, Placement, ProjectRef, Spec, TaskRecord, project_lease
from orchestrator.rules import KindRules

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView

APPLY_EDITS = "tasks.apply_edits"


class EditTarget(ProjectRef):
    """One timeline of a project, or all its timelines when `timeline` is omitted."""

    timeline: Name | None = None


class EditSpec(Spec):
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
    confirm_over: int | None = Field(
        None,
        ge=0,
        description="ask to confirm when the dry run shows more changes than this (default: the "
        "farm's `edit_confirm_over`; 0: never ask)",
    )

    @field_validator("operations")
    @classmethod
    def _ops(cls, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, op in enumerate(operations):
            if not isinstance(op.get("op"), str) or not op["op"]:
                raise ValueError(f"operation {i} has no 'op' naming what it does")
        return operations


class EditPlan(BaseModel):
    """How a batch edit is carried out: how many timelines, on which nodes, for real or not."""

    targets: int
    known_nodes: list[str]
    dry_run: bool = False
    confirm_over: int = 0  # more changes than this in the counting dry run are asked about first (0: never)


EditJob = JobRecord[EditSpec, EditPlan]


def _check_paths(farm: FarmView, operations: list[dict[str, Any]]) -> None:
    """Files the operations read (media to import, LUT files) must lie inside the media roots."""
    for i, op in enumerate(operations):
        if op.get("op") == "import_media" and isinstance(op.get("paths"), list):
            for j, path in enumerate(op["paths"]):
                if isinstance(path, str):
                    checks.media_path(farm, path, f"operations.{i}.paths.{j}")
        elif op.get("op") == "apply_lut" and isinstance(op.get("path"), str):
            path = op["path"]
            if not _in_lut_folder(path):
                checks.media_path(farm, path, f"operations.{i}.path")


def _library(target: EditTarget) -> str | None:
    return target.database.name if target.database else None


def _in_lut_folder(path: str) -> bool:
    """A relative LUT path names a file in Resolve's own LUT folder; anything absolute or climbing out does not."""
    return not (os.path.isabs(path) or ntpath.isabs(path) or ".." in PurePath(path.replace("\\", "/")).parts)


def _counted_first(edits: list[TaskRecord]) -> list[TaskRecord]:
    """The edits behind a confirmation: a dry run of each target counts its changes (`count <target>`, no
    lease), then `confirm` (an `ASK` piece: `EditRules.questions` asks only when the count is over the
    plan's `confirm_over`), then the edits themselves."""
    counts = [e.model_copy(update={"name": f"count {e.name}", "kind": "count", "lease": None,
                                   "params": {"dry_run": True}}) for e in edits]  # fmt: skip
    gate = TaskRecord(name="confirm", kind=ASK, placement=Placement(pool="post"), after=[c.name for c in counts])
    return [*counts, gate, *(e.model_copy(update={"after": ["confirm"]}) for e in edits)]


class EditRules(KindRules):
    """An edit asks to confirm a change larger than its plan's `confirm_over`, counted by its dry runs."""

    def questions(self, record: JobRecord[Any, Any, Any], piece: TaskRecord) -> dict[str, str]:
        counted = [t for t in record.tasks if t.kind == "count"]
        changes = sum(int(t.details.get("changes", 0)) for t in counted)
        over = int(record.plan.confirm_over)
        if not over or changes <= over:
            return {}
        timelines = len(counted)
        return {"confirm": f"Apply {changes:,} change(s) to {timelines} timeline(s)? (the dry run counted them; "
                           f"more than {over:,} are confirmed first)"}  # fmt: skip


class EditArguments(BaseModel):
    """What `batch_edit` and `resolve-farm edit` take: an edit spec, described for agents."""

    targets: list[dict[str, Any]] = Field(
        description="[{'project': 'Demo', 'timeline': 'Main'}] or {'project': 'Demo'} for all its timelines"
    )
    operations: list[dict[str, Any]] = Field(
        description="edit operations, e.g. [{'op': 'add_marker', 'frame': 48, 'color': 'Red', 'name': 'fix'}]; "
        "ops: add_marker, delete_markers, set_clip_color, set_clip_property, set_metadata, rename_timeline, "
        "duplicate_timeline, apply_lut, set_cdl, import_media, append_clips"
    )
    dry_run: bool = Field(False, description="report what would change and change nothing")
    confirm_over: int | None = Field(
        None,
        ge=0,
        description="dry-run first and ask to confirm (state input_required, answer_job) when more items "
        "would change than this; default: the farm's setting (off unless set); 0: never ask",
    )
    priority: Priority = 5
    node: OnNode = None
    tags: WithTags = None
    max_attempts: int | None = Field(None, ge=1, le=20, description="attempts per timeline before it fails")


class EditKind(JobKind[EditSpec, EditPlan]):
    """Batch edits fanned out across hosts, one timeline a piece."""

    name = "edit"
    followed = False  # batch_edit answers once the job is done (or asks): nothing to follow
    face = Face(
        command="edit", tool="batch_edit", title="Apply the same edits to many timelines", destructive=True,
        description=(
            "Apply the same edits to several timelines, one task per timeline, spread across machines.\n\n"
            'Example: batch_edit(targets=[{"project": "Demo", "timeline": "Main"}],\n'
            '    operations=[{"op": "set_clip_color", "items": {"track": 1}, "color": "Orange"}], dry_run=True)\n'
            "Answers with the job id, and with the per-item report when the job finishes within wait_seconds (or,\n"
            "with confirm_over, what it asks: state input_required, `asking`, answered with answer_job)."
        ),
        arguments=EditArguments, from_file=True, options={"tags": "--tag"},
    )  # fmt: skip
    spec_model = EditSpec
    plan_model = EditPlan
    task_modules = ("tasks.edit",)
    fail_fast = False  # one timeline refusing its edits does not stop the others
    rules = EditRules()

    def compile(self, farm: FarmView, spec: EditSpec, job_id: str) -> Compiled[EditPlan]:
        names = checks.known_nodes(farm, spec.node, spec.tags)
        where = Placement(pool="edit", node=spec.node, tags=tuple(sorted(spec.tags)))
        made: list[TaskRecord] = []
        _check_paths(farm, spec.operations)
        for i, target in enumerate(spec.targets):
            checks.database(farm, target, f"targets.{i}.")
            if target.drp:
                checks.confined(farm, target.drp, f"targets.{i}.drp")
            if target.timeline:
                checks.timeline(farm, target, target.timeline, names, field=f"targets.{i}.")
                timelines = [target.timeline]
            else:
                database = target.database.name if target.database else None
                projects = farm.catalog.projects(names, database)
                if target.project not in projects:
                    raise SubmitRefused(f"targets.{i}.project", f"unknown project {target.project!r}")
                timelines = projects[target.project]
            # A dry run changes nothing, so it needs no write lease and may run beside writers.
            lease = None if spec.dry_run else project_lease(_library(target), target.project)
            for timeline in timelines:
                made.append(TaskRecord(
                    name=f"{target.project}/{timeline}", kind="edit", task=APPLY_EDITS, placement=where,
                    target={**target.model_dump(mode="json"), "timeline": timeline}, lease=lease,
                ))  # fmt: skip
        if len({t.name for t in made}) != len(made):
            raise SubmitRefused("targets", "a timeline is targeted twice")
        over = spec.confirm_over if spec.confirm_over is not None else farm.settings.edit_confirm_over
        over = 0 if spec.dry_run else over
        plan = EditPlan(targets=len(made), known_nodes=names, dry_run=spec.dry_run, confirm_over=over)
        return Compiled(plan, _counted_first(made) if over else made, priority=spec.priority,
                        max_attempts=spec.max_attempts)  # fmt: skip

    def summary(self, record: JobRecord[Any, Any]) -> str:
        return f"{record.plan.targets} timeline(s){' (dry run)' if record.plan.dry_run else ''}"

    def shown(self, record: JobRecord[Any, Any], piece: TaskRecord) -> str:
        spec: EditSpec = record.spec
        return f"job {record.id} | edit {piece.name} | {len(spec.operations)} operation(s){' (dry run)' * spec.dry_run}"


kinds.register(EditKind())
