"""Calls into the orchestrator from the MCP server, and what an agent is told when the farm is away.

A blocking orchestrator call runs in a worker thread; its refusals become tool errors. When
the farm's Redis cannot be reached, the error says which address does not answer and what
to do (start `resolve-farm up`, or set RESOLVE_FARM_BROKER_URL), the log gets one line,
and the next call tries again, so the server recovers by itself when Redis is back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import redis
from anyio import to_thread
from kombu.exceptions import OperationalError
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import ValidationError

from orchestrator.farm import Farm
from orchestrator.local.redis_server import EmbeddedRedis, RedisNotRunning
from orchestrator.refusals import Refused, validation_errors
from orchestrator.store import AmbiguousJob, JobNotFound

log = logging.getLogger(__name__)
T = TypeVar("T")
# Redis refused or timed out, no embedded Redis known, or Celery could not publish to the broker.
UNREACHABLE = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, RedisNotRunning, OperationalError)
FIX = "start the farm with `resolve-farm up`, or set RESOLVE_FARM_BROKER_URL to the farm's Redis"


# What a Farm caches on first use: dropped when the farm is away, so a farm that comes back
# on another address is found again (the embedded Redis's address is read from its state file).
class FarmAway(ToolError):
    """The farm's Redis does not answer: the message names the address and what to do."""


def _where(url: str) -> str:
    """host:port/db of a Redis URL, without its password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def explain(farm: Farm, exc: BaseException) -> str:
    """What is unreachable and how to fix it, in one line."""
    if isinstance(exc, RedisNotRunning):
        return f"no farm is reachable: {exc}"
    settings = farm.settings
    if settings.broker_url:
        return (
            f"no farm is reachable: Redis at {_where(settings.broker_url)} (RESOLVE_FARM_BROKER_URL) does not answer "
            f"({type(exc).__name__}); is the farm up there? Else {FIX}"
        )
    embedded = EmbeddedRedis(settings)
    stale = embedded.stale()
    if stale:
        return f"no farm is reachable: {stale}, so its address is stale; {FIX}"
    return (
        f"no farm is reachable: the local farm's Redis at 127.0.0.1:{embedded.port} does not answer "
        f"({type(exc).__name__}); {FIX}"
    )


class FarmCalls:
    """Runs orchestrator calls for the MCP server and turns every way they fail into a tool error.

    Note: the farm being away is logged as one warning line per failed call (no traceback),
    and the farm's cached connections are dropped so the next call reconnects from scratch.
    """

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def away(self, exc: BaseException) -> FarmAway:
        message = explain(self.farm, exc)
        log.warning("%s", message)
        if not self.farm.settings.broker_url:
            self.farm.reconnect()
        return FarmAway(message)

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking orchestrator call in a thread; turn its refusals into tool errors."""
        try:
            return await to_thread.run_sync(fn, *args)
        except ValidationError as exc:
            raise ToolError(f"refused: {validation_errors(exc)}") from None
        except AmbiguousJob as exc:  # invalid params, as for any argument that names nothing one thing
            raise MCPError(INVALID_PARAMS, str(exc), {"candidates": exc.candidates}) from None
        except Refused as exc:
            raise ToolError(f"refused: {exc}") from None
        except JobNotFound as exc:
            raise ToolError(str(exc)) from None
        except UNREACHABLE as exc:
            raise self.away(exc) from None
