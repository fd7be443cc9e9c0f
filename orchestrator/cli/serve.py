"""Commands that run parts of the farm: `up` (a local farm), `flower`, `metrics`, `demo` (`mcp`: `mcp_server`)."""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import time
from typing import Any

from orchestrator.cli.common import connect_farm, load_settings
from orchestrator.cli.views import err
from orchestrator.refusals import Refused


def cmd_up(args: argparse.Namespace) -> int:
    from orchestrator.local.farm import LocalFarm
    from orchestrator.local.metrics_server import serve as serve_metrics
    from orchestrator.local.watch import start_flower

    for port, what, flag in (
        (args.flower_port, "Flower", "--flower-port"),
        (args.metrics_port, "metrics", "--metrics-port"),
    ):
        if port and not _port_free(port):
            raise Refused(flag, f"port {port} ({what}) is already in use on 127.0.0.1: choose another")
    farm = LocalFarm(load_settings())
    stop = {"now": False}
    flower: Any = None
    metrics: Any = None

    def ask_stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)
    try:
        names = [f"sim-{i}" for i in range(1, args.nodes + 1)]
        handle = farm.start({name: {"bridge": args.bridge} for name in names}, timeout=60)
        url = handle.url
        flower_log = farm.home / "logs" / "flower.log"
        flower = start_flower(handle.settings, url, "127.0.0.1", args.flower_port, flower_log)
        try:
            metrics = serve_metrics(handle, "127.0.0.1", args.metrics_port)
        except OSError as exc:  # taken since the check above
            raise Refused("--metrics-port", f"metrics could not listen on port {args.metrics_port} ({exc.strerror}): "
                          "choose another with --metrics-port") from None  # fmt: skip
        where = "embedded, " + url.split("@")[-1] if farm.redis else "external"
        err.print(f"resolve-farm is up: {len(names)} Resolve node(s) ({args.bridge}) and a post worker; Redis {where}")
        flower_url, metrics_url = (
            f"http://127.0.0.1:{args.flower_port}",
            f"http://127.0.0.1:{metrics.server_port}/metrics",
        )
        if not _answers(flower_url, flower, timeout=30):
            raise Refused("--flower-port", f"Flower did not answer on port {args.flower_port} (see {flower_log}): "
                          "choose another port with --flower-port")  # fmt: skip
        err.print(f"Flower: {flower_url}")
        if not _answers(metrics_url, None, timeout=10):
            raise Refused("--metrics-port", f"metrics did not answer on port {metrics.server_port}: choose another")
        err.print(f"metrics: {metrics_url}")
        err.print(f"home: {farm.home}; logs in {farm.home / 'logs'}; Ctrl-C stops everything")
        pids = {name: w.process.pid for name, w in farm.workers.items()}
        started = {"broker_url": _safe_url(url), "home": str(farm.home), "nodes": names, "pids": pids}
        print(json.dumps(started), flush=True)
        while not stop["now"]:
            for name, worker in farm.workers.items():
                if worker.process.poll() is not None:
                    err.print(f"[red]worker {name} exited with code {worker.process.returncode}[/]")
                    stop["now"] = True
            time.sleep(0.2)
    finally:
        err.print("stopping the farm...")
        if flower is not None and flower.poll() is None:
            flower.terminate()
            flower.wait(timeout=10)
        if metrics is not None:
            metrics.shutdown()
        farm.stop()
        err.print("stopped")
    return 0


def _port_free(port: int) -> bool:
    """Can a server listen on 127.0.0.1:port now (as Flower and the metrics server would)?"""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _answers(url: str, process: Any, timeout: float) -> bool:
    """Wait until an HTTP server answers at `url` (any status: Flower may ask for a password); False if it
    never does, or its process exits first."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # it answered, with 401 or the like
        except OSError:
            time.sleep(0.2)  # not listening yet
    return False


def _safe_url(url: str) -> str:
    """The URL without its password: secrets never reach logs or output."""
    if "@" in url and ":" in url.split("@")[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def cmd_flower(args: argparse.Namespace) -> int:
    import subprocess

    from orchestrator.local.watch import Exposed, flower_command

    try:
        handle = connect_farm()
        cmd, env = flower_command(handle.settings, handle.url, args.address, args.port)
    except Exposed as exc:
        raise Refused("--address", str(exc)) from None
    err.print(f"Flower: http://{args.address}:{args.port}")
    return subprocess.call(cmd, env=env)


def cmd_metrics(args: argparse.Namespace) -> int:
    from orchestrator.local.metrics_server import serve

    serve(connect_farm(), args.host, args.port)
    err.print(f"metrics: http://{args.host}:{args.port}/metrics")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        signal.pause()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestrator.local.demo import run_demo

    return run_demo(args.nodes, args.timeline, compare=not args.no_compare)
