"""Checks of a spec against what the farm knows, shared by the kinds that need them."""

from __future__ import annotations

import ntpath
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.kinds.base import SubmitRefused
from orchestrator.models import ProjectRef
from orchestrator.paths import PathRefused, confine, plain_name

if TYPE_CHECKING:
    from orchestrator.farmview import FarmView


def known_nodes(farm: FarmView, node: str | None, tags: list[str] | tuple[str, ...]) -> list[str]:
    """Names of the Resolve nodes of this release that satisfy the constraints, up or not (for the catalog)."""
    wanted = set(tags)
    found = [
        n.name for n in farm.nodes.all()
        if not n.version_mismatch and "resolve" in n.roles
        and (node is None or n.name == node) and wanted <= set(n.tags)
    ]  # fmt: skip
    if not found:
        if node:
            raise SubmitRefused("node", f"no Resolve node named {node!r} has joined the farm")
        if tags:
            raise SubmitRefused("tags", f"no Resolve node has the tags {sorted(tags)}")
        raise SubmitRefused("node", "no Resolve node has joined the farm yet")
    return found


def timeline(farm: FarmView, ref: ProjectRef, name: str, nodes: list[str], field: str = "") -> dict[str, Any] | None:
    """The timeline as the nodes' catalogs know it; None for a project still to be imported from its .drp."""
    database = ref.database.name if ref.database else None
    found = farm.catalog.timeline(nodes, ref.project, name, database)
    if found is not None:
        return found
    projects = farm.catalog.projects(nodes, database)
    if ref.project not in projects:
        if ref.drp:
            return None
        known = ", ".join(projects) or "none"
        raise SubmitRefused(f"{field}project", f"unknown project {ref.project!r} (known: {known})")
    known = ", ".join(projects[ref.project]) or "none"
    raise SubmitRefused(f"{field}timeline", f"unknown timeline {name!r} in project {ref.project!r} (known: {known})")


def confined(farm: FarmView, value: str | None, field: str) -> Path:
    """A path inside the storage roots (relative ones under the first root)."""
    try:
        return confine(value or ".", farm.settings.storage_roots, field)
    except PathRefused as exc:
        raise SubmitRefused(field, str(exc).split(": ", 1)[-1]) from None


def media_path(farm: FarmView, value: str, field: str) -> None:
    """A path an edit reads (media, a LUT file) must lie inside the media roots.

    Note: whether the file exists is not looked at here, so the answer for a missing file and
    for one outside the roots cannot tell an agent what exists on the farm's hosts.
    """
    if ntpath.splitdrive(value)[0] or value.startswith("\\") or ".." in Path(value.replace("\\", "/")).parts:
        raise SubmitRefused(
            field, f"{value!r} is outside the media roots: give the path as the farm's storage knows it"
        )
    try:
        confine(value, farm.settings.media_roots, field, what="the media roots")
    except PathRefused as exc:
        raise SubmitRefused(field, str(exc).split(": ", 1)[-1]) from None


def database(farm: FarmView, ref: ProjectRef, field: str) -> None:
    """A project database on PostgreSQL must be on one of the configured hosts."""
    if ref.database is None or ref.database.type != "PostgreSQL":
        return
    allowed = farm.settings.database_hosts
    if ref.database.host not in allowed:
        raise SubmitRefused(
            f"{field}database.host",
            f"{ref.database.host!r} is not a project database host of this farm (allowed: {', '.join(allowed)})",
        )


def file_name(value: str, field: str) -> str:
    try:
        return plain_name(value, field)
    except PathRefused as exc:
        raise SubmitRefused(field, str(exc).split(": ", 1)[-1]) from None
