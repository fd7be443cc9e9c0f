"""A whole farm on this machine: the embedded Redis and worker processes, started and stopped together.

`resolve-farm up`, `resolve-farm demo`, the tests and the benchmarks use it. Workers are
real `resolve-farm worker` processes (Celery prefork workers); simulated Resolve nodes share
one simulator library and one storage folder under the farm's home.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.farm import Farm
from orchestrator.local.redis_server import EmbeddedRedis
from orchestrator.nodes import NodeRegistry
from orchestrator.settings import FarmSettings
from orchestrator.store import connect


@dataclass
class WorkerProcess:
    """One worker process of the local farm."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class LocalFarm:
    """Starts Redis (unless a broker URL is set) and workers; stops them all.

    Note: workers get their settings through the environment (RESOLVE_FARM_*), exactly as
    a real host's worker does, and log to `<home>/logs/<name>.log`.
    """

    settings: FarmSettings
    env: dict[str, str] = field(default_factory=dict)
    workers: dict[str, WorkerProcess] = field(default_factory=dict)
    redis: EmbeddedRedis | None = None
    url: str = ""

    @property
    def home(self) -> Path:
        return self.settings.home

    def start(self, nodes: Mapping[str, Mapping[str, Any]], timeout: float = 120.0) -> Farm:
        """Redis, the named Resolve nodes ({name: `add_worker` options}) and a post worker, all up; a handle on them.

        Note: `up`, the demo, the tests and the benchmarks all start their farms here.
        """
        url = self.start_redis()
        for name, options in nodes.items():
            self.add_worker(name, **options)
        self.add_worker("post", post=True, resolve=False)
        self.wait_ready([*nodes, "post"], timeout=timeout)
        return Farm(self.settings.model_copy(update={"broker_url": url}))

    def start_redis(self) -> str:
        if self.settings.broker_url:
            self.url = self.settings.broker_url
        else:
            self.redis = EmbeddedRedis(self.settings)
            self.url = self.redis.start()
        return self.url

    def restart_redis(self, down_for: float = 0.0) -> None:
        """Stop the embedded Redis (flushing its append-only file) and start it again on its port."""
        assert self.redis is not None, "the farm uses an external Redis"
        self.redis.stop()
        time.sleep(down_for)
        self.redis = EmbeddedRedis(self.settings)
        self.redis.start()

    def worker_env(self, **extra: str) -> dict[str, str]:
        env = {
            **os.environ,
            "RESOLVE_FARM_HOME": str(self.home),
            "RESOLVE_FARM_BROKER_URL": self.url,
            "RESOLVE_FARM_STORAGE_ROOTS": ",".join(str(r) for r in self.settings.storage_roots),
            "RESOLVE_SIM_LIBRARY": os.environ.get("RESOLVE_SIM_LIBRARY", str(self.home / "sim" / "library.json")),
            **self.env,
            **extra,
        }
        if self.settings.result_url:
            env["RESOLVE_FARM_RESULT_URL"] = self.settings.result_url
        return env

    def add_worker(
        self, name: str, *, tags: list[str] | None = None, bridge: str = "sim", post: bool = False,
        resolve: bool = True, transcode: bool | None = None, env: dict[str, str] | None = None,
    ) -> WorkerProcess:  # fmt: skip
        """Start a worker: a Resolve node (it transcodes too unless `transcode=False`), a post worker
        (`post=True, resolve=False`), or a transcode-only node (`resolve=False, transcode=True`)."""
        logs = self.home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{name}.log"
        cmd = [sys.executable, "-m", "orchestrator.cli", "worker", "--name", name, "--bridge", bridge]
        if tags:
            cmd += ["--tags", ",".join(tags)]
        if post:
            cmd.append("--post")
        if not resolve:
            cmd.append("--no-resolve")
        if transcode is not None:
            cmd.append("--transcode" if transcode else "--no-transcode")
        with open(log, "ab") as out:
            # Its own process group: a test can kill a worker with its pool, as a host dies.
            process = subprocess.Popen(
                cmd,
                env=self.worker_env(**{"RESOLVE_SIM_HOST": name, **(env or {})}),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = WorkerProcess(name, process, log)
        self.workers[name] = worker
        return worker

    def wait_ready(self, names: list[str], timeout: float = 60.0) -> None:
        """Block until the named workers have announced themselves and are up."""
        registry = NodeRegistry(connect(self.url), self.settings.heartbeat_timeout)
        deadline = time.monotonic() + timeout
        while True:
            up = {n.name for n in registry.all() if n.up}
            missing = [n for n in names if n not in up]
            if not missing:
                return
            for name in missing:
                worker = self.workers.get(name)
                if worker and worker.process.poll() is not None:
                    tail = worker.log.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"worker {name} exited with code {worker.process.returncode}:\n{tail}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers not up after {timeout:g}s: {', '.join(missing)}")
            time.sleep(0.1)

    def stop_worker(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        worker = self.workers.pop(name)
        if worker.process.poll() is None:
            worker.process.send_signal(sig)
            try:
                worker.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                worker.process.wait()
        return worker.process.returncode

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its pool processes at once: the host died."""
        worker = self.workers.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(worker.process.pid, signal.SIGKILL)
        worker.process.wait()

    def stop(self) -> None:
        """Warm-stop every worker (a running task finishes or is requeued), then Redis."""
        for worker in self.workers.values():
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        for name in list(self.workers):
            with contextlib.suppress(ProcessLookupError):
                self.stop_worker(name, signal.SIGTERM)
        if self.redis is not None:
            self.redis.stop()
