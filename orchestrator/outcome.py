"""What a lifecycle transition decided: the verdict, and what the caller must do once the record is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Verdict = Literal["run", "skip", "move", "wait", "stale", "retry", "failed", "done", "cancelled", "discard"]


@dataclass(frozen=True)
class Send:
    """A piece to send now, on its own queue or, when `node` is set, on that node's."""

    piece: str
    node: str | None = None


@dataclass
class Outcome:
    """What a transition decided, for the caller to carry out after the record is written."""

    verdict: Verdict
    reason: str = ""
    send: list[Send] = field(default_factory=list)
    revoke: list[str] = field(default_factory=list)  # message ids nobody should run any more
    unhealthy: str | None = None  # mark the claiming/failing node unhealthy, for this reason
    lost_on: str | None = None  # a node whose worker died mid-piece
    count_failure: bool = False
    stop: bool = False  # progress: the piece should stop (job finished or cancelled)
