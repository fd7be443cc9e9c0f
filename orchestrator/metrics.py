"""What workers count for the farm's metrics, into one Redis hash (`rf:metrics`).

Serving them (`resolve_farm_*`, read from Redis on every scrape) is local operation's:
`orchestrator/local/metrics_server.py`.
"""

from __future__ import annotations

import redis

METRICS = "rf:metrics"
FPS = "rf:metrics:fps"


def count(client: redis.Redis, **fields: float) -> None:
    """Add to the farm's counters, e.g. count(r, **{"frames:bay-2": 960})."""
    pipe = client.pipeline(transaction=False)
    for field, value in fields.items():
        pipe.hincrbyfloat(METRICS, field, value)
    pipe.execute()


def record_render(client: redis.Redis, node: str, frames: int, seconds: float) -> None:
    count(client, **{f"segments:{node}": 1, f"frames:{node}": frames})
    if seconds > 0:
        client.hset(FPS, node, frames / seconds)


def record_failure(client: redis.Redis, kind: str, node: str, retried: bool) -> None:
    count(client, **{f"failures:{kind}:{node}": 1, **({f"retries:{kind}": 1} if retried else {})})


def record_stitch(client: redis.Redis, seconds: float) -> None:
    count(client, stitch_seconds_sum=seconds, stitch_count=1)
