"""Host-local commands: `doctor` and `worker` reach this host's Resolve through the bridge (imported here only)."""

from __future__ import annotations

import argparse
import json
import os
import platform
from typing import Any

from orchestrator.cli.common import farm_home, load_settings
from orchestrator.cli.views import err, print_doctor
from orchestrator.refusals import Refused


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
    result["worker"] = _worker_checks(args.bridge)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_doctor(result)
    return 0 if result["ok"] and result["worker"]["ok"] else 1


def _worker_checks(bridge: str) -> dict[str, Any]:
    """The pool a worker would run here, and the farm's learnt start cost of this node when the farm is reachable
    (only a configured broker is asked: the doctor starts nothing)."""
    import redis

    from orchestrator.pools import worker_report
    from orchestrator.pull.speeds import SpeedBook

    settings = load_settings()
    learnt, reached = None, "no broker configured (RESOLVE_FARM_BROKER_URL): learnt start costs not checked"
    if settings.broker_url:
        client = redis.Redis.from_url(settings.broker_url, socket_connect_timeout=3, socket_timeout=3,
                                      decode_responses=True)  # fmt: skip
        try:
            learnt, reached = SpeedBook(client).node_start(settings.node_name), ""
        except redis.RedisError as exc:
            reached = f"the farm's Redis did not answer ({type(exc).__name__}): learnt start costs not checked"
        finally:
            client.close()
    checks = worker_report(settings.worker_pool, bridge, platform.system(), settings.render_time_limit, learnt)
    if reached:
        checks["notes"].append(reached)
    return checks


def cmd_worker(args: argparse.Namespace) -> int:
    """Run this host's worker: Resolve tasks (concurrency 1), stitching, or both; in the pool this system allows
    (`orchestrator.pools`)."""
    resolve = not args.no_resolve
    # A Resolve host transcodes too (PyAV, for proxies) unless told not to; a worker without Resolve only when asked.
    transcode = args.transcode or (resolve and not args.no_transcode)
    roles = (["resolve"] if resolve else []) + (["transcode"] if transcode else []) + (["post"] if args.post else [])
    if not roles:
        raise Refused("roles", "a worker needs a role: drop --no-resolve, or add --post or --transcode")
    from orchestrator.pools import MACOS_PREFORK, PoolRefused, bridge_for, pool_for

    try:
        pool = pool_for(args.pool or os.environ.get("RESOLVE_FARM_WORKER_POOL") or "auto")
        bridge = bridge_for(pool, args.bridge) if resolve else args.bridge
    except PoolRefused as exc:
        field, _, reason = str(exc).partition(": ")
        raise Refused(field, reason) from None
    if pool == "prefork" and platform.system() == "Darwin":
        err.print(f"[yellow]warning[/]: {MACOS_PREFORK}")
    env = {"RESOLVE_FARM_ROLES": ",".join(roles), "RESOLVE_FARM_BRIDGE": bridge, "RESOLVE_FARM_WORKER_POOL": pool}
    if args.name:
        env["RESOLVE_FARM_NODE_NAME"] = args.name
    if args.tags is not None:
        env["RESOLVE_FARM_NODE_TAGS"] = args.tags
    os.environ.update(env)
    settings = load_settings()
    from orchestrator import telemetry
    from orchestrator.app import get_app
    from orchestrator.routing import worker_queues

    queues = args.queues or ",".join(
        worker_queues(settings.node_name, settings.node_tags, "resolve" in roles, "post" in roles, "transcode" in roles)
    )
    one_at_a_time = "resolve" in roles or "transcode" in roles  # one Resolve call, or one transcode, per host
    argv = [
        "worker", "--hostname", f"{settings.node_name}@%h", "--queues", queues, "--pool", pool,
        "--concurrency", str(args.concurrency or (1 if one_at_a_time else 2)), "--events",
        "--without-gossip", "--without-mingle", "--loglevel", args.loglevel,
    ]  # fmt: skip
    telemetry.trace_worker(prefork=pool == "prefork", instance=settings.node_name)
    get_app().worker_main(argv)
    return 0
