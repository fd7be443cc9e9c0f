"""The conformance profile: the fixture tools, resources and prompts the official MCP conformance suite calls.

Served only when asked for (`resolve-farm mcp --http 127.0.0.1:PORT --conformance`, as `.ci/run`
does), never by default: a farm's agents see the farm's tools alone. The fixtures answer what
the suite (`@modelcontextprotocol/conformance`, 2026-07-28 requirement set) expects, texts
included; they run inside the server and touch no farm.

The tasks fixtures are real farm jobs: `slow_compute` and `failing_job` submit the `hold` kind
(`orchestrator.kinds.hold`: a piece on a post worker that runs the asked seconds, then succeeds,
or fails as asked), so the suite's task lifecycle (create, poll, cancel mid-run, a tool error as
`completed` with `isError`) is the farm's own: Redis, Celery, a worker. `greet` is sync-only.

`test_tool_with_task` asks its question before the task exists (`input_required`), then makes it;
`confirm_delete` and `multi_input` make a task whose job asks first (the `hold` kind's `questions`:
the task is `input_required` with its `inputRequests` until `tasks/update` answers them).

Note: `protocol_error_job` needs a job that ends in a protocol-level error, which a farm job
never does (a failed job is a tool error): it is not registered, and
`.ci/conformance-baseline.yml` lists the scenario that calls it, with why.
"""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.prompts.base import Prompt, UserMessage
from mcp.shared.exceptions import MCPError
from mcp_types import (
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    AudioContent,
    ClientCapabilities,
    Completion,
    CompletionArgument,
    CompletionContext,
    CreateMessageRequest,
    CreateMessageRequestParams,
    CreateMessageResult,
    ElicitRequest,
    ElicitRequestFormParams,
    ElicitResult,
    EmbeddedResource,
    ImageContent,
    InputRequest,
    InputRequiredResult,
    ListRootsRequest,
    ListRootsResult,
    MissingRequiredClientCapabilityErrorData,
    PromptReference,
    ResourceTemplateReference,
    SamplingMessage,
    TextContent,
    TextResourceContents,
)

from mcp_server.farm_away import FarmCalls
from mcp_server.schemas import Submitted
from mcp_server.tasks_ext import IDENTIFIER as TASKS
from mcp_server.tasks_ext import answer_at_once
from mcp_server.views import submitted_view
from orchestrator import jobs

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="  # 1x1
WAV = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="  # empty, 8 kHz mono
NAME_SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
OK_SCHEMA = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
SCHEMA_2020_12: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "$defs": {
        "address": {
            "$anchor": "addressDef",
            "type": "object",
            "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
        }
    },
    "properties": {
        "name": {"type": "string"},
        "address": {"$ref": "#/$defs/address"},
        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
        "phone": {"type": "string"},
        "email": {"type": "string"},
    },
    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
    "then": {"required": ["phone"]},
    "else": {"required": ["email"]},
    "additionalProperties": False,
}


def _ask_name(message: str = "What is your name?") -> ElicitRequest:
    return ElicitRequest(params=ElicitRequestFormParams(message=message, requested_schema=NAME_SCHEMA))


def _ask(question: str, tokens: int) -> CreateMessageRequest:
    message = SamplingMessage(role="user", content=TextContent(type="text", text=question))
    return CreateMessageRequest(params=CreateMessageRequestParams(messages=[message], max_tokens=tokens))


def _accepted(answer: Any, field: str) -> Any:
    """The `field` of an accepted elicitation answer; None for anything else."""
    return (answer.content or {}).get(field) if isinstance(answer, ElicitResult) and answer.action == "accept" else None


# The task-supporting fixtures, and the kind of job each submits.
TASK_TOOLS = dict.fromkeys(
    ("slow_compute", "failing_job", "test_tool_with_task", "confirm_delete", "multi_input"), "hold"
)


def register(server: MCPServer, calls: FarmCalls) -> None:
    """Add the suite's fixtures to `server`; the task-supporting ones submit farm jobs through `calls`."""
    _content_tools(server)
    _input_tools(server)
    _task_tools(server, calls)
    _resources_and_prompts(server)


def _task_tools(server: MCPServer, calls: FarmCalls) -> None:
    async def hold(spec: dict[str, Any]) -> Submitted:
        record = await calls.run(jobs.submit, calls.farm, "hold", spec)
        return submitted_view(record)

    @server.tool()
    def greet(name: str) -> str:
        """Conformance fixture: a sync-only greeting."""
        return f"Hello, {name}!"

    @server.tool()
    async def slow_compute(seconds: float, label: str = "") -> Submitted:
        """Conformance fixture: a farm job that holds a post worker `seconds`, then succeeds."""
        return await hold({"seconds": seconds, **({"label": label} if label else {})})

    @server.tool()
    async def confirm_delete(filename: str) -> Submitted:
        """Conformance fixture: a farm job that asks its client to confirm, then runs (deletes nothing)."""
        return await hold({"seconds": 0.5, "questions": {"confirm": f"Delete {filename}?"}})

    @server.tool()
    async def multi_input() -> Submitted:
        """Conformance fixture: a farm job that asks two questions at once, then runs."""
        return await hold({"seconds": 0.5, "questions": {"first": "Go on (1 of 2)?", "second": "Go on (2 of 2)?"}})

    @server.tool()
    async def failing_job() -> Submitted:
        """Conformance fixture: a farm job that fails after about a second (a tool error); only as a task."""
        _tasks_required("failing_job")
        return await hold({"seconds": 1.0, "fail": "failing_job: this job fails, as the fixture asks"})

    @server.tool()
    async def test_tool_with_task(ctx: Context) -> Submitted | InputRequiredResult:
        """Conformance fixture: asks the user's name (SEP-2322), then answers with a task (a farm job named by
        the greeting) on the round that carries it; only as a task."""
        _tasks_required("test_tool_with_task")
        name = _accepted((ctx.input_responses or {}).get("user_name"), "name")
        if not name:
            return InputRequiredResult(input_requests={"user_name": _ask_name()})
        return await hold({"seconds": 0.5, "label": f"Hello, {name}!"})


def _tasks_required(tool: str) -> None:
    """A tool whose task support is `required`: refused (-32021) to a request that cannot get a task."""
    if not answer_at_once():
        needed = ClientCapabilities(extensions={TASKS: {}})
        data = MissingRequiredClientCapabilityErrorData(required_capabilities=needed)
        raise MCPError(
            code=MISSING_REQUIRED_CLIENT_CAPABILITY,
            message=f"{tool} runs only as a task: declare the {TASKS} extension",
            data=data.model_dump(by_alias=True, mode="json", exclude_none=True),
        )


def _content_tools(server: MCPServer) -> None:
    @server.tool()
    def test_simple_text() -> str:
        """Conformance fixture: a text answer."""
        return "This is a simple text response for testing."

    @server.tool()
    def test_image_content() -> list[ImageContent]:
        """Conformance fixture: an image answer."""
        return [ImageContent(type="image", data=PNG, mime_type="image/png")]

    @server.tool()
    def test_audio_content() -> list[AudioContent]:
        """Conformance fixture: an audio answer."""
        return [AudioContent(type="audio", data=WAV, mime_type="audio/wav")]

    @server.tool()
    def test_embedded_resource() -> list[EmbeddedResource]:
        """Conformance fixture: an embedded resource."""
        text = "This is an embedded resource content."
        resource = TextResourceContents(uri="test://embedded-resource", mime_type="text/plain", text=text)
        return [EmbeddedResource(type="resource", resource=resource)]

    @server.tool()
    def test_multiple_content_types() -> list[TextContent | ImageContent | EmbeddedResource]:
        """Conformance fixture: text, an image and a resource in one answer."""
        data = TextResourceContents(
            uri="test://mixed-content-resource",
            mime_type="application/json",
            text=json.dumps({"test": "data", "value": 123}),
        )
        return [
            TextContent(type="text", text="Multiple content types test:"),
            ImageContent(type="image", data=PNG, mime_type="image/png"),
            EmbeddedResource(type="resource", resource=data),
        ]

    @server.tool()
    def test_error_handling() -> str:
        """Conformance fixture: a tool error."""
        raise ToolError("This tool intentionally returns an error for testing")

    @server.tool()
    async def test_tool_with_progress(ctx: Context) -> str:
        """Conformance fixture: three progress notifications, then an answer."""
        for step in (0, 50, 100):
            await ctx.report_progress(progress=step, total=100, message=f"Completed step {step} of 100")
            await asyncio.sleep(0.05)
        return "progress reported"

    @server.tool()
    def test_missing_capability(ctx: Context) -> str:
        """Conformance fixture: needs the client's sampling capability (-32021 without it)."""
        capabilities = ctx.client_capabilities
        if capabilities is None or capabilities.sampling is None:
            raise MCPError(
                code=MISSING_REQUIRED_CLIENT_CAPABILITY,
                message="This tool requires the client 'sampling' capability",
                data={"requiredCapabilities": {"sampling": {}}},
            )
        return "the client declared sampling"

    @server.tool()
    async def test_logging_tool(ctx: Context) -> str:
        """Conformance fixture: logs, which a 2026-07-28 request that asked for no log level must not see."""
        await ctx.info("Tool execution started")  # pyright: ignore[reportDeprecated]
        return "Tool with logging executed successfully"

    @server.tool()
    def test_streaming_elicitation() -> str:
        """Conformance fixture: a call whose response stream must carry no server-to-client request."""
        return "no request was sent on the response stream"

    @server.tool(name="json_schema_2020_12_tool")
    def json_schema_2020_12_tool() -> str:
        """Conformance fixture: JSON Schema 2020-12 keywords kept in tools/list."""
        return "json_schema_2020_12_tool"

    # The SDK has no public way to give a tool its own input schema (its own example does the same).
    server._tool_manager._tools["json_schema_2020_12_tool"].parameters = SCHEMA_2020_12

    def dynamic() -> str:
        """Conformance fixture: added and removed again by a trigger."""
        return "dynamic"

    @server.tool()
    async def test_trigger_tool_change(ctx: Context) -> str:
        """Conformance fixture: changes the tool list."""
        server.add_tool(dynamic, name="test_dynamic_tool")
        server.remove_tool("test_dynamic_tool")
        await ctx.notify_tools_changed()
        return "tool list changed"

    @server.tool()
    async def test_trigger_prompt_change(ctx: Context) -> str:
        """Conformance fixture: changes the prompt list."""
        server.add_prompt(Prompt.from_function(dynamic, name="test_dynamic_prompt", description="dynamic"))
        server.remove_prompt("test_dynamic_prompt")
        await ctx.notify_prompts_changed()
        return "prompt list changed"


def _input_tools(server: MCPServer) -> None:
    """The multi-round-trip fixtures (SEP-2322): an `input_required` result, then the answer on the retry."""

    @server.tool()
    def test_input_required_result_elicitation(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: asks the user's name."""
        name = _accepted((ctx.input_responses or {}).get("user_name"), "name")
        return f"Hello, {name}!" if name else InputRequiredResult(input_requests={"user_name": _ask_name()})

    @server.tool()
    def test_input_required_result_sampling(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: asks the client's model a question."""
        answer = (ctx.input_responses or {}).get("capital_question")
        if isinstance(answer, CreateMessageResult) and isinstance(answer.content, TextContent):
            return f"The model said: {answer.content.text}"
        return InputRequiredResult(input_requests={"capital_question": _ask("What is the capital of France?", 100)})

    @server.tool()
    def test_input_required_result_list_roots(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: asks the client's roots."""
        answer = (ctx.input_responses or {}).get("client_roots")
        if isinstance(answer, ListRootsResult):
            return f"{len(answer.roots)} root(s)"
        return InputRequiredResult(input_requests={"client_roots": ListRootsRequest()})

    @server.tool()
    def test_input_required_result_request_state(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: asks for a confirmation, with state to echo."""
        if "confirm" in (ctx.input_responses or {}) and ctx.request_state == "request-state-nonce":
            return "state-ok: confirmation received"
        confirm = ElicitRequest(params=ElicitRequestFormParams(message="Please confirm", requested_schema=OK_SCHEMA))
        return InputRequiredResult(input_requests={"confirm": confirm}, request_state="request-state-nonce")

    @server.tool()
    def test_input_required_result_multiple_inputs(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: three questions at once."""
        if {"user_name", "greeting", "client_roots"} <= set(ctx.input_responses or {}):
            return "all three answers received"
        asked: dict[str, InputRequest] = {
            "user_name": _ask_name(),
            "greeting": _ask("Generate a greeting", 50),
            "client_roots": ListRootsRequest(),
        }
        return InputRequiredResult(input_requests=asked, request_state="multiple-inputs")

    @server.tool()
    def test_input_required_result_multi_round(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: a name, then a colour, in two rounds."""
        state = json.loads(ctx.request_state) if ctx.request_state else {"round": 0}
        answers = ctx.input_responses or {}
        if state.get("round") == 2 and (colour := _accepted(answers.get("step2"), "color")):
            return f"{state.get('name')} likes {colour}."
        if state.get("round") == 1 and (name := _accepted(answers.get("step1"), "name")):
            schema = {"type": "object", "properties": {"color": {"type": "string"}}, "required": ["color"]}
            colour_asked = ElicitRequest(
                params=ElicitRequestFormParams(message="Step 2: What is your favorite color?", requested_schema=schema)
            )
            return InputRequiredResult(
                input_requests={"step2": colour_asked}, request_state=json.dumps({"round": 2, "name": name})
            )
        return InputRequiredResult(
            input_requests={"step1": _ask_name("Step 1: What is your name?")}, request_state=json.dumps({"round": 1})
        )

    @server.tool()
    def test_input_required_result_tampered_state(ctx: Context) -> str | InputRequiredResult:
        """Conformance fixture: state the SDK seals; a tampered echo never reaches here."""
        if ctx.request_state is None:
            confirm = ElicitRequest(
                params=ElicitRequestFormParams(message="Please confirm", requested_schema=OK_SCHEMA)
            )
            return InputRequiredResult(input_requests={"confirm": confirm}, request_state="round-1")
        return f"state-ok: {ctx.request_state}"

    @server.tool()
    def test_input_required_result_capabilities(ctx: Context) -> InputRequiredResult:
        """Conformance fixture: asks only what the client declared it can answer."""
        capabilities = ctx.client_capabilities
        asked: dict[str, InputRequest] = {}
        if capabilities is None or capabilities.sampling is not None:
            asked["sample"] = _ask("Say hello", 50)
        if capabilities is None or capabilities.elicitation is not None:
            asked["ask"] = _ask_name()
        return InputRequiredResult(input_requests=asked, request_state="capability-gated")


def _resources_and_prompts(server: MCPServer) -> None:
    @server.resource("test://static-text", mime_type="text/plain")
    def static_text() -> str:
        """Conformance fixture: a text resource."""
        return "This is the content of the static text resource."

    @server.resource("test://static-binary", mime_type="image/png")
    def static_binary() -> bytes:
        """Conformance fixture: a binary resource."""
        return base64.b64decode(PNG)

    @server.resource("test://template/{id}/data", mime_type="application/json")
    def template_data(id: str) -> str:
        """Conformance fixture: a resource template."""
        return json.dumps({"id": id, "templateTest": True, "data": f"Data for ID: {id}"})

    @server.prompt()
    def test_simple_prompt() -> list[UserMessage]:
        """Conformance fixture: a prompt."""
        return [UserMessage(role="user", content=TextContent(type="text", text="This is a simple prompt for testing."))]

    @server.prompt()
    def test_prompt_with_arguments(arg1: str, arg2: str) -> list[UserMessage]:
        """Conformance fixture: a prompt with arguments."""
        text = f"Prompt with arguments: arg1='{arg1}', arg2='{arg2}'"
        return [UserMessage(role="user", content=TextContent(type="text", text=text))]

    @server.prompt()
    def test_prompt_with_embedded_resource(resourceUri: str) -> list[UserMessage]:
        """Conformance fixture: a prompt with a resource."""
        embedded = TextResourceContents(
            uri=resourceUri, mime_type="text/plain", text="Embedded resource content for testing."
        )
        return [
            UserMessage(role="user", content=EmbeddedResource(type="resource", resource=embedded)),
            UserMessage(
                role="user", content=TextContent(type="text", text="Please process the embedded resource above.")
            ),
        ]

    @server.prompt()
    def test_prompt_with_image() -> list[UserMessage]:
        """Conformance fixture: a prompt with an image."""
        return [
            UserMessage(role="user", content=ImageContent(type="image", data=PNG, mime_type="image/png")),
            UserMessage(role="user", content=TextContent(type="text", text="Please analyze the image above.")),
        ]

    @server.prompt()
    def test_input_required_result_prompt(ctx: Context) -> list[UserMessage] | InputRequiredResult:
        """Conformance fixture: a prompt that asks for context first."""
        context = _accepted((ctx.input_responses or {}).get("user_context"), "context")
        if context:
            return [
                UserMessage(role="user", content=TextContent(type="text", text=f"Use the following context: {context}"))
            ]
        schema = {"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}
        asked = ElicitRequest(
            params=ElicitRequestFormParams(message="What context should the prompt use?", requested_schema=schema)
        )
        return InputRequiredResult(input_requests={"user_context": asked})

    @server.completion()
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion:
        """Conformance fixture: no suggestions."""
        return Completion(values=[], total=0, has_more=False)
