"""A job kind defined outside the farm's code, to prove adding one needs nothing else: `checksum`.

Spec: files under a storage root. Compiled into one `digest` piece per file (post workers,
no Resolve) and a `manifest` piece that waits for all of them and writes their digests to
one file. Registered on import; named in the `plugins` setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from orchestrator import kinds
from orchestrator.kinds import checks
from orchestrator.kinds.base import Compiled, JobKind
from orchestrator.kinds.face import Face
from orchestrator.models import JobRecord, Placement, TaskRecord

if TYPE_CHECKING:
    from orchestrator.farm import Farm


class ChecksumSpec(BaseModel):
    files: list[str] = Field(min_length=1, max_length=100)
    manifest: str = Field(min_length=1, max_length=200)
    priority: int = 5


class ChecksumArguments(BaseModel):
    files: list[str] = Field(min_length=1, max_length=100, description="files to digest, under a storage root")
    manifest: str = Field(min_length=1, max_length=200, description="where to write their digests (JSON)")
    priority: int = Field(5, ge=0, le=9, description="0 (first) to 9")


class ChecksumPlan(BaseModel):
    files: list[str]
    manifest: str


class ChecksumKind(JobKind[ChecksumSpec, ChecksumPlan]):
    """Digests files on post workers, then writes a manifest of them."""

    name = "checksum"
    spec_model = ChecksumSpec
    plan_model = ChecksumPlan
    task_modules = ("checksum_tasks",)
    face = Face(
        command="checksum", tool="checksum_files", title="Digest files and write a manifest",
        description="SHA-256 of each file on the post workers, then one JSON manifest of them.\n\n"
                    'Example: checksum_files(files=["day1/a.mov", "day1/b.mov"], manifest="day1/sums.json")',
        arguments=ChecksumArguments,
    )  # fmt: skip

    def compile(self, farm: Farm, spec: ChecksumSpec, job_id: str) -> Compiled[ChecksumPlan]:
        files = [str(checks.confined(farm, f, f"files.{i}")) for i, f in enumerate(spec.files)]
        manifest = str(checks.confined(farm, spec.manifest, "manifest"))
        where = Placement(pool="post")
        digests = [
            TaskRecord(name=f"digest {i + 1}/{len(files)}", kind="digest", task="checksum.digest", placement=where,
                       params={"file": path})
            for i, path in enumerate(files)
        ]  # fmt: skip
        manifest_piece = TaskRecord(name="manifest", kind="manifest", task="checksum.manifest", placement=where,
                                    after=[d.name for d in digests], output=manifest, final=True)  # fmt: skip
        return Compiled(
            ChecksumPlan(files=files, manifest=manifest), [*digests, manifest_piece], priority=spec.priority
        )

    def summary(self, record: JobRecord[Any, Any]) -> str:
        return f"{len(record.plan.files)} file(s) -> {record.plan.manifest}"


kinds.register(ChecksumKind())
