"""Resolve's project rules across hosts: who may write a project of a shared library.

In a shared (PostgreSQL) project library, the first host to open a project holds it for
writing; a later opener on another host gets it read-only: it may change what it sees, but
nothing it does reaches the library and `SaveProject` returns False (Resolve's manual: it must
"Save As" to keep its changes). The hold ends when its host closes the project
(`ProjectManager.CloseProject`) or its process dies. A library in collaboration mode lets
every host write; a disk database is each host's own, so the rules bind shared
(PostgreSQL) libraries only. Simulated hosts share holds through a file beside the library
(`library.json.holds`), one record per database and project: the holder's host and pid.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from bridge.sim.library import Address, Library, _lock, _unlock, get_in

T = TypeVar("T")
COLLABORATION = "Collaboration"  # a database's flag: every host may write its projects


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but alive
    return True


class ProjectHolds:
    """The write holds on a farm's shared library: which host may write which project.

    Note: the simulated hosts of a farm are processes on one machine, so a holder's liveness
    is its pid; several processes of one host (a worker's pool process, its helper) are one
    Resolve there and share the host's hold.
    """

    def __init__(self, library: Path) -> None:
        self.path = Path(library).with_name(Path(library).name + ".holds")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
            try:
                with os.fdopen(os.dup(fd), "r+", encoding="utf-8") as f:
                    text = f.read()
                    holds: dict[str, Any] = json.loads(text) if text.strip() else {}
                    before = copy.deepcopy(holds)
                    yield holds
                    if holds != before:
                        f.seek(0)
                        f.truncate()
                        f.write(json.dumps(holds))
            finally:
                _unlock(fd)
        finally:
            os.close(fd)

    @staticmethod
    def _key(database: str, project_id: str) -> str:
        return f"{database}/{project_id}"

    def open(self, database: str, project_id: str, host: str, collaboration: bool = False) -> bool:
        """Open `project_id` on `host`: True when it may write (it holds it now), False when read-only."""
        if collaboration:
            return True
        key = self._key(database, project_id)
        with self._locked() as holds:
            holder = holds.get(key)
            if holder and holder["host"] != host and _alive(int(holder["pid"])):
                return False
            holds[key] = {"host": host, "pid": os.getpid()}
            return True

    def close(self, database: str, project_id: str, host: str) -> None:
        """Give up `host`'s hold on `project_id`, if it holds it."""
        key = self._key(database, project_id)
        with self._locked() as holds:
            if holds.get(key, {}).get("host") == host:
                del holds[key]

    def holder(self, database: str, project_id: str) -> str | None:
        """The host that holds `project_id` for writing now, if a live one does."""
        with self._locked() as holds:
            holder = holds.get(self._key(database, project_id))
            return str(holder["host"]) if holder and _alive(int(holder["pid"])) else None


class ReadOnlyCopy:
    """A project opened read-only: the library as this host saw it at opening, changed only here.

    Note: it answers the `Library` calls a project's handles make (`read`, `update`,
    `update_at`), so the API behaves as on a writable project, but no change leaves this
    process, as a read-only project's changes never reach Resolve's database.
    """

    def __init__(self, library: Library) -> None:
        self._data = copy.deepcopy(library.read())

    def read(self) -> dict[str, Any]:
        return self._data

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        return change(self._data)

    def update_at(self, address_of: Callable[[dict[str, Any]], Address], change: Callable[[Any], T]) -> T:
        address = address_of(self._data)
        parent, key = get_in(self._data, address[:-1]), address[-1]
        value = copy.deepcopy(parent[key])
        result = change(value)
        parent[key] = value
        return result
