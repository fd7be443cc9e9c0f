"""Asking a host's Resolve whether it answers, from outside the processes that render.

A worker's heartbeat proves that the worker lives; this proves that its Resolve does. A
Resolve stuck behind a modal dialog or inside its own C library answers no scripting client,
and the render stuck in it would only be ended by the hard time limit, an hour later on a
real farm. The probe asks a cheap question through a helper process with a timeout, so the
node is shown unhealthy within one heartbeat timeout instead.
"""

from __future__ import annotations

from typing import Any

from bridge.errors import BridgeError, CallTimeout, HelperDied, LibraryLoadError, ScriptModuleMissing
from bridge.session import helper_for
from bridge.settings import BridgeSettings


class ProbeUnavailable(BridgeError):
    """The probe itself cannot run on this host (no interpreter that loads Resolve's library)."""

    reason = "probe_unavailable"


class ResolveProbe:
    """Pings this host's Resolve through a long-lived helper process, each call under a timeout.

    Note: it runs in a worker's main process, which forks the pool processes: a connection
    held in-process there would be inherited by every child, and a call stuck inside
    fusionscript could not be ended. A ping that outlasts its timeout kills the helper (and
    anything it was stuck in); the next ping starts a fresh one.
    """

    def __init__(self, settings: BridgeSettings, timeout: float) -> None:
        self.timeout = timeout
        self._helper = helper_for(settings, connect_timeout=timeout)
        self._answered = False

    def check(self) -> dict[str, Any]:
        """What Resolve says about itself, or the `BridgeError` that says why it did not answer.

        Raises `ProbeUnavailable` when the helper has never answered because it cannot import
        or load Resolve's scripting module (or dies trying, as under a wrong Python): that says
        nothing about Resolve, only that this host cannot be probed this way. A Resolve that is
        not running, refuses scripting or does not answer is a problem of the host.
        """
        try:
            info = dict(self._helper.call("describe", {}, self.timeout))  # (re)starts the helper first if needed
        except CallTimeout as exc:
            raise CallTimeout(f"Resolve did not answer within {self.timeout:g}s", exc.fix) from exc
        except (LibraryLoadError, ScriptModuleMissing, HelperDied) as exc:
            if self._answered:
                raise
            raise ProbeUnavailable(f"Resolve cannot be asked through a helper here: {exc}", exc.fix) from exc
        self._answered = True
        return info

    def close(self) -> None:
        self._helper.close()
