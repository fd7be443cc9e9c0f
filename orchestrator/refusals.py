"""`Refused`: the one error for a request the farm turns down, from any face (CLI, MCP, Python).

A refusal names the field that decides and the reason, and means nothing was changed: nothing
stored, queued or written. The CLI prints it and exits 2; the MCP server answers it as a tool
error (or -32602 where the protocol wants one). `validation_errors` words pydantic's errors the
same way for every face.
"""

from __future__ import annotations

from pydantic import ValidationError


class Refused(ValueError):
    """A request the farm refuses; `field` names what is wrong (a spec field, an argument, a flag, a
    variable) and `reason` why."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def validation_errors(exc: ValidationError) -> str:
    """Every error of a validation as `field.path: message`, joined by `; `."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
