"""Whether a simulated host's Resolve answers at all: one application shared by every process.

A real Resolve that is stuck (a modal dialog, a driver, a deadlock in its C library) stops
answering every scripting client at once: the worker's pool process, the fallback helper and a
heartbeat's ping alike. The simulator lives in each connecting process, so a host's state is
kept where they all see it: a marker file beside the shared library, one per host name.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

POLL = 0.05  # seconds between looks at the marker while frozen


class HostState:
    """The frozen-or-answering state of one simulated host (`RESOLVE_SIM_HOST`).

    Note: a frozen call blocks with every signal masked, as a call stuck in C does: a soft
    time limit cannot end it; killing the process can, and thawing lets it return.
    """

    def __init__(self, library: Path, host: str) -> None:
        self.marker = library.parent / "hosts" / f"{host}.frozen"

    @property
    def frozen(self) -> bool:
        return self.marker.exists()

    def freeze(self) -> None:
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        self.marker.touch()

    def thaw(self) -> None:
        self.marker.unlink(missing_ok=True)

    def wait_while_frozen(self) -> None:
        """Return at once when the host answers; else block, deaf to signals, until it is thawed."""
        if not self.marker.exists():
            return
        deaf = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
        before = signal.pthread_sigmask(signal.SIG_BLOCK, deaf)
        try:
            while self.marker.exists():
                time.sleep(POLL)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)
