"""A farm spread over network namespaces: each host with its own address, joined by veth links.

Redis in one namespace, each Resolve worker in its own, the post worker in another, and a
client namespace for submitting: traffic crosses real (virtual) links and never leaves the
namespaces this module made. Needs root and iproute2 (`ip netns`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SUBNET = "10.213.7"
HUB = "rf-hub"
REDIS_PORT = 6390
PASSWORD = "netns-farm-pw"


def available() -> str | None:
    """None when namespaces can be made here, else why not."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "needs iproute2 (ip)"
    name = f"rf-probe-{os.getpid()}"  # (each test process probes at collection: one shared name made one skip)
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode:
        return f"cannot create a network namespace: {probe.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], check=False)
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    cmd = (["ip", "netns", "exec", ns] if ns else []) + ["ip", *args]
    subprocess.run(cmd, check=True, capture_output=True)


class NetnsFarm:
    """Namespaced hosts, Redis and workers, started and torn down together."""

    def __init__(
        self, home: Path, hosts: list[str], env: dict[str, str], tags: dict[str, list[str]] | None = None
    ) -> None:
        self.home = home
        self.hosts = hosts
        self.tags = tags or {}
        self.env = env
        self.addresses: dict[str, str] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.broker = f"redis://:{PASSWORD}@{SUBNET}.1:{REDIS_PORT}/0"

    def ns(self, host: str) -> str:
        return f"rf-{host}"

    def build(self) -> None:
        subprocess.run(["ip", "netns", "add", HUB], check=True)
        _ip("link", "add", "rfbr", "type", "bridge", ns=HUB)
        _ip("link", "set", "rfbr", "up", ns=HUB)
        for i, host in enumerate(["redis", *self.hosts, "post", "client"], start=1):
            ns, address = self.ns(host), f"{SUBNET}.{i}"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            _ip("link", "add", f"rfv-{host}"[:15], "type", "veth", "peer", "name", f"rfb-{host}"[:15])
            _ip("link", "set", f"rfv-{host}"[:15], "netns", ns)
            _ip("link", "set", f"rfb-{host}"[:15], "netns", HUB)
            _ip("link", "set", f"rfb-{host}"[:15], "master", "rfbr", ns=HUB)
            _ip("link", "set", f"rfb-{host}"[:15], "up", ns=HUB)
            _ip("addr", "add", f"{address}/24", "dev", f"rfv-{host}"[:15], ns=ns)
            _ip("link", "set", f"rfv-{host}"[:15], "up", ns=ns)
            _ip("link", "set", "lo", "up", ns=ns)
            self.addresses[host] = address

    def run_in(self, host: str, argv: list[str], log: Path | None = None, **extra: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, **self.env, "RESOLVE_FARM_BROKER_URL": self.broker, **extra}
        out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
        return subprocess.Popen(["ip", "netns", "exec", self.ns(host), *argv], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

    def start(self) -> None:
        from orchestrator.local.redis_server import redis_binary

        self.build()
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.processes["redis"] = self.run_in("redis", [
            redis_binary(), "--bind", self.addresses["redis"], "--port", str(REDIS_PORT), "--save", "",
            "--appendonly", "no", "--requirepass", PASSWORD, "--dir", str(self.home),
        ], logs / "redis.log")  # fmt: skip
        worker = [sys.executable, "-m", "orchestrator.cli", "worker", "--bridge", "sim"]
        for host in self.hosts:
            self.processes[host] = self.run_in(host, [*worker, "--name", host], logs / f"{host}.log",
                                               RESOLVE_FARM_HOME=str(self.home / host),
                                               RESOLVE_SIM_THROTTLE=str(self.throttle_file(host)),
                                               RESOLVE_FARM_NODE_TAGS=",".join(self.tags.get(host, [])))  # fmt: skip
        self.processes["post"] = self.run_in("post", [*worker, "--name", "post", "--post", "--no-resolve"],
                                             logs / "post.log", RESOLVE_FARM_HOME=str(self.home / "post"))  # fmt: skip
        deadline = time.monotonic() + 120
        while True:
            up = {n["name"] for n in self.cli_json("nodes") if n["up"]}
            if up >= {*self.hosts, "post"}:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"hosts not up: {set(self.hosts) - up}")
            time.sleep(0.5)

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`resolve-farm ARGS` run on the client host."""
        env = {
            **os.environ,
            **self.env,
            "RESOLVE_FARM_BROKER_URL": self.broker,
            "RESOLVE_FARM_HOME": str(self.home / "client"),
        }
        return subprocess.run(["ip", "netns", "exec", self.ns("client"), sys.executable, "-m", "orchestrator.cli", *args],
                              env=env, capture_output=True, text=True, timeout=timeout)  # fmt: skip

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        if done.returncode not in (0, 1):
            raise RuntimeError(done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else []

    def throttle_file(self, host: str) -> Path:
        """The file that slows a host's simulated renders while it holds a factor (`RESOLVE_SIM_THROTTLE`)."""
        return self.home / f"throttle-{host}"

    def slow(self, host: str, factor: float | None) -> None:
        """Render `factor` times slower on `host` from its next frames on; None: at its own speed again."""
        if factor is None:
            self.throttle_file(host).unlink(missing_ok=True)
        else:
            self.throttle_file(host).write_text(f"{factor:g}")

    def cut(self, host: str) -> None:
        """Take a host's link down: the host is cut off from the farm."""
        _ip("link", "set", f"rfv-{host}"[:15], "down", ns=self.ns(host))

    def reconnect(self, host: str, timeout: float = 60) -> None:
        """Bring a cut host's link back up; wait until it is up and healthy again, which its worker shows by
        taking the Resolve check its heartbeat sends to its own queue (so it consumes again)."""
        _ip("link", "set", f"rfv-{host}"[:15], "up", ns=self.ns(host))
        deadline = time.monotonic() + timeout
        while not any(n["name"] == host and n["up"] and not n["unhealthy"] for n in self.cli_json("nodes")):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{host} did not come back within {timeout:g}s")
            time.sleep(0.5)

    def stop(self) -> None:
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
        for host in ["redis", *self.hosts, "post", "client"]:
            subprocess.run(["ip", "netns", "del", self.ns(host)], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", HUB], check=False, capture_output=True)
