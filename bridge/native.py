"""The native path: Resolve's scripting library opened with ctypes and initialised in-process.

`fusionscript` is a CPython extension module (`PyInit_fusionscript`), not a C API. Loading
goes in steps, each with its own precise failure: find the file; read its header (is it a
library, for this machine, for this Python?); open it with ctypes (missing dependencies
surface here, in the loader's own words); look up `PyInit_fusionscript`; initialise it with
`ExtensionFileLoader`; finally `scriptapp("Resolve"[, host])`, under a timeout because a
first connection can hang, and one real call to prove that Resolve answered.

Standard library only.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import importlib.util
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bridge import binfmt, install
from bridge.errors import ConnectError, EntryPointMissing, LibraryLoadError, LibraryNotFound

ENTRY_POINT = "PyInit_fusionscript"
ENABLE_SCRIPTING = "In Resolve, Preferences > System > General > External scripting using: Local (or Network)"


def _platform() -> str:
    return install.system()


def candidates(script_lib: str | os.PathLike[str] | None = None) -> list[Path]:
    """Where to look: RESOLVE_SCRIPT_LIB alone when it is set, else the platform's defaults.

    Note: an explicit setting that points nowhere is an error, never a reason to quietly
    load some other copy of the library.
    """
    explicit = script_lib or os.environ.get("RESOLVE_SCRIPT_LIB")
    if explicit:
        return [Path(explicit)]
    return [Path(p) for p in install.library_paths()]


def find_library(script_lib: str | os.PathLike[str] | None = None) -> Path:
    looked = candidates(script_lib)
    for path in looked:
        if path.is_file():
            return path
    where = ", ".join(str(p) for p in looked) or "(no default path on this platform)"
    raise LibraryNotFound(
        f"Resolve's scripting library was not found (looked in: {where})",
        fix="install DaVinci Resolve Studio, or set RESOLVE_SCRIPT_LIB to its fusionscript library",
    )


@dataclass
class LoadedLibrary:
    """A scripting library that passed every check up to its initialisation."""

    path: Path
    info: binfmt.BinaryInfo
    module: ModuleType | None = None
    steps: list[str] = field(default_factory=list)


def check_binary(path: Path) -> binfmt.BinaryInfo:
    """Refuse a file that cannot be a loadable library for this process, saying why."""
    try:
        info = binfmt.inspect(str(path))
    except OSError as exc:
        raise LibraryLoadError(f"cannot read {path}: {exc.strerror}", "unreadable") from exc
    if info.kind == "unknown":
        raise LibraryLoadError(
            f"{path} is not a shared library (no ELF, Mach-O or PE header)",
            "not_a_library",
            fix="point RESOLVE_SCRIPT_LIB at Resolve's fusionscript library itself",
        )
    expected = {"linux": "elf", "darwin": "macho", "win32": "pe"}.get(_platform())
    if expected and info.kind != expected:
        raise LibraryLoadError(
            f"{path} is a {info.kind.upper()} library; this {_platform()} host needs {expected.upper()}",
            "wrong_architecture",
            fix="use the library of the Resolve installed on this host",
        )
    machine = binfmt.this_machine()
    if info.machines and machine not in info.machines:
        raise LibraryLoadError(
            f"{path} is built for {'/'.join(info.machines)}, this Python runs on {machine}",
            "wrong_architecture",
            fix="run the worker under a Python of the library's architecture (or use the subprocess "
            "bridge with RESOLVE_PYTHON set to one)",
        )
    mine = binfmt.this_python()
    if info.pythons and mine not in info.pythons:
        raise LibraryLoadError(
            f"{path} is linked against Python {', '.join(info.pythons)}; this is Python {mine}",
            "python_mismatch",
            fix=f"set RESOLVE_PYTHON to a Python {info.pythons[0]} and use the subprocess bridge",
        )
    return info


def open_library(path: Path) -> LoadedLibrary:
    """Find, check and dlopen the library, and resolve its entry point."""
    info = check_binary(path)
    if _platform() == "win32":  # Resolve's DLLs must be on the search path
        os.add_dll_directory(str(path.parent))  # type: ignore[attr-defined,unused-ignore]
    try:
        handle = ctypes.CDLL(str(path), mode=getattr(os, "RTLD_GLOBAL", 0))
    except OSError as exc:
        raise _explain_load_error(path, exc) from exc
    try:
        getattr(handle, ENTRY_POINT)
    except AttributeError:
        raise EntryPointMissing(
            f"{path} loads but has no {ENTRY_POINT}: it is not Resolve's fusionscript module",
            "missing_entry_point",
            fix="point RESOLVE_SCRIPT_LIB at fusionscript.so/.dll from Resolve's install",
        ) from None
    return LoadedLibrary(path, info, steps=["found", "header ok", "dlopen ok", f"{ENTRY_POINT} resolved"])


# Windows' LoadLibrary error codes, and the dynamic loaders' own words after the path they name.
WIN_WRONG_ARCHITECTURE, WIN_MODULE_NOT_FOUND, WIN_PROCEDURE_NOT_FOUND = 193, 126, 127
WRONG_ARCHITECTURE = re.compile(r"wrong ELF class|incompatible architecture|not a mach-o file", re.IGNORECASE)
MISSING_DEPENDENCY = re.compile(
    r"(?:^|: )(\S+): cannot open shared object file|Library not loaded: (\S+)|image not found", re.IGNORECASE
)
MISSING_SYMBOL = re.compile(r"undefined symbol: (\S+)|version `([^']+)' not found|Symbol not found: (\S+)")


def _explain_load_error(path: Path, exc: OSError) -> LibraryLoadError:
    """Classify a failed load by the loader's error code (Windows) or the words it puts after the path (dlerror).

    Note: the path itself is cut off first: a folder named "193" or "wrong ELF class" must not decide.
    """
    message = str(exc)
    winerror = getattr(exc, "winerror", None)
    said = message.split(f"{path}: ", 1)[1] if f"{path}: " in message else message.replace(str(path), "")
    if winerror == WIN_WRONG_ARCHITECTURE or (winerror is None and WRONG_ARCHITECTURE.search(said)):
        return LibraryLoadError(f"cannot load {path}: wrong architecture ({message})", "wrong_architecture")
    if winerror == WIN_MODULE_NOT_FOUND or (winerror is None and MISSING_DEPENDENCY.search(said)):
        return LibraryLoadError(
            f"cannot load {path}: a library it needs is missing ({message})",
            "missing_dependency",
            fix="check Resolve's installation is complete; on Windows, Resolve's folder must be on the DLL path",
        )
    if winerror == WIN_PROCEDURE_NOT_FOUND or (winerror is None and MISSING_SYMBOL.search(said)):
        return LibraryLoadError(
            f"cannot load {path}: a symbol or symbol version it needs is missing ({message})",
            "missing_symbol",
            fix="the library was built against newer system libraries or another Python: use the subprocess "
            "bridge with RESOLVE_PYTHON set to the Python Resolve documents",
        )
    return LibraryLoadError(f"cannot load {path}: {message}", "load_failed")


def initialise(loaded: LoadedLibrary) -> ModuleType:
    """Run `PyInit_fusionscript` in this process: the step where a wrong Python ABI crashes.

    Note: a crash here kills the process; `doctor` runs this step in a child for that reason.
    """
    if loaded.module is not None:
        return loaded.module
    existing = sys.modules.get("fusionscript")
    if existing is not None and getattr(existing, "__file__", None) == str(loaded.path):
        loaded.module = existing
        return existing
    loader = importlib.machinery.ExtensionFileLoader("fusionscript", str(loaded.path))
    spec = importlib.util.spec_from_file_location("fusionscript", str(loaded.path), loader=loader)
    if spec is None:
        raise LibraryLoadError(f"cannot make a module spec for {loaded.path}", "init_failed")
    try:
        module = importlib.util.module_from_spec(spec)
        loader.exec_module(module)
    except ImportError as exc:
        raise LibraryLoadError(
            f"{ENTRY_POINT} failed: {exc}",
            "init_failed",
            fix="the library expects another Python: set PYTHONHOME/RESOLVE_PYTHON to the interpreter Resolve "
            "documents, or use the subprocess bridge",
        ) from exc
    sys.modules["fusionscript"] = module
    loaded.module = module
    loaded.steps.append("module initialised")
    return module


def connect(module: ModuleType, host: str | None, timeout: float) -> Any:
    """`scriptapp("Resolve"[, host])` under a timeout, proven by one real call."""
    resolve = _scriptapp(module, host, timeout)
    if resolve is None and host is None and _platform() == "darwin":
        # Resolve on macOS may listen on the LAN address only.
        own = _own_address()
        if own:
            resolve = _scriptapp(module, own, timeout)
    if resolve is None:
        where = f"at {host}" if host else "on this host"
        raise ConnectError(
            f"no Resolve answered {where}",
            fix=f"start DaVinci Resolve (Studio); {ENABLE_SCRIPTING}" + (" (Network)" if host else ""),
        )
    version = _with_timeout(resolve.GetVersionString, timeout, "GetVersionString")
    if not version:
        raise ConnectError("Resolve answered but returned no version", fix="restart Resolve")
    return resolve


def _scriptapp(module: ModuleType, host: str | None, timeout: float) -> Any:
    call = (lambda: module.scriptapp("Resolve", host)) if host else (lambda: module.scriptapp("Resolve"))
    return _with_timeout(call, timeout, "scriptapp")


def _with_timeout(call: Any, timeout: float, what: str) -> Any:
    """Run `call` in a daemon thread and give up after `timeout`.

    Note: a thread stuck inside fusionscript cannot be stopped; the caller gets an error and
    the worker's hard time limit (or the subprocess bridge) deals with the stuck process.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, name=f"resolve-{what}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ConnectError(
            f"{what} did not return within {timeout:g}s",
            fix="close any modal dialog in Resolve; if it persists, use the subprocess bridge, which can be killed",
        )
    if "error" in box:
        raise ConnectError(f"{what} raised {box['error']!r}")
    return box.get("value")


def _own_address() -> str | None:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return None
