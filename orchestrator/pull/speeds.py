"""How fast each node renders, remembered across jobs: what pulled renders size their pieces by.

A finished render piece records its node's speed (frames per second once its first frame
was out) and the start cost it paid, per speed key (codec and picture size: a node renders
ProRes at 1080p at another speed than H.265 at 4K). Each new figure is blended with the
last (an exponential average), so a node that got faster or slower is followed within a
few pieces. Speeds are work per second (`orchestrator.pull.costs`): frames per second on frames of
cost 1.

After a piece of a timeline whose costs are kept, the fit of costs and speeds
(`orchestrator.pull.fit`) settles every node's figure at once. A figure it could not tie to a
firm one (a node whose pieces met no other node's, or measured too briefly) is provisional:
it may be the section, not the node. The next firm figure replaces it instead of being
blended with it, and it sets no fit's unit.

A piece also records how unsteady its node was (`orchestrator.pull.fit.spread`: how far its
stretches' times strayed from what the fit says they cost), blended the same way: a farm whose
nodes' speeds wander keeps a reserve in a job's first round (`orchestrator.pull.sizing`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import redis

SPEEDS = "rf:speeds"
BLEND = 0.5  # weight of the newest figure


def speed_key(codec: str | None, width: int | None, height: int | None) -> str:
    """What speeds are remembered by: the codec and the picture size."""
    size = f"{width}x{height}" if width and height else "any"
    return f"{codec or 'preset'}@{size}"


class SpeedBook:
    """Each node's render speed and start cost, per speed key, in Redis."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def record(
        self, node: str, key: str, fps: float, start_seconds: float, firm: bool = True, spread: float | None = None
    ) -> None:
        """Blend in one piece's figures (read-modify-write: the last writer of a node's figure wins); `spread` is
        how unsteady the piece was (None: not measured)."""
        if fps <= 0:
            return
        field = f"{node}|{key}"
        raw = self.redis.hget(SPEEDS, field)
        old = json.loads(raw) if raw else None
        if spread is not None and old is not None and "spread" in old:
            spread = BLEND * spread + (1 - BLEND) * float(old["spread"])
        elif spread is None and old is not None:
            spread = old.get("spread")
        if old is not None and (firm or not old.get("firm", True)):  # a firm figure replaces a provisional one
            weight = BLEND if old.get("firm", True) == firm else 1.0
            fps = weight * fps + (1 - weight) * float(old["fps"])
            start_seconds = weight * start_seconds + (1 - weight) * float(old["start"])
        elif old is not None:  # a provisional figure after a firm one: the firm one stands, the start cost is news
            fps, firm = float(old["fps"]), True
            start_seconds = BLEND * start_seconds + (1 - BLEND) * float(old["start"])
        figures: dict[str, object] = {"fps": round(fps, 3), "start": round(start_seconds, 3), "firm": firm}
        if spread is not None:
            figures["spread"] = round(spread, 4)
        self.redis.hset(SPEEDS, field, json.dumps(figures))

    def settle(self, key: str, speeds: Mapping[str, float], firm: Iterable[str]) -> None:
        """Put the speeds a fit of costs and speeds found (`orchestrator.pull.fit`) in place of the nodes' last ones.

        Note: a fit's provisional figure does not replace a firm one: the node keeps what it was
        measured at where the costs were known. Only nodes recorded before are settled: their
        start cost is known.
        """
        fields = [f"{node}|{key}" for node in speeds]
        if not fields:
            return
        firm, settled = set(firm), {}
        for (node, fps), raw in zip(speeds.items(), self.redis.hmget(SPEEDS, fields), strict=True):
            old = json.loads(raw) if raw else {}
            if fps <= 0 or not old or (old.get("firm", True) and node not in firm):
                continue  # (a node never recorded has its piece's figures recorded when the piece is done)
            settled[f"{node}|{key}"] = json.dumps({**old, "fps": round(fps, 3), "firm": node in firm})
        if settled:
            self.redis.hset(SPEEDS, mapping=settled)

    def firm_speeds(self, key: str) -> dict[str, float]:
        """Every node's speed at `key` that is firm (measured where the costs were known)."""
        found = {}
        for field, raw in self.redis.hscan_iter(SPEEDS, match=f"*|{key}"):
            node, _, rest = str(field).partition("|")
            figures = json.loads(raw)
            if rest == key and figures.get("firm", True):
                found[node] = float(figures["fps"])
        return found

    def firm_speed(self, node: str, key: str) -> float | None:
        """`node`'s speed at `key` when it is firm (measured where the costs were known); else None."""
        raw = self.redis.hget(SPEEDS, f"{node}|{key}")
        figures = json.loads(raw) if raw else {}
        return float(figures["fps"]) if figures.get("firm", True) and "fps" in figures else None

    def figures(self, nodes: Iterable[str], key: str) -> dict[str, dict[str, Any]]:
        """What is remembered of each of `nodes` that has rendered `key` before: `fps`, `start`, `firm` and, once
        measured, `spread` (one read for all of them)."""
        names = sorted(set(nodes))
        raws = self.redis.hmget(SPEEDS, [f"{n}|{key}" for n in names]) if names else []
        return {n: json.loads(r) for n, r in zip(names, raws, strict=True) if r}

    def speeds(self, nodes: Iterable[str], key: str) -> dict[str, float]:
        """Frames per second of each of `nodes` that has rendered `key` before."""
        return {n: float(figures["fps"]) for n, figures in self.figures(nodes, key).items()}

    def spreads(self, nodes: Iterable[str], key: str) -> dict[str, float]:
        """How unsteady each of `nodes` that has recorded one at `key` was lately (`orchestrator.pull.fit.spread`)."""
        return {n: float(f["spread"]) for n, f in self.figures(nodes, key).items() if f.get("spread") is not None}

    def node_start(self, node: str) -> float | None:
        """The longest start cost `node` paid lately, over every speed key; None when never measured."""
        starts = [float(json.loads(raw)["start"]) for field, raw in self.redis.hscan_iter(SPEEDS, match=f"{node}|*")
                  if str(field).startswith(f"{node}|")]  # fmt: skip
        return max(starts) if starts else None

    def start_seconds(self, key: str) -> float | None:
        """The start cost renders of `key` paid lately, as the median over nodes; None when never measured."""
        starts = sorted(
            float(json.loads(raw)["start"])
            for field, raw in self.redis.hscan_iter(SPEEDS, match=f"*|{key}")
            if str(field).endswith(f"|{key}")
        )
        return starts[len(starts) // 2] if starts else None
