"""How fast each node renders, remembered across jobs: what pulled renders size their pieces by.

A finished render piece records its node's speed (frames per second once its first frame
was out) and the start cost it paid, per speed key (codec and picture size: a node renders
ProRes at 1080p at another speed than H.265 at 4K). Each new figure is blended with the
last (an exponential average), so a node that got faster or slower is followed within a
few pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

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

    def record(self, node: str, key: str, fps: float, start_seconds: float) -> None:
        """Blend in one piece's figures (read-modify-write: the last writer of a node's figure wins)."""
        if fps <= 0:
            return
        field = f"{node}|{key}"
        raw = self.redis.hget(SPEEDS, field)
        if raw:
            old = json.loads(raw)
            fps = BLEND * fps + (1 - BLEND) * float(old["fps"])
            start_seconds = BLEND * start_seconds + (1 - BLEND) * float(old["start"])
        self.redis.hset(SPEEDS, field, json.dumps({"fps": round(fps, 3), "start": round(start_seconds, 3)}))

    def speeds(self, nodes: Iterable[str], key: str) -> dict[str, float]:
        """Frames per second of each of `nodes` that has rendered `key` before."""
        names = sorted(set(nodes))
        if not names:
            return {}
        raws = self.redis.hmget(SPEEDS, [f"{n}|{key}" for n in names])
        return {n: float(json.loads(r)["fps"]) for n, r in zip(names, raws, strict=True) if r}

    def start_seconds(self, key: str) -> float | None:
        """The start cost renders of `key` paid lately, as the median over nodes; None when never measured."""
        starts = sorted(
            float(json.loads(raw)["start"])
            for field, raw in self.redis.hscan_iter(SPEEDS, match=f"*|{key}")
            if str(field).endswith(f"|{key}")
        )
        return starts[len(starts) // 2] if starts else None
