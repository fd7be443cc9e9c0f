"""`Face`: how a kind meets its users, declared once in the kind's module.

From a kind's face the CLI builds a subcommand (`resolve-farm <command> --field ...`) and the
MCP server a submit tool (typed input schema from the arguments model, annotations, the
`Submitted` output schema, Tasks support), so a kind, a plugin's included, is reachable with no
code in `orchestrator/cli/` or `mcp_server/`. The farm's own kinds (render, edit, proxies) are
reached the same way.

Note: the arguments are one model whose fields all carry a description (what the agent and
`--help` read) and hold JSON values: scalars, lists of them, objects of them, or JSON that the
CLI takes as one option. The model turns them into the kind's spec with a `to_spec()` method
when the spec is not field for field (it may raise `Refused`, naming the argument).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field

SCALARS = (str, int, float, bool)
# Names every submit tool or command takes besides a face's arguments (or the SDK passes the context as).
RESERVED = frozenset({"after", "wait_seconds", "ctx", "wait", "json", "file", "func", "command"})
Shape = Literal["scalar", "list", "mapping", "json"]

# Arguments several kinds' faces take, described once.
Project = Annotated[str, Field(description="Resolve project name; folders with '/', e.g. 'Clients/Acme/Ad_2026'")]
Priority = Annotated[int, Field(ge=0, le=9, description="0 is the most urgent, 9 the least")]
OnNode = Annotated[str | None, Field(description="run only on this node (see list_nodes)")]
WithTags = Annotated[list[str] | None, Field(description="run only on nodes with all these tags, e.g. ['studio']")]
DatabaseName = Annotated[
    str | None,
    Field(description="a PostgreSQL project database every host reaches, by name; default: the hosts' current one"),
]


@dataclass(frozen=True)
class Face:
    """A kind's CLI command and MCP tool: names, title, a description for agents, and its arguments."""

    command: str  # the CLI subcommand
    tool: str  # the MCP tool
    title: str
    description: str  # for agents and `--help`: what it does, then an `Example: tool(...)` line
    arguments: type[BaseModel]  # one model, each field described
    destructive: bool = False  # the job changes what users made (timelines, projects), not only adds files
    positional: tuple[str, ...] = ()  # arguments the CLI takes in this order before the options
    options: Mapping[str, str] = field(default_factory=dict)  # argument -> CLI option, when not `--field-name`
    from_file: bool = False  # the CLI's one positional is a JSON or YAML file of arguments, options over it

    def __post_init__(self) -> None:
        fields = self.arguments.model_fields
        for name, info in fields.items():
            if name in RESERVED:
                raise TypeError(f"{self.arguments.__name__}.{name}: the name is taken by every submit tool or command")
            if not info.description:
                raise TypeError(f"{self.arguments.__name__}.{name}: a face's arguments each need a description")
            if shape(info.annotation) is None:
                raise TypeError(f"{self.arguments.__name__}.{name}: a face's arguments hold JSON values, not models")
        for name in (*self.positional, *self.options):
            if name not in fields:
                raise TypeError(f"{self.command}: {name!r} is not one of {self.arguments.__name__}'s fields")
        if self.from_file and self.positional:
            raise TypeError(f"{self.command}: a command reading its arguments from a file has no other positional")

    def option(self, name: str) -> str:
        """The CLI option of the argument `name`."""
        return self.options.get(name) or "--" + name.replace("_", "-")

    def spec(self, arguments: BaseModel) -> dict[str, Any]:
        """The kind's spec from the arguments given: the model's `to_spec()`, or those set field for field (those
        left unset stay out: the spec's defaults apply)."""
        to_spec = getattr(arguments, "to_spec", None)
        return to_spec() if callable(to_spec) else arguments.model_dump(exclude_unset=True)


def shape(annotation: Any) -> tuple[Shape, type | None] | None:
    """How the CLI takes an argument of this type, and the type of its values: a `scalar` (of that type; None:
    a union the model tells apart from the text), a `list` of scalars (repeated), a `mapping` of scalars
    (repeated KEY=VALUE), or other `json`. None for a type holding a model."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return shape(inner[0])
        found = [shape(a) for a in inner]
        if all(f is not None and f[0] == "scalar" for f in found):
            return "scalar", None  # e.g. 'auto' or a number: the model's validation reads it
        return None if any(f is None for f in found) else ("json", None)
    if origin is list:
        item = shape(args[0]) if args else ("scalar", str)
        if item is None:
            return None
        return ("list", item[1]) if item[0] == "scalar" and item[1] is not None else ("json", None)
    if origin is dict:
        value = shape(args[1]) if args else ("json", None)
        if value is None:
            return None
        return ("mapping", None) if value[0] == "scalar" else ("json", None)
    if origin is Literal:
        kinds = {type(v) for v in args}
        return ("scalar", kinds.pop()) if len(kinds) == 1 and isinstance(args[0], SCALARS) else ("scalar", None)
    if origin is not None and args:  # Annotated[...]
        return shape(args[0])
    if annotation in SCALARS:
        return "scalar", annotation
    if annotation is Any:
        return "json", None
    return None
