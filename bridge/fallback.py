"""The parent side of the subprocess path: start, talk to, time out and restart the helper."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO, Any, cast

from bridge import install, winjob
from bridge.errors import ERRORS, BridgeError, CallTimeout, ConnectError, HelperDied, LibraryLoadError

HELPER = Path(__file__).with_name("helper.py")
PARENT_VARIABLE = "RESOLVE_HELPER_PARENT"  # as bridge/helper.py reads it (the helper imports nothing of ours)


def helper_python(configured: str | None) -> str:
    """The helper's interpreter: RESOLVE_PYTHON when set, else Resolve's bundled one when installed (21.1 ships one
    beside the application, matching its scripting library by construction: `bridge.install`), else this one."""
    if configured:
        return configured
    for candidate in install.bundled_pythons():
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return sys.executable


class Helper:
    """One long-lived helper process and its pipe.

    Note: a call that times out kills the helper (a call hung inside fusionscript cannot be
    interrupted any other way); the next call starts a fresh one and reconnects. On POSIX the
    helper leads a process group of its own, and the kill ends the whole group: what the helper
    started (a process Resolve's library spawned, a tool it ran) dies with it instead of living
    on, holding files or a GPU. On Windows the helper is put in a Job Object that ends the same
    way (`bridge.winjob`; built and checked here, not yet run on a Windows host).
    """

    def __init__(
        self,
        python: str | None = None,
        env: dict[str, str] | None = None,
        host: str | None = None,
        connect_timeout: float = 30.0,
        args: tuple[str, ...] = (),
    ) -> None:
        self.python = helper_python(python)
        self.env = env or {}
        self.host = host
        self.connect_timeout = connect_timeout
        self.args = args
        self.restarts = 0
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._stderr: IO[str] | None = None
        self._job: winjob.Job | None = None  # Windows: what ends the helper and all it started

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> dict[str, Any]:
        """Start the helper and connect it to Resolve; returns what Resolve said about itself."""
        with self._lock:
            return self._start()

    def _start(self) -> dict[str, Any]:
        self._kill()
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1", PARENT_VARIABLE: str(os.getpid())}
        # Kept open for the helper's life, so that a death can be explained with its last words.
        if self._stderr is not None:
            self._stderr.close()  # the last helper's, read already
        self._stderr = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        try:
            self._proc = subprocess.Popen(
                [self.python, *self.args, str(HELPER)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._stderr,
                env=env,
                text=True,
                encoding="utf-8",
                bufsize=1,
                start_new_session=os.name == "posix",  # its own process group: `_kill` ends what it started too
            )
        except OSError as exc:
            raise ConnectError(
                f"cannot start the helper under {self.python}: {exc.strerror}",
                fix="set RESOLVE_PYTHON to an existing Python interpreter",
            ) from exc
        if sys.platform == "win32":
            try:
                self._job = winjob.Job()
                self._job.assign(self._proc)
            except OSError as exc:
                self._kill()
                raise ConnectError(f"cannot put the helper in a Job Object: {exc}") from exc
        self._lines = queue.Queue()
        threading.Thread(target=self._read, args=(self._proc.stdout, self._lines), daemon=True).start()
        self._receive(0, self.connect_timeout, "start")
        self.info = self._exchange("connect", {"host": self.host}, self.connect_timeout)
        return self.info

    def call(self, op: str, args: dict[str, Any] | None = None, timeout: float = 60.0) -> Any:
        with self._lock:
            if self._proc is not None and self._proc.poll() is not None:
                # It died since the last call: what it held (an open project, a render) is
                # gone, so this call fails; the next one starts a fresh helper.
                raise self._died(op)
            if self._proc is None:
                self.restarts += 1
                self._start()
            return self._exchange(op, args or {}, timeout)

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None and self._proc.stdin:
                with contextlib.suppress(OSError):
                    self._proc.stdin.close()
                with contextlib.suppress(subprocess.TimeoutExpired):  # _kill below ends it
                    self._proc.wait(timeout=2)
            self._kill()
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    def abort(self) -> None:
        """Kill the helper and what it started without waiting for the call in progress (which holds the
        lock): that call reads the end of the helper's output and raises `HelperDied`."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            self._end_group()
            proc.kill()

    def _exchange(self, op: str, args: dict[str, Any], timeout: float) -> Any:
        assert self._proc is not None and self._proc.stdin is not None
        request_id = next(self._ids)
        try:
            self._proc.stdin.write(json.dumps({"id": request_id, "op": op, "args": args}) + "\n")
            self._proc.stdin.flush()
        except OSError:
            raise self._died(op) from None
        return self._receive(request_id, timeout, op)

    def _receive(self, request_id: int, timeout: float, op: str) -> Any:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self._kill()
            raise CallTimeout(
                f"Resolve call {op!r} did not return within {timeout:g}s; the helper was killed and will restart",
                fix="close any modal dialog in Resolve",
            ) from None
        except BaseException:
            # Interrupted mid-call (a soft time limit): the helper may be stuck in Resolve, and its
            # late answer would meet the next request. Kill it; the next call starts a fresh one.
            self._kill()
            raise
        if line is None:
            raise self._died(op)
        response = json.loads(line)
        if response.get("id") != request_id:
            self._kill()
            raise HelperDied(f"helper answered request {response.get('id')} to request {request_id}")
        if "error" in response:
            err = response["error"]
            cls = ERRORS.get(err.get("type"), BridgeError)
            message, fix = err.get("message", ""), err.get("fix", "")
            if issubclass(cls, LibraryLoadError):
                raise cast(type[LibraryLoadError], cls)(message, "helper", fix)
            raise cls(message, fix)
        return response.get("ok")

    def _died(self, op: str) -> HelperDied:
        code = self._proc.wait(timeout=5) if self._proc else None
        self._end_group()  # what it started may outlive it
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            tail = self._stderr.read()[-2000:].strip()
        self._forget()
        return HelperDied(f"the helper exited (code {code}) during {op!r}" + (f": {tail}" if tail else ""))

    def _end_group(self) -> None:
        """Kill the helper and every process it started: its process group (POSIX; a group outlives its leader
        while a member lives), its Job Object (Windows)."""
        if self._job is not None:
            self._job.terminate()
            self._job.close()
            self._job = None
        if self._proc is not None and os.name == "posix":
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._proc.pid, signal.SIGKILL)

    def _kill(self) -> None:
        if self._proc is not None:
            self._end_group()
            if self._proc.poll() is None:
                self._proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout=5)
            self._forget()

    def _forget(self) -> None:
        """Close a gone helper's pipes (a dead helper's too: each restart would leak two descriptors)."""
        if self._proc is not None:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream:
                    with contextlib.suppress(OSError):
                        stream.close()
            self._proc = None

    @staticmethod
    def _read(stream: IO[str] | None, lines: queue.Queue[str | None]) -> None:
        assert stream is not None
        try:
            for line in stream:
                lines.put(line)
        except (OSError, ValueError):
            pass  # the pipe closed under us: the None below tells the caller
        lines.put(None)
