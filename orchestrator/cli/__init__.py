"""The `resolve-farm` command: run the farm, submit and follow jobs, check a host.

| module | commands |
|---|---|
| `host` | `doctor`, `worker` (this host's Resolve, through the bridge) |
| `jobs` | `submit`, `status`, `jobs`, `log`, `answer`, `cancel`, `retry`, `nodes` |
| `faces` | a command for each kind's face (`orchestrator.kinds.face`): `render`, `edit`, `proxies`, plugins' |
| `serve` | `up`, `flower`, `metrics`, `demo` (`mcp` is added by `mcp_server.command`, an entry point) |
| `views` | how all of them print |
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from importlib.metadata import entry_points
from typing import Any

import redis

from orchestrator.cli.common import BRIDGE_MODES
from orchestrator.cli.faces import add_commands
from orchestrator.cli.host import cmd_doctor, cmd_worker
from orchestrator.cli.jobs import (
    cmd_answer,
    cmd_cancel,
    cmd_jobs,
    cmd_log,
    cmd_nodes,
    cmd_retry,
    cmd_status,
    cmd_submit,
)
from orchestrator.cli.serve import cmd_demo, cmd_flower, cmd_metrics, cmd_up
from orchestrator.cli.views import err
from orchestrator.models import JOB_STATES
from orchestrator.refusals import Refused

__all__ = ["build_parser", "main"]
COMMANDS = "resolve_farm.commands"  # entry points: f(subparsers) adds a command (mcp_server's `mcp`)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, the commands of kinds' faces included."""
    parser, sub = _built_in()
    add_commands(sub)  # one for each kind that declares a face, plugins' included
    return parser


def _built_in() -> tuple[argparse.ArgumentParser, Any]:
    """The command line without the faces' commands (finding those loads the plugins and every kind: start-up
    time a built-in command need not pay); the parser and its subcommands."""
    parser = argparse.ArgumentParser(prog="resolve-farm", description="A render and edit farm for DaVinci Resolve.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="diagnose this host's bridge to Resolve")
    p.add_argument("--bridge", choices=BRIDGE_MODES, default=os.environ.get("RESOLVE_FARM_BRIDGE", "auto"))
    p.add_argument("--host", help="a Resolve on another machine (network scripting)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("up", help="run a local farm: embedded Redis, simulated nodes, a post worker")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--bridge", choices=BRIDGE_MODES, default="sim")
    p.add_argument("--flower-port", type=int, default=5555)
    p.add_argument("--metrics-port", type=int, default=9808)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run this host's worker")
    p.add_argument("--name", help="node name (default: RESOLVE_FARM_NODE_NAME or the host name)")
    p.add_argument("--tags", help="comma-separated capabilities, e.g. studio,gpu")
    p.add_argument("--bridge", choices=BRIDGE_MODES, default=os.environ.get("RESOLVE_FARM_BRIDGE", "auto"))
    p.add_argument("--queues", help="comma-separated queues (default: from name, tags and roles)")
    p.add_argument("--post", action="store_true", help="also stitch (the post queue)")
    p.add_argument(
        "--no-resolve", action="store_true", help="take no Resolve tasks (a post-only or transcode-only worker)"
    )
    p.add_argument(
        "--transcode", action="store_true", help="transcode proxies (Resolve workers do unless --no-transcode)"
    )
    p.add_argument("--no-transcode", action="store_true", help="a Resolve worker that takes no transcodes")
    p.add_argument("--concurrency", type=int, help="processes, or threads (default 1 for Resolve workers)")
    p.add_argument(
        "--pool", choices=("auto", "prefork", "threads"),
        help="Celery pool (default RESOLVE_FARM_WORKER_POOL, else auto: prefork on Linux, threads elsewhere)",
    )  # fmt: skip
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("submit", help="submit a job of any kind, plugins' included, from a spec and --set fields")
    p.add_argument("kind", help="render, edit, proxies, hold, or a kind a plugin adds (RESOLVE_FARM_PLUGINS)")
    p.add_argument("--spec", metavar="FILE", help="the spec, JSON or YAML; '-' reads it from stdin")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="a field (repeatable): dotted keys reach nested fields, values parse as JSON where they can "
                        "(numbers, true, lists, objects), else are strings")  # fmt: skip
    p.add_argument("--after", action="append", metavar="JOB", help="start once this job succeeded (repeatable)")
    p.add_argument("--wait", action="store_true", help="follow the job to its end")
    p.add_argument("--json", action="store_true", help="stdout holds only the job record as JSON")
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("status", help="one job")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--state", choices=JOB_STATES)
    p.add_argument("--kind", help="only jobs of this kind (render, edit, proxies, hold, or a plugin's)")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--wide", action="store_true", help="whole ids and times (the table may pass 80 columns)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("log", help="what the workers wrote for a job's pieces")
    p.add_argument("job")
    p.add_argument("piece", nargs="?", help="one piece, e.g. 'segment 2/4' or stitch (default: all)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_log)

    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("job")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("answer", help="answer what a job asks (shown by status): yes goes on, no cancels it")
    p.add_argument("job")
    p.add_argument("key", help="what the question is asked by, as status shows it")
    p.add_argument("answer", choices=("yes", "no"))
    p.set_defaults(func=cmd_answer)

    p = sub.add_parser("retry", help="run again what failed in a job")
    p.add_argument("job")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("nodes", help="the farm's nodes")
    p.add_argument("--wide", action="store_true", help="also tags, bridge and version key (may pass 80 columns)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser("flower", help="Flower for the farm (basic auth from RESOLVE_FARM_FLOWER_USER/PASSWORD)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser("metrics", help="serve Prometheus metrics (resolve_farm_*)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9808)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("demo", help="start a local farm, render the demo timeline across it, verify, stop")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--timeline", default="Main")
    p.add_argument("--no-compare", action="store_true", help="skip the one-node reference render")
    p.set_defaults(func=cmd_demo)
    for entry in entry_points(group=COMMANDS):  # `mcp`, from mcp_server (the orchestrator imports none of it)
        entry.load()(sub)
    return parser, sub


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser, sub = _built_in()
    if not argv or argv[0] not in sub.choices:  # a face's command, or help: the faces too
        add_commands(sub)
    args = parser.parse_args(argv)
    from orchestrator import telemetry
    from orchestrator.local.redis_server import RedisNotRunning
    from orchestrator.store import JobNotFound

    try:
        if args.command != "worker":  # a worker traces in its pool processes (`telemetry.trace_worker`)
            telemetry.configure("resolve-farm-mcp" if args.command == "mcp" else "resolve-farm-cli")
        return int(args.func(args))
    except (Refused, JobNotFound, RedisNotRunning) as exc:  # nothing was changed
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        err.print(f"[red]refused[/]: {exc}")
        return 2
    except redis.exceptions.ConnectionError as exc:
        message = f"the farm's Redis is not reachable ({exc}): is the farm up, and RESOLVE_FARM_BROKER_URL right?"
        if getattr(args, "json", False):
            print(json.dumps({"error": message}))
        err.print(f"[red]error[/]: {message}")
        return 3
    except KeyboardInterrupt:
        return 130
