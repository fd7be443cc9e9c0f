"""Host-local commands: `doctor` and `worker` reach this host's Resolve through the bridge (imported here only)."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from orchestrator.cli.common import Refused, farm_home, load_settings
from orchestrator.cli.views import print_doctor


def _bridgesettings(mode: str, host: str | None) -> Any:
    from bridge.settings import BridgeSettings
    from bridge.sim.config import SimConfig

    overrides: dict[str, Any] = {"mode": mode, "host": host}
    if mode == "sim" and not os.environ.get("RESOLVE_SIM_LIBRARY"):
        library = str(farm_home() / "sim" / "library.json")
        overrides["sim"] = SimConfig.from_env({**os.environ, "RESOLVE_SIM_LIBRARY": library})
    return BridgeSettings.from_env(**overrides)


def cmd_doctor(args: argparse.Namespace) -> int:
    from bridge.doctor import report

    result = report(_bridgesettings(args.bridge, args.host))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_doctor(result)
    return 0 if result["ok"] else 1


def cmd_worker(args: argparse.Namespace) -> int:
    """Run this host's worker: Resolve tasks (concurrency 1), stitching, or both."""
    resolve = not args.no_resolve
    # A Resolve host transcodes too (PyAV, for proxies) unless told not to; a worker without Resolve only when asked.
    transcode = args.transcode or (resolve and not args.no_transcode)
    roles = (["resolve"] if resolve else []) + (["transcode"] if transcode else []) + (["post"] if args.post else [])
    if not roles:
        raise Refused("a worker needs a role: drop --no-resolve, or add --post or --transcode")
    env = {"RESOLVE_FARM_ROLES": ",".join(roles), "RESOLVE_FARM_BRIDGE": args.bridge}
    if args.name:
        env["RESOLVE_FARM_NODE_NAME"] = args.name
    if args.tags is not None:
        env["RESOLVE_FARM_NODE_TAGS"] = args.tags
    os.environ.update(env)
    settings = load_settings()
    from orchestrator.app import get_app
    from orchestrator.routing import worker_queues

    queues = args.queues or ",".join(
        worker_queues(settings.node_name, settings.node_tags, "resolve" in roles, "post" in roles, "transcode" in roles)
    )
    one_at_a_time = "resolve" in roles or "transcode" in roles  # one Resolve call, or one transcode, per host
    argv = [
        "worker", "--hostname", f"{settings.node_name}@%h", "--queues", queues, "--pool", "prefork",
        "--concurrency", str(args.concurrency or (1 if one_at_a_time else 2)), "--events",
        "--without-gossip", "--without-mingle", "--loglevel", args.loglevel,
    ]  # fmt: skip
    get_app().worker_main(argv)
    return 0
