"""The shapes the tools answer with: published as output schemas, checked on every answer.

Note: key names are those of the CLI's `--json` (`JobRecord.public()`, `resolve-farm nodes
--json`); a job view adds only `frames_done`/`frames_total` summed over its video tasks, and a
render's `stitch` (how its stitch joined, from that piece's details).
TypedDicts (not models) so that a key a view leaves out (`error` of a task that did not
fail) stays out of the answer instead of turning into null.
"""

from __future__ import annotations

from typing import Any

from typing_extensions import NotRequired, TypedDict


class TaskView(TypedDict):
    name: str
    kind: str
    node: str | None
    state: str
    attempts: int
    frames_done: int
    frames_total: int
    error: NotRequired[str]
    results: NotRequired[list[dict[str, Any]]]
    results_summary: NotRequired[list[dict[str, Any]]]
    results_omitted: NotRequired[int]


class StitchView(TypedDict):
    method: str  # move (one piece), copy (packets copied, no re-encode) or reencode
    reason: NotRequired[str]  # why a render was encoded again at the stitch
    renamed: NotRequired[str]  # the output's name was taken after the submit: what the file was written as


class JobView(TypedDict):
    id: str
    kind: str
    state: str
    progress: float
    frames_done: int
    frames_total: int
    eta_seconds: float | None
    node_seconds: float  # Resolve hosts' time its pieces have had: what jobs of one priority share fairly
    tasks: list[TaskView]
    outputs: list[str]
    errors: list[str]
    after: NotRequired[list[str]]  # the jobs it runs after
    waiting_on: NotRequired[list[str]]  # those it still waits for (state "waiting")
    stitch: NotRequired[StitchView]  # a render's join, once its stitch ran
    asking: NotRequired[dict[str, str]]  # state "input_required": key -> the yes-or-no question not answered yet
    trace_id: NotRequired[str]  # the job's OpenTelemetry trace (submitted with tracing on, or a `traceparent`)


class Plan(TypedDict):
    frames: dict[str, Any]
    segments: int
    eligible_nodes: list[str]
    stitch: Any
    output: str


class Submitted(TypedDict):
    """A submit tool's answer; also the result of a completed task for that job."""

    job_id: str
    state: str
    finished: bool
    job: JobView
    plan: NotRequired[Plan]
    estimate_seconds: NotRequired[float | None]
    next: NotRequired[str]


class Followed(JobView):
    """wait_for_job's answer: the job view, whether it finished, and a note when it did not."""

    finished: bool
    note: NotRequired[str]


class JobSummary(TypedDict):
    id: str
    kind: str
    state: str
    progress: float
    created_at: float
    outputs: list[str]
    errors: list[str]
    after: NotRequired[list[str]]
    waiting_on: NotRequired[list[str]]


class JobList(TypedDict):
    jobs: list[JobSummary]
    offset: int
    limit: int


class NodeView(TypedDict):
    name: str
    up: bool
    age_seconds: float | None
    roles: list[str]
    tags: list[str]
    os: str | None
    resolve: dict[str, Any]
    bridge: str | None
    current_task: str | None
    version_key: str | None
    version_mismatch: bool | None


class NodeList(TypedDict):
    nodes: list[NodeView]


class Inspection(TypedDict):
    live: bool
    node: NotRequired[str]
    resolve: NotRequired[dict[str, Any]]
    note: NotRequired[str]
    catalog: dict[str, Any]


class PieceLogs(TypedDict):
    """`get_job_log`: the lines workers wrote for each piece asked for, oldest first."""

    job_id: str
    pieces: dict[str, list[str]]
