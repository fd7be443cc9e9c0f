"""What a proxy on storage was made from: the record beside it, and the source's sampled digest.

Each proxy the farm makes gets `<proxy>.source.json` beside it, written after the proxy is
verified and renamed into place: the source (its path, size, modification time and sampled
digest), the preset, the proxy's own size and what the check found. A scan holds a source
against it to tell a current proxy from a stale one without reading either file whole.

Note: the digest samples the source (its size, and a MiB from its start, middle and end)
so that a scan of a project of long camera files stays a matter of seconds; a change inside a
file that keeps its size, its modification time and all three samples would go unseen.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from typing import Any

from orchestrator.kinds.proxies import RECORD_SUFFIX

SAMPLE = 1 << 20  # bytes read at each of the source's start, middle and end


def sampled_digest(path: str) -> str:
    """sha256 over the file's size and up to three MiB of it (start, middle, end), hex."""
    size = os.path.getsize(path)
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as f:
        for offset in sorted({0, max(0, size // 2 - SAMPLE // 2), max(0, size - SAMPLE)}):
            f.seek(offset)
            digest.update(f.read(SAMPLE))
    return digest.hexdigest()


def record_path(proxy: str) -> str:
    return proxy + RECORD_SUFFIX


def read_record(proxy: str) -> dict[str, Any] | None:
    """The record beside `proxy` (as this host names it); None when there is none or it cannot be read."""
    try:
        with open(record_path(proxy), encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def write_record(proxy: str, record: dict[str, Any]) -> None:
    """Write the record beside `proxy` through a temporary file: a reader sees the old one or the new one."""
    target = record_path(proxy)
    fd, tmp = tempfile.mkstemp(prefix=".record-", dir=os.path.dirname(target))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f, indent=1, sort_keys=True)
        os.chmod(tmp, 0o644)  # mkstemp's file is its owner's alone: every host's scan reads it
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def remove_record(proxy: str) -> None:
    """Forget what `proxy` was made from (before it is replaced: a proxy with no record is never current)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(record_path(proxy))


def file_size(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
