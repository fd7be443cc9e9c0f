"""Running the MCP server: stdio for desktop clients, streamable HTTP (with tokens) for remote ones."""

from __future__ import annotations

import logging
import sys

import anyio
import uvicorn

from mcp_server.server import build_server
from orchestrator.farm import Farm
from orchestrator.local.watch import loopback
from orchestrator.refusals import Refused


def parse_bind(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise Refused("--http", f"wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def serve_stdio(farm: Farm) -> None:
    """Serve on stdin/stdout; logs go to stderr, which is not the protocol."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    anyio.run(build_server(farm).run_stdio_async)


def serve_http(farm: Farm, host: str, port: int, conformance: bool = False) -> None:
    """Serve streamable HTTP at http://host:port/mcp; refuses a non-loopback address without tokens, and the
    conformance suite's fixtures (`conformance`) anywhere but on loopback."""
    tokens = farm.settings.mcp_tokens
    if conformance and not loopback(host):
        raise Refused("--conformance", f"the conformance suite's fixtures are served on loopback only, not on {host}")
    if not loopback(host) and not tokens:
        raise Refused(
            "--http",
            f"refusing to serve MCP on {host} without a token: set RESOLVE_FARM_MCP_TOKENS, or bind to 127.0.0.1",
        )
    url = f"http://{host}:{port}/mcp"
    server = build_server(farm, tokens=tokens or None, url=url, conformance=conformance)
    app = server.streamable_http_app(host=host)
    # access_log off: request lines carry nothing secret, but headers never get near a log either way.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
