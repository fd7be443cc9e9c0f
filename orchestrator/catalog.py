"""What projects and timelines the farm's hosts can see, as they reported it.

Workers publish their Resolve's catalog (projects of their database, each with its
timelines' frame range, rate and size, and its media pool's bins; render formats and codecs)
when they start and refresh a project's entry whenever a task opens it (its bins: whenever a
proxies scan reads them). What is on a timeline (its items, their media and grade, and a
fingerprint of them) is published by the first piece of each render on each node that opens it,
and by an edit that changed it, so a timeline edited under the same name is told apart.
`jobs.submit` checks specs against it, so a job for a project or timeline no host knows is
refused before anything is queued.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

CONTENT_KEEP = 90 * 24 * 3600  # a timeline's content not seen for this long is forgotten


class Catalog:
    """Per-node catalogs in Redis (`rf:catalog:<node>`), read as one; and what is on each timeline, as the
    last host that opened it to render (or edited it) saw it (`rf:catalog:content:<database>/<project>/<timeline>`:
    its items per video track and their fingerprint, `bridge.ops.timeline_content`)."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    @staticmethod
    def key(node: str) -> str:
        return f"rf:catalog:{node}"

    def publish(self, node: str, catalog: dict[str, Any]) -> None:
        self.redis.set(self.key(node), json.dumps(catalog))

    def update_project(self, node: str, database: str, project: str, timelines: list[dict[str, Any]]) -> None:
        """Refresh one project's timelines in a node's catalog (after a task opened it)."""
        key = self.key(node)

        def change(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            catalog = json.loads(raw) if raw else {"databases": {}, "render": {}}
            projects = catalog["databases"].setdefault(database, {})
            projects[project] = {t["name"]: t for t in timelines}
            pipe.multi()
            pipe.set(key, json.dumps(catalog))

        self.redis.transaction(change, key)

    @staticmethod
    def content_key(database: str | None, project: str, timeline: str) -> str:
        return f"rf:catalog:content:{database or ''}/{project}/{timeline}"

    def update_content(self, node: str, database: str | None, project: str, content: dict[str, Any]) -> None:
        """Keep what `node` saw on a timeline (`content`: name, fingerprint, tracks), replacing what was seen before.

        Note: keyed by the database and project as jobs name them (`database` None: the host's
        current one), so that compiling a job finds it from its spec alone.
        """
        seen = {**content, "node": node, "at": time.time()}
        self.redis.set(self.content_key(database, project, str(content["name"])), json.dumps(seen), ex=CONTENT_KEEP)

    def content(self, database: str | None, project: str, timeline: str) -> dict[str, Any] | None:
        """What was last seen on the timeline (its fingerprint and items per video track); None when nobody looked."""
        raw = self.redis.get(self.content_key(database, project, timeline))
        return json.loads(raw) if raw else None

    def update_bins(self, node: str, database: str, project: str, bins: list[str]) -> None:
        """Refresh one project's bins (paths from the media pool's root) in a node's catalog."""
        key = self.key(node)

        def change(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            catalog = json.loads(raw) if raw else {"databases": {}, "render": {}}
            catalog.setdefault("bins", {}).setdefault(database, {})[project] = sorted(bins)
            pipe.multi()
            pipe.set(key, json.dumps(catalog))

        self.redis.transaction(change, key)

    def bins(self, nodes: list[str], project: str, database: str | None = None) -> list[str] | None:
        """The project's bins as any of `nodes` last saw them; None when no node has looked."""
        found: set[str] | None = None
        for catalog in self.of(nodes):
            for db_name, projects in catalog.get("bins", {}).items():
                if (database is None or db_name == database) and project in projects:
                    found = (found or set()) | set(projects[project])
        return sorted(found) if found is not None else None

    def of(self, nodes: list[str]) -> list[dict[str, Any]]:
        raws = self.redis.mget([self.key(n) for n in nodes]) if nodes else []
        return [json.loads(r) for r in raws if r]

    def timeline(self, nodes: list[str], project: str, timeline: str, database: str | None) -> dict[str, Any] | None:
        """The timeline's info as any of `nodes` knows it, or None."""
        for catalog in self.of(nodes):
            for db_name, projects in catalog.get("databases", {}).items():
                if database is not None and db_name != database:
                    continue
                found = projects.get(project, {}).get(timeline)
                if found:
                    return dict(found)
        return None

    def projects(self, nodes: list[str], database: str | None = None) -> dict[str, list[str]]:
        """{project: [timelines]} across `nodes`."""
        merged: dict[str, set[str]] = {}
        for catalog in self.of(nodes):
            for db_name, projects in catalog.get("databases", {}).items():
                if database is None or db_name == database:
                    for name, timelines in projects.items():
                        merged.setdefault(name, set()).update(timelines)
        return {name: sorted(tls) for name, tls in sorted(merged.items())}

    def codecs(self, nodes: list[str]) -> dict[str, set[str]]:
        """{format key: {codec keys}} that every listed node offers at least one of."""
        merged: dict[str, set[str]] = {}
        for catalog in self.of(nodes):
            for fmt, codecs in catalog.get("render", {}).get("codecs", {}).items():
                merged.setdefault(fmt, set()).update(codecs.values())
        return merged
