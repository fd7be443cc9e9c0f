"""The Tasks extension (`io.modelcontextprotocol/tasks`, SEP-2663) over farm jobs.

To a client that declared the extension on a 2026-07-28 request, a submit tool (`render_timeline`,
`batch_edit`, `make_proxies`: every kind's, `faces`) answers with a task instead of its plain
result: the job is in Redis before the answer leaves. `tasks/get` reads the job and answers with it as a
task (`working` with percent, frames and busy nodes; `completed` with the tool's full
result inline, a failed job being a tool error inside it; `cancelled`); `tasks/cancel`
cancels the job and `tasks/update` takes answers, both with an empty ack. Clients that did
not declare the extension get the plain answers.
"""

from __future__ import annotations

import contextvars
import json
import time
from datetime import datetime, timezone
from typing import Any

from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension, MethodBinding
from mcp.server.mcpserver import require_client_extension
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import MCP_NAME_HEADER, decode_header_value
from mcp_types import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    RequestParams,
    TextContent,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import Field

from mcp_server.farm_away import FarmAway, FarmCalls
from mcp_server.views import busy_nodes, job_view, submitted_view
from orchestrator import jobs
from orchestrator.models import JobRecord

IDENTIFIER = "io.modelcontextprotocol/tasks"
POLL_INTERVAL_MS = 1000
_at_once: contextvars.ContextVar[bool] = contextvars.ContextVar("answer_at_once", default=False)


def answer_at_once() -> bool:
    """True inside a tool call answered with a task: the tool must not wait for the job."""
    return _at_once.get()


class TaskParams(RequestParams):
    """The params of `tasks/get` and `tasks/cancel`: the task id (the farm job's id)."""

    task_id: str = Field(alias="taskId", min_length=1, max_length=64)


class UpdateParams(TaskParams):
    """The params of `tasks/update`: the task id and the client's answers to its input requests, by key."""

    input_responses: dict[str, Any] = Field(default_factory=dict, alias="inputResponses")


ACK: dict[str, Any] = {"resultType": "complete"}  # what tasks/update and tasks/cancel answer: no task envelope


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _declared(ctx: ServerRequestContext[Any, Any]) -> bool:
    """Whether this request's client declared the extension (on a wire that can carry a task)."""
    if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
        return False  # the handshake era has no `resultType`: a task answer cannot be delivered
    capabilities = ctx.session.client_capabilities
    return bool(capabilities and capabilities.extensions and IDENTIFIER in capabilities.extensions)


def _status(record: JobRecord) -> str:
    if record.state == "cancelled":
        return "cancelled"
    if record.state == "input_required":
        return "input_required"
    return "completed" if record.settled else "working"


CONFIRM_SCHEMA = {"type": "object", "properties": {"confirm": {"type": "boolean"}}, "required": ["confirm"]}


def input_requests(record: JobRecord) -> dict[str, Any]:
    """What the job asks its client and has not been answered yet, as SEP-2322 input requests (each a form
    with one boolean, `confirm`), by key."""
    return {
        key: {"method": "elicitation/create",
              "params": {"mode": "form", "message": question, "requestedSchema": CONFIRM_SCHEMA}}
        for key, question in record.asking().items()
    }  # fmt: skip


def _message(record: JobRecord) -> str:
    view = job_view(record)
    if record.state == "cancelled":
        return "the job was cancelled"
    if record.settled:
        return f"the job {record.state}" + (f": {'; '.join(record.errors)}" if record.errors else "")
    if record.state == "input_required":
        return "waiting for the client's answer: " + "; ".join(record.asking().values())
    frames = f", {view['frames_done']}/{view['frames_total']} frames" if view["frames_total"] else ""
    return f"{record.state}: {view['progress']:.1f}%{frames}; {busy_nodes(record)}"


def task_of(record: JobRecord, retention: int, now: float | None = None) -> dict[str, Any]:
    """A job as a task (SEP-2663 fields). `ttlMs` runs from creation to the record's expiry.

    Note: a finished job is kept `retention` seconds after it finished, so while it runs
    the ttl is a lower bound (it has lived so far, and will be kept `retention` after).
    """
    now = time.time() if now is None else now
    stamps = [record.created_at, record.started_at or 0, record.finished_at or 0]
    stamps += [t for task in record.tasks for t in (task.started_at or 0, task.finished_at or 0)]
    end = record.finished_at if record.finished and record.finished_at else now
    return {
        "taskId": record.id,
        "status": _status(record),
        "statusMessage": _message(record),
        "createdAt": _iso(record.created_at),
        "lastUpdatedAt": _iso(max(stamps)),
        "ttlMs": int((end - record.created_at + retention) * 1000),
        "pollIntervalMs": POLL_INTERVAL_MS,
    }


def final_result(record: JobRecord) -> dict[str, Any]:
    """The submit tool's full result for a finished job; a failed job is a tool error."""
    answer = submitted_view(record)
    failed = record.state == "failed"
    text = f"job {record.id} failed: {'; '.join(record.errors) or 'see the tasks'}" if failed else None
    result = CallToolResult(
        content=[TextContent(type="text", text=text or json.dumps(answer, indent=2))],
        structured_content=dict(answer),
        is_error=failed,
    )
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


class FarmTasks(Extension):
    """Serves farm jobs as MCP tasks: task answers for submit tools, `tasks/get`, `tasks/cancel`, `tasks/update`.

    Note: the task id is the job id, and everything a task shows is read from the job record
    in Redis, so a task outlives the MCP server that created it (any server of the farm
    answers for it). Only a 2026-07-28 request that declares the extension gets a task.
    """

    identifier = IDENTIFIER

    def __init__(self, calls: FarmCalls, submit_tools: dict[str, str]) -> None:
        self.calls = calls
        self.submit_tools = submit_tools  # tool -> the kind it submits: these may answer with a task

    def methods(self) -> list[MethodBinding]:
        versions = frozenset(MODERN_PROTOCOL_VERSIONS)
        return [
            MethodBinding("tasks/get", TaskParams, self.get, protocol_versions=versions),
            MethodBinding("tasks/cancel", TaskParams, self.cancel, protocol_versions=versions),
            MethodBinding("tasks/update", UpdateParams, self.update, protocol_versions=versions),
        ]

    async def intercept_tool_call(
        self, params: CallToolRequestParams, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        if params.name not in self.submit_tools or not _declared(ctx):
            return await call_next(ctx)
        token = _at_once.set(True)
        try:
            result = await call_next(ctx)
        finally:
            _at_once.reset(token)
        if not isinstance(result, CallToolResult) or result.is_error or not result.structured_content:
            return result  # refused: nothing was queued, the error is the answer
        record = await self._record(str(result.structured_content["job_id"]))
        return {"resultType": "task", **task_of(record, self.calls.farm.settings.job_retention)}

    async def get(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> HandlerResult:
        self._check(ctx, params)
        record = await self._record(params.task_id)
        task = task_of(record, self.calls.farm.settings.job_retention)
        if task["status"] == "completed":
            task["result"] = final_result(record)
        elif task["status"] == "input_required":
            task["inputRequests"] = input_requests(record)
        return task

    async def cancel(self, ctx: ServerRequestContext[Any, Any], params: TaskParams) -> HandlerResult:
        """Cancel the job; an empty ack, the same for a task that is over already (cancel is idempotent): the
        cancelled status shows at the next `tasks/get`."""
        self._check(ctx, params)
        record = await self._record(params.task_id)  # an unknown task: -32602
        try:  # (the job's lifecycle leaves a finished job as it is)
            await self.calls.run(lambda: jobs.cancel(self.calls.farm, record.id, wait=0))
        except ToolError as exc:
            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
        return dict(ACK)

    async def update(self, ctx: ServerRequestContext[Any, Any], params: UpdateParams) -> HandlerResult:
        """Answers to a task's input requests (`jobs.answer`): an empty ack; the task moves on (or, for an
        answer other than yes, is cancelled) by the next `tasks/get`.

        Note: keys the job does not ask (never, or no more) are acknowledged and ignored, as the
        conformance suite wants and as unexpected `inputResponses` on a tool call are.
        """
        self._check(ctx, params)
        record = await self._record(params.task_id)  # an unknown task: -32602
        if params.input_responses and record.state == "input_required":
            responses = params.input_responses
            await self.calls.run(lambda: jobs.answer(self.calls.farm, record.id, responses))
        return dict(ACK)

    @staticmethod
    def _check(ctx: ServerRequestContext[Any, Any], params: TaskParams) -> None:
        """The client declared the extension; over HTTP, `Mcp-Name` names the task (SEP-2663)."""
        require_client_extension(ctx, IDENTIFIER)
        headers = getattr(ctx.request, "headers", None)
        if headers is not None and decode_header_value(headers.get(MCP_NAME_HEADER)) != params.task_id:
            raise MCPError(code=HEADER_MISMATCH, message=f"{MCP_NAME_HEADER} header does not match the task's taskId")

    async def _record(self, job_id: str) -> JobRecord:
        try:
            return await self.calls.run(lambda: self.calls.farm.store.get(job_id))
        except FarmAway as exc:
            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None
        except ToolError:  # no such job: never submitted, or past its retention
            raise MCPError(code=INVALID_PARAMS, message=f"no task {job_id!r}") from None
