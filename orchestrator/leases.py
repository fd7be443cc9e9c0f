"""Write leases on projects: at most one host writes a project of a library at a time.

Resolve opens a project read-only on every host but the first to open it (unless its library
runs in collaboration mode), so pieces that change a project (edits, proxy links, saving) must
not run on two hosts at once. A lease is `rf:lease:<library>/<project>` holding its owner
(`<node>:<message id>`), with a short TTL its piece keeps extending while it runs (as it does
its piece lock), so a lease outlived by its holder lapses. Pieces that only read (renders) take
none and run anywhere.
"""

from __future__ import annotations

import redis

from orchestrator.locks import EXTEND, RELEASE
from orchestrator.models import project_lease
from orchestrator.store import PREFIX

__all__ = ["ProjectLeases", "project_lease"]


class ProjectLeases:
    """Acquire, extend, release and read write leases on projects.

    Note: acquiring never waits; a piece that finds its project leased is sent again later
    without claiming it, so waiting for a lease costs it no attempt.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._release = client.register_script(RELEASE)
        self._extend = client.register_script(EXTEND)

    @staticmethod
    def key(lease: str) -> str:
        return f"{PREFIX}:lease:{lease}"

    def acquire(self, lease: str, owner: str, ttl: int) -> bool:
        return bool(self.redis.set(self.key(lease), owner, nx=True, ex=ttl))

    def extend(self, lease: str, owner: str, ttl: int) -> bool:
        return bool(self._extend(keys=[self.key(lease)], args=[owner, ttl]))

    def release(self, lease: str, owner: str) -> bool:
        return bool(self._release(keys=[self.key(lease)], args=[owner]))

    def holder(self, lease: str) -> str | None:
        value = self.redis.get(self.key(lease))
        return str(value) if value is not None else None
