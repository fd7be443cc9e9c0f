"""Submit tools made from kinds' faces (`orchestrator.kinds.face`): one for every registered kind that
declares a face and has no hand-written tool, plugins' kinds included.

A face tool takes the face's arguments (its model's fields, descriptions and constraints, as
the input schema) and `after`, submits the kind's spec made from them, and answers as every
submit tool does (`Submitted`); the Tasks extension serves it like the others.

Note: the tool's signature is built from the arguments model (`__signature__`), which is what
the `mcp` SDK reads a tool's input schema from.
"""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations
from pydantic import Field

from mcp_server.farm_away import FarmCalls
from mcp_server.schemas import Submitted
from mcp_server.views import submitted_view
from orchestrator import jobs, kinds
from orchestrator.farm import Farm
from orchestrator.kinds.base import JobKind

AFTER = "job ids (or unique starts of them) that must succeed before this one starts"


def register(server: MCPServer, farm: Farm, calls: FarmCalls, submit_tools: dict[str, str]) -> list[str]:
    """Add a submit tool for each kind with a face not served yet; record each in `submit_tools` (tool ->
    kind, what the Tasks extension serves); the names added."""
    added = []
    for name in kinds.served(farm.settings.plugins):
        kind = kinds.get(name)
        face = kind.face
        if face is None or face.tool in submit_tools or name in submit_tools.values():
            continue  # no face, or a hand-written tool submits it
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

    async def submit(**values: Any) -> Submitted:
        after = values.pop("after", None) or ()
        given = face.arguments.model_validate({k: v for k, v in values.items() if v is not None})
        record = await calls.run(jobs.submit, farm, kind.name, face.spec(given), after)
        return submitted_view(record, await calls.run(jobs.estimate_seconds, farm, record))

    keyword = inspect.Parameter.KEYWORD_ONLY
    fields = [
        inspect.Parameter(name, keyword, annotation=Annotated[info.annotation, info],
                          default=inspect.Parameter.empty if info.is_required() else info.default)
        for name, info in face.arguments.model_fields.items()
    ]  # fmt: skip
    waits = Annotated[list[str] | None, Field(description=AFTER, max_length=100)]
    after = inspect.Parameter("after", keyword, default=None, annotation=waits)
    submit.__signature__ = inspect.Signature([*fields, after], return_annotation=Submitted)  # type: ignore[attr-defined]
    submit.__name__ = face.tool
    submit.__doc__ = face.description
    return submit
