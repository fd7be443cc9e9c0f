"""What every piece that talks to Resolve shares: its base class, opening its job's project, publishing a
timeline's content.

`ResolvePiece` drops a session broken by a failure and closes the project a writer held;
`reading` opens a job's project for a block and lets a shared library's project go after it;
`publish_content` puts what is on a timeline into the catalog, once per render on a node.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

from bridge import BridgeError
from bridge.errors import CallTimeout, ConnectError, HelperDied
from orchestrator.models import ProjectRef
from tasks import drp
from tasks.base import PieceRun, PieceTask
from tasks.deadline import PieceOverdue
from tasks.runtime import runtime

log = logging.getLogger(__name__)
SESSION_LOST = (HelperDied, CallTimeout, ConnectError, PieceOverdue)  # after which the session is dropped


class ResolvePiece(PieceTask):
    """A piece that talks to this host's Resolve: a broken session is dropped after a failure."""

    abstract = True
    hung_errors = (*PieceTask.hung_errors, CallTimeout)

    def after_failure(self, run: PieceRun, exc: BaseException) -> None:
        if isinstance(exc, SESSION_LOST):
            runtime.drop_session()

    def end_write(self, run: PieceRun) -> None:
        """Close the project, so the next writer's host holds it for writing (Resolve's rule)."""
        runtime.session().close_project()


def open_project(spec: ProjectRef) -> bool:
    """Open a job's project on this host (from its database or .drp) and refresh the node's catalog.

    Returns whether the project lives in a shared (PostgreSQL) library, where this host now
    holds it and no other host can write it until this one closes it.

    Note: renders and edits both open projects here, so the project database reaches Resolve
    in one form only (`Database.as_resolve`).
    """
    session = runtime.session()
    database = spec.database.as_resolve() if spec.database else None
    if spec.drp:  # imported once per content on this host, then reused (`tasks.drp`)
        opened = drp.open_drp(session, runtime.to_node(spec.drp), database)
        current, name = opened["database"], opened["project"]
        shared = (database or {}).get("DbType") == "PostgreSQL"
    else:
        opened = session.open_project(spec.project, database=database)
        listed = session.list_projects()["database"]
        current, name, shared = listed.get("DbName", ""), spec.project, listed.get("DbType") == "PostgreSQL"
    runtime.farm().catalog.update_project(runtime.node, current, name, opened["timelines"])
    return shared


PUBLISHED_KEPT = 256  # renders remembered as having published their timeline's content on this node
_published: dict[tuple[str, int, str], str] = {}  # (job, generation, timeline) -> the fingerprint published here


def publish_content(spec: ProjectRef, timeline: str, once_for: tuple[str, int] | None = None) -> str:
    """Publish what is on `timeline` of the open project into the catalog (`Catalog.update_content`); return its
    fingerprint.

    `once_for` (job, generation): only the first piece of that render on this node publishes.
    Note: walking a timeline's items costs a few API calls per item (seconds on a long
    timeline with a real Resolve), so a render's later pieces here do not walk it again.
    """
    key = (*once_for, timeline) if once_for else None
    if key is not None and key in _published:
        return _published[key]
    content = runtime.session().timeline_content(timeline)
    runtime.farm().catalog.update_content(runtime.node, spec.database.name if spec.database else None, spec.project,
                                          content)  # fmt: skip
    if key is not None:
        _published[key] = str(content["fingerprint"])
        while len(_published) > PUBLISHED_KEPT:
            del _published[next(iter(_published))]
    return str(content["fingerprint"])


@contextlib.contextmanager
def reading(spec: ProjectRef, *, writing: bool = False) -> Iterator[None]:
    """Open a job's project for what the block does, then, unless `writing`, close it again if it
    lives in a shared library, so that a writer elsewhere can hold it.

    Note: a reader that leaves a shared project open holds it: a later edit on another host
    would get it read-only and lose its changes (Resolve's rule). A writer closes it in
    `end_write`, before its lease goes. A failure to close is logged, not raised: what the
    block did is good, and a writer that then finds the project read-only fails with
    Resolve's own refusal to save. After a lost session there is nothing to close through
    (`after_failure` drops it; Resolve lets go of what a dead process held).
    """
    shared = open_project(spec) and not writing
    try:
        yield
    except SESSION_LOST:
        raise
    except BaseException:
        _let_go(shared)
        raise
    _let_go(shared)


def _let_go(shared: bool) -> None:
    if not shared:
        return
    try:
        runtime.session().close_project()
    except BridgeError as exc:
        log.warning("node %s could not close its shared project: %s", runtime.node, exc)
