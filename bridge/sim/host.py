"""Whether a simulated host's Resolve answers at all: one application shared by every process.

A real Resolve that is stuck (a modal dialog, a driver, a deadlock in its C library) stops
answering every scripting client at once: the worker's pool process, the fallback helper and a
heartbeat's ping alike. The simulator lives in each connecting process, so a host's state is
kept where they all see it: a marker file beside the shared library, one per host name.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
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
        """Freeze the host, unless it is frozen already (a `freeze-on:` method called again keeps that freeze)."""
        self.marker.parent.mkdir(parents=True, exist_ok=True)
        token = self.marker.with_name(f".{self.marker.name}.{os.getpid()}.{time.time_ns()}")
        token.write_text(token.name)  # this freeze, told from a later one
        try:
            with contextlib.suppress(FileExistsError):
                os.link(token, self.marker)  # whole or not at all: a reader never sees it half-written
        finally:
            token.unlink()

    def thaw(self) -> None:
        self.marker.unlink(missing_ok=True)

    def wait_while_frozen(self) -> None:
        """Return at once when the host answers; else block, deaf to signals, until it is thawed.

        Note: a thaw followed at once by another freeze (a test's next) ends the wait too: the wait
        is for the freeze it met, told by the marker's token, not for the marker to be gone.
        """
        met = self._token()
        if met is None:
            return
        thawed = threading.Event()

        def watch() -> None:
            while self._token() == met:
                time.sleep(POLL)
            thawed.set()

        deaf = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
        before = signal.pthread_sigmask(signal.SIG_BLOCK, deaf)
        try:
            # Blocked in C, not polling in Python: a signal the process's other threads take (a soft time
            # limit's) would otherwise run its handler here at the next poll and raise out of the freeze.
            threading.Thread(target=watch, name="frozen-host", daemon=True).start()
            thawed.wait()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    def _token(self) -> str | None:
        """Which freeze holds the host now; None while it answers."""
        try:
            return self.marker.read_text()
        except FileNotFoundError:
            return None
