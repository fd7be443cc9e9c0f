"""Keeping a piece's write lease on its project alive while it runs."""

from __future__ import annotations

import threading

from orchestrator.leases import ProjectLeases


class LeaseKeeper:
    """Extends a piece's project lease from a thread while the piece runs.

    Note: the short TTL is what lets the next writer take the project soon after a holder's
    worker dies; the keeper is what stops it lapsing under a live one.
    """

    def __init__(self, leases: ProjectLeases, lease: str, owner: str, ttl: int) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._keep, args=(leases, lease, owner, ttl), name="lease-keeper", daemon=True
        )
        self._thread.start()

    def _keep(self, leases: ProjectLeases, lease: str, owner: str, ttl: int) -> None:
        while not self._stop.wait(ttl / 3):
            leases.extend(lease, owner, ttl)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
