"""`resolve-farm doctor`: what this host's bridge can really do, and how to fix what it can't.

Every line of the report is a check that ran: which library was found where, whether it
loaded, whether `PyInit_fusionscript` resolved, which interpreter and ABI, whether a Resolve
answered (product, version), which mode `auto` chose. Initialising the library runs in a
child process, because a library built for another Python crashes the process inside
`PyInit_fusionscript`, and the doctor must live to say so.
"""

from __future__ import annotations

import json
import platform
import signal
import subprocess
import sys
import sysconfig
from typing import Any

from bridge import binfmt, native
from bridge.errors import BridgeError, LibraryLoadError
from bridge.settings import BridgeSettings

PROBE_TIMEOUT = 60.0


def _python() -> dict[str, Any]:
    return {
        "executable": sys.executable,
        "version": platform.python_version(),
        "implementation": platform.python_implementation(),
        "abi": sysconfig.get_config_var("SOABI") or sys.implementation.cache_tag,
        "machine": binfmt.this_machine(),
        "platform": sys.platform,
    }


def _library(settings: BridgeSettings) -> dict[str, Any]:
    section: dict[str, Any] = {"looked_in": [str(p) for p in native.candidates(settings.script_lib)]}
    try:
        path = native.find_library(settings.script_lib)
    except BridgeError as exc:
        return {**section, "found": None, "error": exc.message, "fix": exc.fix}
    section["found"] = str(path)
    try:
        loaded = native.open_library(path)
    except LibraryLoadError as exc:
        return {**section, "loaded": False, "kind": exc.kind, "error": exc.message, "fix": exc.fix}
    info = loaded.info
    return {
        **section,
        "loaded": True,
        "entry_point": True,
        "format": info.kind,
        "machines": list(info.machines),
        "links_python": list(info.pythons),
    }


def probe_native(settings: BridgeSettings) -> dict[str, Any]:
    """Initialise the library and connect, in a child process that may crash safely."""
    cmd = [sys.executable, "-m", "bridge.doctor", "--probe-native"]
    payload = settings.model_dump_json(include={"script_lib", "host", "connect_timeout"})
    try:
        done = subprocess.run(cmd, input=payload, capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return {
            "ok": False,
            "error": f"initialising the library and connecting took over {PROBE_TIMEOUT:g}s",
            "fix": "close modal dialogs in Resolve; check Preferences > System > General > External scripting",
        }
    if done.returncode < 0:
        name = signal.Signals(-done.returncode).name
        return {
            "ok": False,
            "error": f"the process crashed ({name}) inside PyInit_fusionscript",
            "fix": "the library expects another Python: set PYTHONHOME to the Python Resolve documents, or "
            "use the subprocess bridge with RESOLVE_PYTHON set to that interpreter",
        }
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"ok": False, "error": f"the probe exited with code {done.returncode}: {done.stderr.strip()[-500:]}"}


def _probe_native_main() -> None:
    settings = BridgeSettings.model_validate_json(sys.stdin.read())
    try:
        loaded = native.open_library(native.find_library(settings.script_lib))
        module = native.initialise(loaded)
        resolve = native.connect(module, settings.host, settings.connect_timeout)
        from bridge import ops

        print(json.dumps({"ok": True, **ops.describe(resolve)}))
    except BridgeError as exc:
        print(json.dumps({"ok": False, "reason": exc.reason, "error": exc.message, "fix": exc.fix}))


def _connection(settings: BridgeSettings) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Connect in `settings.mode`: the connection section and what `auto` tried."""
    from bridge.session import connect

    try:
        session = connect(settings)
    except BridgeError as exc:
        return {"ok": False, "mode": settings.mode, "reason": exc.reason, "error": exc.message, "fix": exc.fix}, []
    with session:
        section = {
            "ok": True,
            **session.describe(),
            "python": session.resolve_info.get("python", platform.python_version()),
        }
        if settings.mode == "sim":
            section["library"] = str(settings.sim.library)
        return section, session.attempts


def report(settings: BridgeSettings) -> dict[str, Any]:
    """The whole diagnosis as a JSON-able dict; `ok` is true when a usable bridge exists.

    Note: the native path is only entered in this process after the child's probe
    survived it; otherwise `auto` is diagnosed as the subprocess path alone.
    """
    library = _library(settings)
    probe: dict[str, Any] = {}
    if settings.mode in ("auto", "native") and library.get("loaded"):
        probe = library["initialised"] = probe_native(settings)
    native_failure = (
        None
        if probe.get("ok")
        else {
            "mode": "native",
            "result": "failed",
            "error": probe.get("error") or library.get("error") or "library not usable",
            "fix": probe.get("fix") or library.get("fix", ""),
        }
    )
    auto: dict[str, Any] = {}
    if settings.mode == "native" and native_failure:
        connection = {"ok": False, "mode": "native", "error": native_failure["error"], "fix": native_failure["fix"]}
    elif settings.mode == "auto" and native_failure:
        connection, _ = _connection(settings.model_copy(update={"mode": "subprocess"}))
        tried = {
            "mode": "subprocess",
            "result": "ok" if connection["ok"] else "failed",
            "error": connection.get("error", ""),
        }
        auto = {"chosen": "subprocess" if connection["ok"] else None, "attempts": [native_failure, tried]}
    else:
        connection, attempts = _connection(settings)
        if settings.mode == "auto":
            auto = {"chosen": connection.get("mode"), "attempts": attempts}
    problems: list[dict[str, str]] = []
    for section in (library, probe, connection):
        problem = {"what": section.get("error", ""), "fix": section.get("fix", "")}
        # A free 21.1 refuses the probe and the connection alike: say it once.
        if problem["what"] and (settings.mode != "sim" or section is connection) and problem not in problems:
            problems.append(problem)
    if connection.get("ok") and not connection.get("studio"):
        problems.append(
            {
                "what": f"{connection.get('product')} is not Studio",
                "fix": "external scripting from another process needs DaVinci Resolve Studio",
            }
        )
    return {
        "ok": bool(connection.get("ok")),
        "mode": settings.mode,
        "python": _python(),
        "library": library,
        "connection": connection,
        "auto": auto,
        "problems": problems,
    }


if __name__ == "__main__" and sys.argv[1:] == ["--probe-native"]:
    _probe_native_main()
