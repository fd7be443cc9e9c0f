"""A job's output file: never one replaced unasked.

A render whose output name is taken is refused at submit unless its spec says `overwrite`
(`orchestrator.kinds.render`); over MCP the agent is asked first. A file that appears under the
name after the submit is not replaced either: the stitch puts its file under the next free
version of the name (`place`), and the job says so.
"""

from __future__ import annotations

import errno
import json
import os
import re
from pathlib import Path

import redis

PLACED = "rf:placed"  # "<prefix>:<job id>": the file a job's stitch put in place (path, device, inode)
PLACED_SECONDS = 7 * 24 * 3600
NO_LINKS = frozenset({errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV})  # a file system without them
_VERSION = re.compile(r"^(?P<stem>.*?)_v(?P<number>\d+)$")


def next_version(path: Path, taken: set[str] | None = None) -> Path:
    """The first of `<stem>_v2`, `_v3`, ... (counting on from a stem that ends in `_v<n>` already) that names no
    file, with `path`'s extension, in `path`'s folder; `taken` are names to pass over as well."""
    match = _VERSION.match(path.stem)
    stem, number = (match["stem"], int(match["number"])) if match else (path.stem, 1)
    while True:
        number += 1
        candidate = path.with_name(f"{stem}_v{number}{path.suffix}")
        if not candidate.exists() and candidate.name not in (taken or set()):
            return candidate


def place(temp: Path, final: Path, overwrite: bool, client: redis.Redis | None, job_id: str) -> Path:
    """Move the finished file `temp` into place as `final` and return where it went: replacing whatever is
    there when `overwrite`; else under `final` while no file has that name, and under the next free version
    of it when one has (a file of another's, appeared since the submit).

    Note: the name is taken by a hard link, which fails rather than replaces: no moment lets
    another writer's file under the name be lost, and the name only ever shows the finished
    file. The file this job's stitch placed before (a retry after a crash past the link, or a
    second copy of the stitch) is recognised by its inode, recorded in Redis, and replaced
    (`client` None: nothing recorded or recognised, for a stitch run outside a farm).
    """
    while True:
        if overwrite or _placed_by(client, job_id, final):
            os.replace(temp, final)
            break
        try:
            os.link(temp, final)
        except FileExistsError:
            final = next_version(final)
            continue
        except OSError as exc:
            if exc.errno not in NO_LINKS:
                raise
            if not _create_new(final):  # no hard links here: take the name by an exclusive create
                final = next_version(final)
                continue
            os.replace(temp, final)  # (over the empty file just made: the name shows it for a moment)
            break
        temp.unlink()
        break
    if client is not None:
        seen = final.stat()
        record = {"path": str(final), "dev": seen.st_dev, "ino": seen.st_ino}
        client.set(f"{PLACED}:{job_id}", json.dumps(record), ex=PLACED_SECONDS)
    return final


def _create_new(path: Path) -> bool:
    """Create `path` empty unless a file has that name; whether it was created."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    return True


def _placed_by(client: redis.Redis | None, job_id: str, final: Path) -> bool:
    """Whether `final` is the very file this job's stitch placed (same path, device and inode)."""
    raw = client.get(f"{PLACED}:{job_id}") if client is not None else None
    if not raw:
        return False
    placed = json.loads(raw)
    try:
        seen = final.stat()
    except FileNotFoundError:
        return False
    return placed["path"] == str(final) and (placed["dev"], placed["ino"]) == (seen.st_dev, seen.st_ino)
