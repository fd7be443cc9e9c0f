"""A faithful in-process model of DaVinci Resolve's scripting API that renders real files.

`scriptapp("Resolve")` returns the simulated application, configured from the environment
(see `config`). Names and signatures follow the `fusionscript-stubs` package; the render
page writes real media with PyAV. It runs the farm on machines without Resolve, and every
test; it is only ever chosen explicitly, never as a fallback.
"""

from __future__ import annotations

import functools
import inspect
import ipaddress
import os
import signal
import socket
import threading
from typing import Any

from bridge.sim.config import Quirks, SimConfig
from bridge.sim.host import HostState
from bridge.sim.library import Library
from bridge.sim.mediapool import Folder, MediaPool, MediaPoolItem, MediaStorage
from bridge.sim.project import Project
from bridge.sim.resolve import ProjectManager, Resolve
from bridge.sim.state import SimState
from bridge.sim.timeline import Timeline, TimelineItem

__all__ = [
    "API_CLASSES",
    "Folder",
    "HostState",
    "MediaPool",
    "MediaPoolItem",
    "MediaStorage",
    "Project",
    "ProjectManager",
    "Resolve",
    "SimConfig",
    "Timeline",
    "TimelineItem",
    "create",
    "scriptapp",
]

API_CLASSES = (Resolve, ProjectManager, Project, MediaStorage, MediaPool, Folder, MediaPoolItem, Timeline, TimelineItem)

_apps: dict[SimConfig, Resolve] = {}
_apps_lock = threading.Lock()
_wrapped: set[tuple[type, str, str]] = set()  # (class, method, quirk kind) already wrapped


def create(config: SimConfig) -> Resolve:
    """The simulated Resolve for `config`: one per configuration per process, as one app per host."""
    with _apps_lock:
        app = _apps.get(config)
        if app is None:
            _install_quirks(config.quirks)
            app = _apps[config] = Resolve(SimState(config, Library(config.library)))
        return app


def scriptapp(app: str = "Resolve", host: str | None = None) -> Resolve | None:
    """Like `DaVinciResolveScript.scriptapp`: None when no Resolve answers at `host`."""
    if app != "Resolve":
        return None
    if host and not _is_this_host(host):
        return None
    return create(SimConfig.from_env())


def _is_this_host(host: str) -> bool:
    extra = {h.strip() for h in os.environ.get("RESOLVE_SIM_HOSTS", "").split(",") if h.strip()}
    if host in extra or host in ("localhost", socket.gethostname()):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_state(config: SimConfig) -> HostState:
    """Whether the simulated host `config` names answers (see `bridge.sim.host`)."""
    return HostState(config.library, config.host)


def _install_quirks(quirks: Quirks) -> None:
    """Wrap the methods named by `hang:`, `none:` and `freeze-on:` quirks, for apps configured so.

    Note: an app that can freeze has every method wrapped, since a frozen host answers nothing.
    """
    if quirks.freeze_on:
        _install_freeze_checks()
    for kind, specs in (("hang", quirks.hang), ("none", quirks.none), ("hang-hard", quirks.hang_hard)):
        for spec in specs:
            cls_name, _, method = spec.rpartition(".")
            for cls in API_CLASSES:
                if (
                    (cls_name and cls.__name__ != cls_name)
                    or not hasattr(cls, method)
                    or (cls, method, kind) in _wrapped
                ):
                    continue
                _wrapped.add((cls, method, kind))
                setattr(cls, method, _quirky(getattr(cls, method), kind, spec))


def _install_freeze_checks() -> None:
    """Every public method of every API class, its mixins' included (`Timeline.AddMarker` is `Markers`')."""
    for cls in API_CLASSES:
        for method in dir(cls):
            func = inspect.getattr_static(cls, method)
            if method.startswith("_") or not inspect.isfunction(func) or (cls, method, "freeze") in _wrapped:
                continue
            _wrapped.add((cls, method, "freeze"))
            setattr(cls, method, _freezable(func, f"{cls.__name__}.{method}"))


def _freezable(func: Any, name: str) -> Any:
    """The method, waiting first while this app's host is frozen; a `freeze-on:` method freezes it."""
    short = name.rpartition(".")[2]

    @functools.wraps(func)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        config = self._state.config
        if config.quirks.freeze_on:
            host = host_state(config)
            if name in config.quirks.freeze_on or short in config.quirks.freeze_on:
                host.freeze()
            host.wait_while_frozen()
        return func(self, *args, **kwargs)

    return call


def _hang_deaf() -> None:
    """Block forever with every signal masked in this thread, as C code stuck in a call does: Python's
    handlers (a soft time limit's SIGUSR1, SIGALRM) never run here; SIGKILL still ends the process."""
    signal.pthread_sigmask(signal.SIG_BLOCK, set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP})
    threading.Event().wait()


def _quirky(func: Any, kind: str, spec: str) -> Any:
    """The method, unless this app's quirks say it hangs (blocks forever) or returns None."""

    @functools.wraps(func)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        quirks = self._state.config.quirks
        if kind == "hang" and spec in quirks.hang:
            threading.Event().wait()
        if kind == "hang-hard" and spec in quirks.hang_hard:
            _hang_deaf()
        if kind == "none" and spec in quirks.none:
            return None
        return func(self, *args, **kwargs)

    return call
