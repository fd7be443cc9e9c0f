"""The fallback helper: a long-lived process that holds the Resolve connection and serves `ops`.

Run as a script (`python .../bridge/helper.py`) under the interpreter that matches Resolve's
library. It imports `DaVinciResolveScript` the way Resolve documents (RESOLVE_SCRIPT_API's
`Modules` folder, or PYTHONPATH), then answers one JSON request per line on stdin with one
JSON response per line:

    -> {"id": 1, "op": "connect", "args": {"host": null}}
    <- {"id": 1, "ok": {"product": "...", "version": "...", "studio": true}}
    -> {"id": 2, "op": "timeline_info", "args": {"timeline": "Main"}}
    <- {"id": 2, "error": {"type": "OperationError", "message": "...", "fix": ""}}

Note: standard library only, and stdout is the protocol: anything Resolve's module prints
is sent to stderr instead.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import traceback
from typing import Any, TextIO


def _protocol_stream() -> TextIO:
    """Keep the real stdout for the protocol; send everything else written to fd 1 to stderr."""
    out_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(out_fd, "w", encoding="utf-8", buffering=1)


DEFAULT_SCRIPT_API = {
    "linux": "/opt/resolve/Developer/Scripting",
    "darwin": "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting",
    "win32": os.path.join(
        os.environ.get("PROGRAMDATA", r"C:\ProgramData"),
        "Blackmagic Design",
        "DaVinci Resolve",
        "Support",
        "Developer",
        "Scripting",
    ),
}


def _import_path() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    if root not in sys.path:
        sys.path.insert(0, root)
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    api = os.environ.get("RESOLVE_SCRIPT_API") or DEFAULT_SCRIPT_API.get(platform)
    if api:
        modules = os.path.join(api, "Modules")
        if modules not in sys.path:
            sys.path.append(modules)
    for extra in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        if extra and extra not in sys.path:
            sys.path.append(extra)  # honoured even under -I, as Resolve's docs rely on it


class Server:
    """Holds the Resolve object and dispatches requests to `bridge.ops`."""

    def __init__(self) -> None:
        from bridge import ops

        self.ops = ops
        self.resolve: Any = None

    def connect(self, host: str | None = None) -> dict[str, Any]:
        from bridge.errors import ConnectError, ScriptModuleMissing

        try:
            import DaVinciResolveScript as dvr
        except ImportError as exc:
            raise ScriptModuleMissing(
                f"cannot import DaVinciResolveScript under {sys.executable}: {exc}",
                fix="set RESOLVE_SCRIPT_API to Resolve's Developer/Scripting folder (it holds Modules/)",
            ) from exc
        resolve = dvr.scriptapp("Resolve", host) if host else dvr.scriptapp("Resolve")
        if resolve is None:
            raise ConnectError(
                f"no Resolve answered {'at ' + host if host else 'on this host'}",
                fix="start DaVinci Resolve (Studio); Preferences > System > General > External scripting using: "
                + ("Network" if host else "Local"),
            )
        self.resolve = resolve
        info = self.ops.describe(resolve)
        info["python"] = sys.version.split()[0]
        info["executable"] = sys.executable
        return info

    def handle(self, request: dict[str, Any]) -> Any:
        op, args = request.get("op"), request.get("args") or {}
        if op == "connect":
            return self.connect(args.get("host"))
        if op not in self.ops.OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        if self.resolve is None:
            from bridge.errors import ConnectError

            raise ConnectError("not connected")
        return self.ops.OPERATIONS[op](self.resolve, **args)


PARENT_VARIABLE = "RESOLVE_HELPER_PARENT"  # the pid of the process the helper serves


def _die_with_parent() -> None:
    """End this helper when the process it serves dies, even while a call is stuck in Resolve.

    Note: a worker's pool process that outlives its hard time limit is killed with SIGKILL and
    cannot close its helper; a helper left behind would hold its hung connection forever. On
    Linux the kernel sends SIGKILL (PR_SET_PDEATHSIG: when the starting thread ends, so start
    helpers from a long-lived thread); elsewhere a thread watches for a new parent.
    """
    parent = int(os.environ.get(PARENT_VARIABLE) or 0)
    if not parent:
        return
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # 1: PR_SET_PDEATHSIG
    if os.getppid() != parent:  # it died before the line above took effect
        os._exit(70)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(70)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main() -> int:
    _die_with_parent()
    out = _protocol_stream()
    _import_path()
    from bridge.errors import BridgeError

    server = Server()
    out.write(json.dumps({"id": 0, "ok": {"ready": True, "pid": os.getpid(), "python": sys.version.split()[0]}}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        request: dict[str, Any] = {}
        try:
            request = json.loads(line)
            response: dict[str, Any] = {"id": request.get("id"), "ok": server.handle(request)}
        except BridgeError as exc:
            response = {
                "id": request.get("id"),
                "error": {"type": type(exc).__name__, "message": exc.message, "fix": exc.fix},
            }
        except Exception as exc:  # a bug or a Resolve exception: report it, keep serving
            traceback.print_exc(file=sys.stderr)
            response = {
                "id": request.get("id"),
                "error": {"type": "OperationError", "message": f"{type(exc).__name__}: {exc}", "fix": ""},
            }
        out.write(json.dumps(response, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
