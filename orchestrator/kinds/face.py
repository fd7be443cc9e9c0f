"""`Face`: how a kind meets its users, declared once in the kind's module.

From a kind's face the CLI builds a subcommand (`resolve-farm <command> --field ...`) and the
MCP server a submit tool (typed input schema from the arguments model, annotations, the
`Submitted` output schema, Tasks support), so a kind, a plugin's included, is reachable with no
code in `orchestrator/cli/` or `mcp_server/`.

Note: the arguments are one flat pydantic model whose fields all carry a description (what the
agent and `--help` read); `spec` turns them into the kind's spec, by default field for field.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel

SCALARS = (str, int, float, bool)


@dataclass(frozen=True)
class Face:
    """A kind's CLI command and MCP tool: names, title, a description for agents, and its arguments."""

    command: str  # the CLI subcommand
    tool: str  # the MCP tool
    title: str
    description: str  # for agents and `--help`: what it does, then an `Example: tool(...)` line
    arguments: type[BaseModel]  # one flat model, each field described
    destructive: bool = False  # the job changes what users made (timelines, projects), not only adds files

    def __post_init__(self) -> None:
        for name, field in self.arguments.model_fields.items():
            if not field.description:
                raise TypeError(f"{self.arguments.__name__}.{name}: a face's arguments each need a description")
            if scalar(field.annotation) is None:
                raise TypeError(f"{self.arguments.__name__}.{name}: a face's arguments are flat (scalars, lists)")

    def spec(self, arguments: BaseModel) -> dict[str, Any]:
        """The kind's spec from the arguments given (those left unset stay out: the spec's defaults apply)."""
        return arguments.model_dump(exclude_unset=True)


def scalar(annotation: Any) -> tuple[type, bool] | None:
    """(the scalar type, whether it is a list of them) of a flat argument's type, optional or not; None when
    it is no scalar nor a list of one."""
    if get_origin(annotation) in (Union, types.UnionType):
        inner = [a for a in get_args(annotation) if a is not type(None)]
        return scalar(inner[0]) if len(inner) == 1 else None
    if get_origin(annotation) is list:
        (item,) = get_args(annotation) or (str,)
        found = scalar(item)
        return (found[0], True) if found and not found[1] else None
    if get_origin(annotation) is not None and get_args(annotation):  # Literal[...]: its values' type
        values = get_args(annotation)
        kinds = {type(v) for v in values}
        return (kinds.pop(), False) if len(kinds) == 1 and isinstance(values[0], SCALARS) else None
    return (annotation, False) if annotation in SCALARS else None
