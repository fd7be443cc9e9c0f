"""Submit tools made from kinds' faces (`orchestrator.kinds.face`): one for every kind the farm serves that
declares a face, the farm's own (`render_timeline`, `batch_edit`, `make_proxies`) and plugins' alike.

A face tool takes the face's arguments (its model's fields, descriptions and constraints, as
the input schema) and `after`, submits the kind's spec made from them, and answers as every
submit tool does (`Submitted`); the Tasks extension serves it like the others. An output name
that names a file already is asked about (`ask`). A kind that is not followed (`JobKind.followed`:
a batch edit, usually done in seconds) takes `wait_seconds` too, and answers with the job's
end when it comes within them.

Note: the tool's signature is built from the arguments model (`__signature__`), which is what
the `mcp` SDK reads a tool's input schema from; it finds the `Context` parameter by the
function's own annotations, so `ctx` is declared on the function itself.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import InputRequiredResult, ToolAnnotations
from pydantic import Field, ValidationError

from mcp_server import ask
from mcp_server.farm_away import FarmCalls
from mcp_server.schemas import Submitted
from mcp_server.tasks_ext import answer_at_once
from mcp_server.views import submitted_view
from orchestrator import jobs, kinds
from orchestrator.farm import Farm
from orchestrator.kinds.base import JobKind, OutputExists
from orchestrator.refusals import Refused, validation_errors

AFTER = ("job ids (or unique starts of them) to run after: it waits until they all succeed, and is cancelled if one "
         "fails or is cancelled (e.g. a render after the batch_edit that prepares its timeline)")  # fmt: skip
WAIT = "wait this long for a quick result (dry runs are usually instant)"
WAIT_DEFAULT = 5.0


def register(server: MCPServer, farm: Farm, calls: FarmCalls, submit_tools: dict[str, str]) -> list[str]:
    """Add a submit tool for each served kind with a face; record each in `submit_tools` (tool -> kind, what
    the Tasks extension serves); the names added."""
    added = []
    for name in kinds.served(farm.settings.plugins):
        kind = kinds.get(name)
        face = kind.face
        if face is None or face.tool in submit_tools:
            continue
        hints = ToolAnnotations(read_only_hint=False, destructive_hint=face.destructive, idempotent_hint=False,
                                open_world_hint=False)  # fmt: skip
        server.add_tool(_submit_tool(farm, calls, kind), name=face.tool, title=face.title,
                        description=face.description, annotations=hints, structured_output=True)  # fmt: skip
        submit_tools[face.tool] = name
        added.append(face.tool)
    return added


def _submit_tool(farm: Farm, calls: FarmCalls, kind: JobKind[Any, Any]) -> Any:
    face = kind.face
    assert face is not None

    def send(spec: dict[str, Any], after: list[str]) -> Any:
        try:
            return jobs.submit(farm, kind.name, spec, after)
        except OutputExists as exc:  # asked about (`ask`); the other refusals are tool errors (`FarmCalls.run`)
            return exc

    async def submit(ctx: Context, **values: Any) -> Submitted | InputRequiredResult:
        after = values.pop("after", None) or []
        wait = values.pop("wait_seconds", WAIT_DEFAULT)
        try:
            spec = face.spec(face.arguments.model_validate({k: v for k, v in values.items() if v is not None}))
        except ValidationError as exc:
            raise ToolError(f"refused: {validation_errors(exc)}") from None
        except Refused as exc:
            raise ToolError(f"refused: {exc}") from None
        record = await ask.submit_asking(ctx, spec, lambda spec: calls.run(send, spec, after))
        if isinstance(record, InputRequiredResult):
            return record
        if kind.followed or answer_at_once() or record.state == "waiting":  # (a task, or a job after others)
            return submitted_view(record, await calls.run(jobs.estimate_seconds, farm, record))
        return submitted_view(await calls.run(lambda: jobs.wait(farm, record.id, timeout=wait, asks=True)))

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("ctx", keyword, annotation=Context)]
    for name, info in face.arguments.model_fields.items():
        default = inspect.Parameter.empty if info.is_required() else info.default
        parameters.append(
            inspect.Parameter(name, keyword, annotation=Annotated[info.annotation, info], default=default)
        )
    if not kind.followed:
        waits = Annotated[float, Field(ge=0, le=60, description=WAIT)]
        parameters.append(inspect.Parameter("wait_seconds", keyword, default=WAIT_DEFAULT, annotation=waits))
    after = Annotated[list[str] | None, Field(description=AFTER, max_length=100)]
    parameters.append(inspect.Parameter("after", keyword, default=None, annotation=after))
    submit.__signature__ = inspect.Signature(parameters, return_annotation=Submitted | InputRequiredResult)  # type: ignore[attr-defined]
    submit.__name__ = face.tool
    submit.__doc__ = face.description
    return submit
