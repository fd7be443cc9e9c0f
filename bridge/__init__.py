"""Everything that touches DaVinci Resolve.

`connect(settings)` gives a `Session` with the operations the farm's tasks need, over one of
three paths: native (the scripting library loaded in-process), subprocess (an isolated
helper process), or sim (the simulator). This package imports nothing from the rest of the
farm and knows nothing of Celery.

Note: this module, `errors`, `ops` and `helper` use the standard library only, because the
helper process may run under an interpreter chosen to match Resolve's library, where none
of the project's dependencies are installed. Everything else is imported lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bridge.errors import BridgeError

if TYPE_CHECKING:
    from bridge.session import Session
    from bridge.settings import BridgeSettings

__all__ = ["BridgeError", "BridgeSettings", "Session", "connect"]


def connect(settings: BridgeSettings | None = None, **overrides: Any) -> Session:
    """A session with the Resolve that `settings` describe (see `bridge.session.connect`)."""
    from bridge.session import connect as _connect

    return _connect(settings, **overrides)


def __getattr__(name: str) -> Any:
    if name == "BridgeSettings":
        from bridge.settings import BridgeSettings

        return BridgeSettings
    if name == "Session":
        from bridge.session import Session

        return Session
    raise AttributeError(name)
