"""`resolve-farm mcp`: the command that serves the farm over MCP, added to the CLI from here.

The CLI finds it through the `resolve_farm.commands` entry point (pyproject.toml), so the
orchestrator, whose CLI it is, imports nothing of `mcp_server`.
"""

from __future__ import annotations

import argparse
from typing import Any

from orchestrator.refusals import Refused


def add_command(sub: Any) -> None:
    p = sub.add_parser("mcp", help="serve the farm to MCP clients (stdio, or streamable HTTP with --http)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP here (tokens: RESOLVE_FARM_MCP_TOKENS)")
    p.add_argument(
        "--conformance",
        action="store_true",
        help="also serve the MCP conformance suite's fixtures (loopback HTTP only; for CI)",
    )
    p.set_defaults(func=cmd_mcp)


def cmd_mcp(args: argparse.Namespace) -> int:
    from mcp_server.run import parse_bind, serve_http, serve_stdio
    from orchestrator.cli.common import connect_farm
    from orchestrator.cli.views import err

    farm = connect_farm()
    if args.http:
        host, port = parse_bind(args.http)
        err.print(f"resolve-farm MCP server on http://{host}:{port}/mcp")
        serve_http(farm, host, port, conformance=args.conformance)
    elif args.conformance:
        raise Refused("--conformance", "it is for the conformance suite over HTTP: give --http 127.0.0.1:PORT")
    else:
        serve_stdio(farm)
    return 0
