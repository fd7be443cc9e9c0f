"""A piece's deadline where no pool process can be killed: the threads pool, on Windows and macOS hosts.

Under prefork, Celery's hard time limit kills the pool process running a piece past its
limit, and a call hung inside Resolve's C library dies with it. A task running in a thread of
the worker process has no such limit (Celery's threads pool ignores time limits, and Windows
has no signal to raise one). There the piece's own deadline ends it: at the limit, the Resolve
helper and everything it started are killed (`Session.abort`), the call in progress fails at
once, and the piece fails as hung: the host is marked unhealthy and the piece runs elsewhere,
its attempt counted, exactly as after a hard time limit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class PieceOverdue(Exception):
    """A piece outlived its time limit in a worker thread; its Resolve helper was killed to end it."""


class PieceDeadline:
    """Kills the Resolve helper if a piece is still running `seconds` from now, unless stopped first.

    Note: only where the piece runs in a thread other than its process's main one (the threads
    pool); in a prefork child (its main thread) Celery's hard limit holds and this is not started.
    """

    def __init__(self, seconds: float, what: str, abort: Callable[[], bool]) -> None:
        self.seconds, self.what = seconds, what
        self._abort = abort
        self.expired = threading.Event()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    @classmethod
    def start(cls, seconds: float | None, what: str, abort: Callable[[], bool]) -> PieceDeadline | None:
        """A running deadline when this is a worker thread and `seconds` is set; else None."""
        if not seconds or threading.current_thread() is threading.main_thread():
            return None
        deadline = cls(seconds, what, abort)
        deadline._timer.start()
        return deadline

    def _expire(self) -> None:
        self.expired.set()
        if self._abort():
            log.error("%s passed its %gs limit: its Resolve helper was killed", self.what, self.seconds)
        else:
            log.error("%s passed its %gs limit, but runs in this process (native or simulated bridge): nothing "
                      "can end it but the end of the worker", self.what, self.seconds)  # fmt: skip

    def stop(self) -> None:
        self._timer.cancel()

    def overdue(self, exc: Exception) -> Exception:
        """What the piece failed of: `PieceOverdue` when the deadline ended it, else `exc` itself."""
        if not self.expired.is_set():
            return exc
        overdue = PieceOverdue(f"{self.what} did not finish within its {self.seconds:g}s limit: {exc}")
        overdue.__cause__ = exc
        return overdue
