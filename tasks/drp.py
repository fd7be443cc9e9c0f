"""A host's imports of `.drp` files: each content imported once, reused by later pieces and jobs, old ones removed.

The bridge imports a `.drp` into the project folder `resolve-farm imports` of the host's
database, named after its content (`<stem>-<sha256[:12]>`), unless that project is there
already (`bridge.ops.open_drp`): a split render's pieces, and later jobs on the same file,
load it instead of importing it again; a changed file has another digest and is imported
anew. This module remembers, per node and database in Redis (`rf:drp:<node>:<database>`:
project -> JSON of the file, digest, when imported, when last used), when each import was
last used, and deletes from the host the imports no piece used for `drp_import_max_age`.

Note: only imports this node recorded are deleted; the one just opened never is (Resolve
refuses to delete the open project anyway). On a database shared by several hosts, an import
made by one is found by the others; each node deletes only what it recorded.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from bridge import Session
from tasks.runtime import runtime

log = logging.getLogger(__name__)
PREFIX = "rf:drp"


def key(node: str, database: str) -> str:
    return f"{PREFIX}:{node}:{database}"


def open_drp(session: Session, drp: str, database: dict[str, str] | None) -> dict[str, Any]:
    """Open the project `drp` holds on this host (imported once per content), note its use, prune old imports."""
    opened = session.open_drp(drp, database=database)
    name, now = opened["name"], time.time()
    redis, where = runtime.farm().redis, key(runtime.node, opened["database"])
    known = redis.hget(where, name)
    entry = json.loads(known) if known else {"drp": drp, "digest": opened["digest"], "imported_at": now}
    entry["used_at"] = now
    redis.hset(where, name, json.dumps(entry))
    if opened["imported"]:
        log.info("imported %s as project %r (sha256 %s)", drp, opened["project"], opened["digest"][:12])
    else:
        log.info("reused project %r for %s: imported here before", opened["project"], drp)
    prune(session, where, keep=name, now=now)
    return opened


def prune(session: Session, where: str, keep: str, now: float) -> list[str]:
    """Delete this node's imports that no piece used for `drp_import_max_age` seconds; returns what went."""
    oldest = now - runtime.settings.drp_import_max_age
    redis = runtime.farm().redis
    due = [name for name, raw in redis.hgetall(where).items() if name != keep and json.loads(raw)["used_at"] <= oldest]
    if not due:
        return []
    done = session.delete_imports(due)
    gone = done["deleted"] + done["missing"]
    if gone:
        redis.hdel(where, *gone)
    for name in done["deleted"]:
        log.info(
            "deleted project %r: an import of a .drp no piece used for %gs", name, runtime.settings.drp_import_max_age
        )
    return done["deleted"]
