"""What a worker process holds: its settings, its node identity, Redis and its Resolve session.

Note: Redis clients and the bridge session are made lazily in the process that uses them
(a prefork child), never inherited across fork.
"""

from __future__ import annotations

import logging
import os
import platform
import socket
import threading
from collections.abc import Sequence
from typing import Any

from bridge import BridgeError, Session, connect
from bridge.settings import BridgeSettings
from orchestrator.farm import Farm
from orchestrator.paths import PathMap
from orchestrator.settings import VERSION_KEY, FarmSettings

log = logging.getLogger(__name__)


class Runtime:
    """Per-process state of a farm worker: its settings, its farm handle, its Resolve session."""

    def __init__(self) -> None:
        self._pid = -1
        self._lock = threading.Lock()
        self._session: Session | None = None
        self.settings = FarmSettings()
        self.paths = PathMap(self.settings.path_mapping)

    def _fresh(self) -> None:
        if self._pid != os.getpid():
            from orchestrator.app import get_app

            self._pid = os.getpid()
            self._farm = Farm(self.settings)
            self._farm.app = get_app()  # send with the worker's own app
            self._session = None

    @property
    def node(self) -> str:
        return self.settings.node_name

    def farm(self) -> Farm:
        """The control plane as this process sees it (Redis clients made after fork)."""
        self._fresh()
        return self._farm

    def session(self) -> Session:
        """This process's Resolve session, connected on first use and after a failure."""
        self._fresh()
        with self._lock:
            if self._session is None:
                bridge = BridgeSettings.from_env(mode=self.settings.bridge, call_timeout=self.settings.call_deadline)
                self._session = connect(bridge)
            return self._session

    def abort_session(self) -> bool:
        """End the Resolve call in progress from another thread (`Session.abort`); False when none can be."""
        session = self._session  # without the lock: the call being ended may hold it
        return session.abort() if session is not None else False

    def drop_session(self) -> None:
        """Forget the session after a failure that may have broken it; the next use reconnects."""
        with self._lock:
            if self._session is not None:
                try:
                    self._session.close()
                except BridgeError as exc:
                    log.warning("closing a broken Resolve session: %s", exc)
                self._session = None

    def to_node(self, path: str) -> str:
        return self.paths.to_node(path, self.settings.node_os)

    def from_node(self, path: str) -> str:
        return self.paths.from_node(path, self.settings.node_os)

    def identity(self, roles: Sequence[str], resolve: dict[str, Any] | None) -> dict[str, Any]:
        return {
            "name": self.node,
            "host": socket.gethostname(),
            "os": self.settings.node_os,
            "platform": platform.platform(),
            "tags": self.settings.node_tags,
            "roles": list(roles),
            "bridge": self.settings.bridge if "resolve" in roles else None,
            "resolve": resolve,
            "version_key": VERSION_KEY,
            "pid": os.getpid(),
        }


runtime = Runtime()
