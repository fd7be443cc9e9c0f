"""The farm's MCP server: tools that submit, follow and steer jobs, and resources that show them.

Every tool answers at once except `wait_for_job`, which follows a job while sending MCP
progress notifications; a client that declared the Tasks extension gets a durable task for a
submission instead (`tasks_ext`). When the farm is away, every tool says so (`farm_away`). A refused request is a tool error naming the field and the reason;
nothing is queued for it. Blocking calls to Redis run in worker threads, off the event loop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Annotated, Any, Literal

import anyio
from anyio import to_thread
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus
from mcp.shared.exceptions import MCPError
from mcp.shared.subscriptions import ResourceUpdated
from mcp_types import INVALID_PARAMS, ToolAnnotations
from pydantic import Field

from mcp_server import faces
from mcp_server.auth import StaticTokenVerifier
from mcp_server.farm_away import UNREACHABLE, FarmCalls
from mcp_server.schemas import Followed, Inspection, JobList, JobView, NodeList, PieceLogs
from mcp_server.tasks_ext import FarmTasks
from mcp_server.views import busy_nodes, job_summary, job_view, node_view
from orchestrator import jobs, kinds
from orchestrator.farm import Farm
from orchestrator.store import JobNotFound

log = logging.getLogger(__name__)
WATCH_INTERVAL = 0.5
INSTRUCTIONS = """resolve-farm renders DaVinci Resolve timelines on several machines at once, applies batch edits and
makes proxy media. Submit with render_timeline, batch_edit or make_proxies (they answer at once with a job id),
follow with wait_for_job (progress notifications) or get_job, steer with cancel_job and retry_job, and answer
what a job asks (state input_required) with answer_job. list_nodes
shows the machines; inspect_resolve lists projects, timelines, formats, codecs and presets. A client that
declares the Tasks extension (io.modelcontextprotocol/tasks) gets a task for render_timeline, batch_edit and
make_proxies: follow it with tasks/get, stop it with tasks/cancel; the task id is the job id."""

# Tool annotations, set truthfully. None of the tools reaches outside the farm (openWorldHint
# false): they talk to its Redis, its nodes and the Resolve on them.
READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
CANCEL = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
ANSWER = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True, open_world_hint=False)
RETRY = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=False)


class FarmServer(MCPServer):
    """The SDK's MCP server, answering a request for a prompt it does not have as the request's fault.

    Note: mcp 2.3.0 lets the `ValueError` of an unknown prompt escape `prompts/get`, and the
    client gets -32603 "Internal server error"; the conformance suite and the spec want
    invalid params (-32602).
    """

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None, context: Any = None) -> Any:
        if name not in {prompt.name for prompt in await self.list_prompts()}:
            raise MCPError(code=INVALID_PARAMS, message=f"no prompt {name!r}")
        return await super().get_prompt(name, arguments, context)


def _version() -> str:
    """The installed package's version, for `serverInfo`."""
    try:
        return version("resolve-farm")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


def build_server(
    farm: Farm, tokens: list[Any] | None = None, url: str | None = None, conformance: bool = False
) -> MCPServer:
    """The MCP server for `farm`; with `tokens` (HTTP), every request needs one of them; `conformance`: with the
    conformance suite's fixtures besides the farm's tools (`mcp_server.conformance`)."""
    bus = InMemorySubscriptionBus()
    calls = FarmCalls(farm)

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            group.start_soon(_watch, farm, calls, bus)
            yield
            group.cancel_scope.cancel()

    auth = None
    verifier = None
    if tokens:
        verifier = StaticTokenVerifier(tokens)
        auth = AuthSettings(
            issuer_url=url or "http://127.0.0.1", resource_server_url=url, validate_token_resource=False
        )
    submit_tools: dict[str, str] = {}  # tool -> kind: what may answer with a task (`faces.register` fills it)
    if conformance:
        from mcp_server import conformance as fixtures

        submit_tools.update(fixtures.TASK_TOOLS)
    server = FarmServer(
        name="resolve-farm", version=_version(), instructions=INSTRUCTIONS, lifespan=lifespan, subscriptions=bus,
        token_verifier=verifier, auth=auth, extensions=[FarmTasks(calls, submit_tools)],
    )  # fmt: skip
    faces.register(server, farm, calls, submit_tools)  # a submit tool for each kind, plugins' included
    _tools(server, farm, calls)
    _resources(server, farm, calls)
    if conformance:
        fixtures.register(server, calls)
    return server


async def _watch(farm: Farm, calls: FarmCalls, bus: InMemorySubscriptionBus) -> None:
    """Publish resource-updated events for jobs that move and for the node list."""
    seen: dict[str, tuple[str, float]] = {}
    nodes_seen = ""
    away = False
    while True:
        try:
            records = await to_thread.run_sync(lambda: farm.store.list(limit=200))
            for record in records:
                mark = (record.state, round(record.progress, 1))
                if seen.get(record.id, mark) != mark or (record.id not in seen and not record.finished):
                    await bus.publish(ResourceUpdated(uri=f"job://{record.id}"))
                seen[record.id] = mark
            nodes = await to_thread.run_sync(farm.nodes.all)
            fingerprint = json.dumps([(n.name, n.up, n.current_task) for n in nodes])
            if fingerprint != nodes_seen:
                nodes_seen = fingerprint
                await bus.publish(ResourceUpdated(uri="farm://nodes"))
            if away:
                log.warning("job watcher: the farm is reachable again")
            away = False
        except UNREACHABLE as exc:  # the farm away: one line when it goes, one when it is back
            if not away:
                calls.away(exc)
            away = True
        except Exception as exc:  # anything else (a record it cannot read): keep watching, say so
            log.warning("job watcher: %s", exc)
        await anyio.sleep(WATCH_INTERVAL)


def _tools(server: MCPServer, farm: Farm, calls: FarmCalls) -> None:
    _call = calls.run

    @server.tool(title="Show a job", annotations=READ)
    async def get_job(
        job_id: Annotated[str, Field(description="the id render_timeline or batch_edit returned")],
    ) -> JobView:
        """A job's state, percent, frames done/total, ETA, each segment or target with its node, outputs and errors.

        Example: get_job(job_id="3f2a9c0e1b7d4a55")
        """
        return job_view(await _call(lambda: jobs.get(farm, job_id)))

    @server.tool(title="Read what the workers wrote for a job", annotations=READ)
    async def get_job_log(
        job_id: Annotated[str, Field(description="the id render_timeline or batch_edit returned")],
        piece: Annotated[
            str | None, Field(description="one piece by name, e.g. 'segment 2/4' or 'stitch'; all when omitted")
        ] = None,
    ) -> PieceLogs:
        """The lines the workers wrote for each piece of a job: Resolve's status and errors, retries and where they
        went, the stitch's checks. Bounded per piece; kept as long as the job.

        Example: get_job_log(job_id="3f2a9c0e1b7d4a55", piece="stitch")
        """
        return {"job_id": job_id, "pieces": await _call(lambda: jobs.piece_logs(farm, job_id, piece))}

    @server.tool(title="List jobs", annotations=READ)
    async def list_jobs(
        state: Annotated[
            Literal["waiting", "queued", "input_required", "running", "stitching", "succeeded", "failed", "cancelled"]
            | None,
            Field(description="only jobs in this state"),
        ] = None,
        kind: Annotated[
            str | None, Field(description=f"only jobs of this kind: {', '.join(kinds.names())}", max_length=64)
        ] = None,
        limit: Annotated[int, Field(ge=1, le=200, description="page size")] = 20,
        offset: Annotated[int, Field(ge=0, description="jobs to skip, newest first")] = 0,
    ) -> JobList:
        """Jobs, newest first, filtered and paged. Example: list_jobs(state="running")"""
        if kind is not None:
            await _call(kinds.get, kind)  # an unknown kind is refused, naming the kinds there are
        records = await _call(lambda: farm.store.list(state=state, kind=kind, offset=offset, limit=limit))
        return {"jobs": [job_summary(r) for r in records], "offset": offset, "limit": limit}

    @server.tool(title="Cancel a job", annotations=CANCEL)
    async def cancel_job(job_id: Annotated[str, Field(description="the job to cancel")]) -> JobView:
        """Cancel a job: queued work is dropped, running renders are stopped, partial files removed.

        Example: cancel_job(job_id="3f2a9c0e1b7d4a55")
        """
        return job_view(await _call(lambda: jobs.cancel(farm, job_id, wait=15)))

    @server.tool(title="Answer what a job asks", annotations=ANSWER)
    async def answer_job(
        job_id: Annotated[str, Field(description="a job in state input_required (its view lists `asking`)")],
        answers: Annotated[
            dict[str, bool],
            Field(description="by the key `asking` shows: true goes on, false cancels the job; e.g. {'go': true}"),
        ],
    ) -> JobView:
        """Answer the yes-or-no questions a job asks before it goes on (state input_required, `asking` in its
        view); a false cancels the job. A key it does not ask is refused.

        Example: answer_job(job_id="3f2a9c0e1b7d4a55", answers={"go": true})
        """
        return job_view(await _call(jobs.answer_yes_no, farm, job_id, answers))

    @server.tool(title="Retry what failed in a job", annotations=RETRY)
    async def retry_job(job_id: Annotated[str, Field(description="a failed or cancelled job")]) -> JobView:
        """Run again only what failed (or was cancelled) in a job; finished parts are kept.

        Example: retry_job(job_id="3f2a9c0e1b7d4a55")
        """
        return job_view(await _call(jobs.retry, farm, job_id))

    @server.tool(title="Wait for a job, with progress", annotations=READ)
    async def wait_for_job(
        job_id: Annotated[str, Field(description="the job to follow")],
        timeout_seconds: Annotated[
            float, Field(ge=0, le=3600, description="stop waiting after this long; the job goes on")
        ] = 60.0,
        ctx: Context = None,  # type: ignore[assignment]
    ) -> Followed:
        """Wait for a job while sending progress notifications (percent, and which nodes are busy).

        Returns the final state, or state "still running" with the latest progress when the
        timeout comes first, or at once when the job asks something (state input_required: its
        `asking`, answered with answer_job). Cancelling this call does not cancel the job.
        Example: wait_for_job(job_id="3f2a9c0e1b7d4a55", timeout_seconds=300)
        """
        records = jobs.follow(farm, job_id, timeout=timeout_seconds, interval=0.25, asks=True)
        last: tuple[str, float] | None = None
        while (seen := await _call(lambda: next(records, None))) is not None:
            record, mark = seen, (seen.state, round(seen.progress, 1))
            if mark != last:
                last = mark
                message = f"{record.state}: {busy_nodes(record)}" if not record.finished else record.state
                if not record.finished and record.eta_seconds:
                    message += f"; about {record.eta_seconds:.0f} s left"
                await ctx.report_progress(round(record.progress, 1), 100.0, message)
        if record.settled:
            return {"finished": True, **job_view(record)}
        if record.state == "input_required":  # nothing moves until it is answered: say what it asks
            return {"finished": False, "note": "the job asks: answer with answer_job", **job_view(record)}
        return {"finished": False, "note": "still running: call wait_for_job again", **job_view(record)}

    @server.tool(title="List the farm's machines", annotations=READ)
    async def list_nodes() -> NodeList:
        """The farm's machines: up or down, tags, OS, Resolve product and version, bridge, current task, version mismatch.

        Example: list_nodes()
        """
        return {"nodes": [node_view(n) for n in await _call(lambda: farm.nodes.all())]}

    @server.tool(title="Ask a node's Resolve what it holds", annotations=READ)
    async def inspect_resolve(
        node: Annotated[
            str | None, Field(description="the node to ask (see list_nodes); default: any free one")
        ] = None,
        timeout_seconds: Annotated[float, Field(ge=1, le=300, description="how long to wait for the node")] = 20.0,
    ) -> Inspection:
        """What a node's Resolve holds: projects, timelines (frame range, fps, resolution), formats, codecs, presets.

        Goes through the queue to that node; a node busy rendering answers from the catalog it
        published last. Example: inspect_resolve(node="bay-2")
        """
        return await _call(lambda: jobs.inspect(farm, node, timeout_seconds))  # type: ignore[arg-type,return-value]


def _resources(server: MCPServer, farm: Farm, calls: FarmCalls) -> None:
    @server.resource("job://{job_id}", name="job", mime_type="application/json",
                     description="A farm job's full record (JSON): state, progress, tasks, outputs, errors.")  # fmt: skip
    async def job_resource(job_id: str) -> str:
        try:
            record = await to_thread.run_sync(farm.store.get, job_id)
        except JobNotFound as exc:
            raise ValueError(str(exc)) from None
        except UNREACHABLE as exc:
            raise ValueError(str(calls.away(exc))) from None
        return record.model_dump_json()

    @server.resource("farm://nodes", name="nodes", mime_type="application/json",
                     description="The farm's nodes (JSON): health, tags, Resolve, bridge, current task.")  # fmt: skip
    async def nodes_resource() -> str:
        try:
            nodes = await to_thread.run_sync(farm.nodes.all)
        except UNREACHABLE as exc:
            raise ValueError(str(calls.away(exc))) from None
        return json.dumps([node_view(n) for n in nodes])
