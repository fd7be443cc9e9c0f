"""Questions a submit tool asks the agent's user before it queues anything: today, what to do about an output name
that names a file already (`OutputExists`).

A 2026-07-28 client that declared elicitation gets an `input_required` result (SEP-2322) with
one form, and answers by calling the tool again with the answer and the state, which the SDK
seals; an older client that declared elicitation is asked in the call (`elicitation/create`). A
client that declared neither gets the refusal, which names the argument that decides
(`overwrite`). A task-augmented call is asked the same way, before its task exists.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ElicitRequest, ElicitRequestFormParams, ElicitResult, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field

from orchestrator.kinds.base import OutputExists

OUTPUT_EXISTS = "output_exists"  # the key of the question in `input_requests`
ROUNDS = 3  # names taken again while asked (a race with another writer): ask at most this often in one call
Choice = Literal["overwrite", "new_version", "cancel"]


class OutputChoice(BaseModel):
    """The form: what to do about the file the output name names."""

    choice: Choice = Field(
        description="overwrite: replace the file; new_version: render under the next free name; cancel: queue nothing"
    )


def can_ask(ctx: Context) -> Literal["result", "inline"] | None:
    """How this client can be asked: by an `input_required` result, in the call, or not at all."""
    capabilities = ctx.client_capabilities
    if capabilities is None or capabilities.elicitation is None:
        return None
    return "result" if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS else "inline"


def _message(exists: OutputExists) -> str:
    return (f"{exists.existing} exists. Replace it (overwrite), render under the next free name "
            f"{exists.free!r} (new_version), or cancel?")  # fmt: skip


def question(exists: OutputExists) -> InputRequiredResult:
    """The `input_required` result asking about `exists`; its state names the file asked about."""
    form = ElicitRequest(
        params=ElicitRequestFormParams(message=_message(exists), requested_schema=OutputChoice.model_json_schema())
    )
    state = json.dumps({"existing": exists.existing})
    return InputRequiredResult(input_requests={OUTPUT_EXISTS: form}, request_state=state)


def answered(ctx: Context) -> tuple[Choice, str] | None:
    """(the choice, the file it was asked about) from a call that carries the answer; None for a first call.

    Note: a declined or cancelled form is a `cancel`; an accepted one without a valid choice is
    a tool error, as any bad argument is.
    """
    answer = (ctx.input_responses or {}).get(OUTPUT_EXISTS)
    if answer is None or ctx.request_state is None:
        return None
    asked = str(json.loads(ctx.request_state).get("existing", ""))
    if not isinstance(answer, ElicitResult) or answer.action != "accept":
        return "cancel", asked
    try:
        return OutputChoice.model_validate(answer.content or {}).choice, asked
    except ValueError:
        raise ToolError(
            f"refused: {OUTPUT_EXISTS}.choice: {(answer.content or {}).get('choice')!r} is not one of overwrite, "
            "new_version, cancel"
        ) from None


async def ask_inline(ctx: Context, exists: OutputExists) -> Choice:
    """Ask in the call (a client of the handshake era): the choice; `cancel` when the form is not accepted."""
    result: Any = await ctx.elicit(_message(exists), OutputChoice)
    return result.data.choice if result.action == "accept" and result.data is not None else "cancel"


def cancelled(existing: str) -> ToolError:
    """The answer to a call whose user chose not to go on: nothing was queued."""
    return ToolError(f"not submitted: the user chose to cancel rather than replace {existing}; nothing was queued")


async def submit_asking(ctx: Context, spec: dict[str, Any], submit: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
    """Submit `spec` by `submit` (which answers the job record, or the `OutputExists` it was refused with); when
    the output name is taken, apply the user's answer, ask, or refuse. The job record, or the question.

    Note: an answer applies to the file it was asked about: when another file is in the way
    by the retry (the new version's name taken meanwhile), the user is asked again.
    """
    answer = answered(ctx)
    if answer is not None and answer[0] == "cancel":
        raise cancelled(answer[1])
    for _ in range(ROUNDS):
        outcome = await submit(spec)
        if not isinstance(outcome, OutputExists):
            return outcome
        if answer is None and can_ask(ctx) == "inline":
            answer = (await ask_inline(ctx, outcome), outcome.existing)
        if answer is None or answer[1] != outcome.existing:
            if can_ask(ctx) == "result":
                return question(outcome)
            if can_ask(ctx) is None:
                raise ToolError(f"refused: {outcome}")
            answer = None
            continue
        if answer[0] == "cancel":
            raise cancelled(answer[1])
        spec = {**spec, "overwrite": True} if answer[0] == "overwrite" else {**spec, "output_name": outcome.free}
        answer = None  # spent on this file
    raise ToolError(f"refused: output_name: still taken after {ROUNDS} tries (another writer keeps taking it)")
