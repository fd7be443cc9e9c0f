"""The node registry: which Resolve hosts exist, which are up, and what each can do.

Workers announce themselves and heartbeat into Redis (`rf:node:<name>`). A node silent for
longer than the heartbeat timeout shows as down and gets no new segments. Heartbeat times
come from Redis's own clock, so hosts whose clocks disagree still agree on who is up.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import Placement
from orchestrator.settings import VERSION_KEY

NODES = "rf:nodes"
NOT_ANSWERING = "Resolve does not answer"  # the heartbeat probe's reason; only the probe clears it


class NodeRecord(BaseModel):
    """A node as the registry shows it: who it is, what it can do, and whether it is up now.

    Note: `up`, `age_seconds` and `version_mismatch` are derived when the registry is read
    (from Redis's clock), never stored.
    """

    model_config = ConfigDict(extra="allow")  # a newer worker may announce more

    name: str
    host: str | None = None
    os: str | None = None
    platform: str | None = None
    tags: list[str] = Field(default_factory=list)
    roles: list[str] = Field(default_factory=list)
    bridge: str | None = None
    resolve: dict[str, Any] | None = None
    version_key: str | None = None
    pid: int | None = None
    last_seen: float = 0.0
    started_at: float | None = None
    current_task: str | None = None
    unhealthy: str | None = None
    last_problem: str | None = None  # the latest unhealthy mark, kept after it is cleared
    last_problem_at: float | None = None
    stopped: bool = False
    age_seconds: float = 0.0
    up: bool = False
    version_mismatch: bool = False

    def public(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


def redis_now(client: redis.Redis) -> float:
    seconds, micros = client.time()
    return float(seconds) + micros / 1e6


def _keep_problem(record: dict[str, Any], problem: str, now: float) -> None:
    """Remember an unhealthy mark beyond its clearing: a mark a good heartbeat clears within a second is
    otherwise gone before anyone reads the node (`resolve-farm nodes --json` shows the latest)."""
    record["last_problem"], record["last_problem_at"] = problem, now


def stopping_key(name: str) -> str:
    """The mark of a node whose worker is stopping (`NodeRegistry.mark_stopping`), read with each progress report."""
    return f"rf:node:{name}:stopping"


class NodeRegistry:
    """Announcements, heartbeats and the view of live nodes."""

    def __init__(self, client: redis.Redis, heartbeat_timeout: float) -> None:
        self.redis = client
        self.timeout = heartbeat_timeout

    @staticmethod
    def key(name: str) -> str:
        return f"rf:node:{name}"

    def announce(self, info: dict[str, Any]) -> None:
        """Record a node's identity (name, host, os, tags, resolve, bridge, version_key, roles)."""
        now = redis_now(self.redis)
        record = {**info, "last_seen": now, "started_at": now, "current_task": None}
        pipe = self.redis.pipeline()
        pipe.set(self.key(info["name"]), json.dumps(record))
        pipe.sadd(NODES, info["name"])
        pipe.execute()

    def heartbeat(self, name: str, **fields: Any) -> None:
        """Mark the node alive now, updating any of its fields (current_task, resolve, ...)."""
        self._update(name, fields, seen=True)

    def mark(self, name: str, **fields: Any) -> None:
        """Update fields of a node another process speaks for (one it found lost: `unhealthy`), leaving when it
        was last seen alone: a dead node marked by a live one must still go down."""
        self._update(name, fields, seen=False)

    def _update(self, name: str, fields: dict[str, Any], seen: bool) -> None:
        key = self.key(name)

        def change(pipe: redis.client.Pipeline) -> None:
            raw = pipe.get(key)
            record = json.loads(raw) if raw else {"name": name}
            record.update(fields)
            now = redis_now(self.redis) if seen or fields.get("unhealthy") else 0.0
            if fields.get("unhealthy"):
                _keep_problem(record, str(fields["unhealthy"]), now)
            if seen:
                record["last_seen"] = now
            pipe.multi()
            pipe.set(key, json.dumps(record))
            pipe.sadd(NODES, name)

        self.redis.transaction(change, key)

    def resolve_answered(self, name: str, resolve: dict[str, Any], unhealthy: str | None) -> bool:
        """Record what a heartbeat's ping of Resolve found; True when the node's health changed.

        A failed ping (`unhealthy` given) marks a healthy node; a good one clears only what a
        failed ping marked. A mark a piece left (a call hung, a piece lost) stays until a pool
        process proves it can reach Resolve again (`tasks.heartbeat`).
        """
        key = self.key(name)
        changed = False

        def record(pipe: redis.client.Pipeline) -> None:
            nonlocal changed
            raw = pipe.get(key)
            node = json.loads(raw) if raw else {"name": name}
            marked = node.get("unhealthy")
            changed = False
            now = redis_now(self.redis)
            if unhealthy and not marked:
                node.update(unhealthy=unhealthy, resolve=resolve)
                _keep_problem(node, unhealthy, now)
                changed = True
            elif not unhealthy and marked and str(marked).startswith(NOT_ANSWERING):
                node.update(unhealthy=None, resolve=resolve)
                changed = True
            node["last_seen"] = now
            pipe.multi()
            pipe.set(key, json.dumps(node))
            pipe.sadd(NODES, name)

        self.redis.transaction(record, key)
        return changed

    def mark_stopping(self, name: str, seconds: float) -> None:
        """Say a node's worker is stopping (a service stop, Ctrl-C): the pieces it runs give themselves back.

        Note: a key of its own, read by a running piece with each progress report, in the same
        round trip (`LiveProgress.report`; from a prefork child as from a thread: the worker's
        main process is the one that saw the stop); it expires by itself, and a worker clears it
        when it starts.
        """
        self.redis.set(stopping_key(name), "1", ex=max(1, int(seconds)))

    def clear_stopping(self, name: str) -> None:
        self.redis.delete(stopping_key(name))

    def mark_down(self, name: str) -> None:
        """Say a node is gone (its worker stopped cleanly)."""
        self.heartbeat(name, stopped=True)

    def all(self) -> list[NodeRecord]:
        names = sorted(self.redis.smembers(NODES))
        raws = self.redis.mget([self.key(n) for n in names]) if names else []
        now = redis_now(self.redis)
        nodes = []
        for raw in raws:
            if raw is None:
                continue
            node = NodeRecord.model_validate_json(raw)
            age = now - node.last_seen
            node.age_seconds = round(age, 1)
            node.up = age <= self.timeout and not node.stopped
            node.version_mismatch = node.version_key != VERSION_KEY
            nodes.append(node)
        return nodes

    def eligible(
        self, node: str | None = None, tags: list[str] | tuple[str, ...] = (), role: str = "resolve"
    ) -> list[NodeRecord]:
        """Live nodes of this release with `role` (Resolve hosts by default) that satisfy a job's constraints."""
        wanted = set(tags)
        return [
            n for n in self.all()
            if n.up and not n.version_mismatch and role in n.roles and not n.unhealthy
            and (node is None or n.name == node) and wanted <= set(n.tags)
        ]  # fmt: skip

    def candidates(self, placement: Placement) -> list[str]:
        """Nodes a piece so placed could be handed to by name (on their own queue), best first.

        Note: Resolve hosts and transcoding workers listen on a queue of their own; a post piece
        is never handed to a named node, so it has no candidates: it runs on whichever post worker takes it.
        """
        if placement.pool == "post":
            return []
        if placement.pool == "transcode":
            return [n.name for n in self.eligible(placement.node, role="transcode")]
        return [n.name for n in self.eligible(placement.node, placement.tags)]

    def forget(self, name: str) -> None:
        self.redis.srem(NODES, name)
        self.redis.delete(self.key(name))


def describe_age(node: NodeRecord) -> str:
    return "up" if node.up else f"down ({node.age_seconds:.0f}s silent)"


def wait_for_nodes(registry: NodeRegistry, count: int, timeout: float) -> list[NodeRecord]:
    """Block until `count` Resolve nodes are up (or raise TimeoutError)."""
    deadline = time.monotonic() + timeout
    while True:
        live = registry.eligible()
        if len(live) >= count:
            return live
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(live)} of {count} nodes came up within {timeout:g}s")
        time.sleep(0.1)
