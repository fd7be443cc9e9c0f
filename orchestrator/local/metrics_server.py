"""The farm's Prometheus metrics, read from Redis on every scrape.

Workers count what they do into one Redis hash (`orchestrator.metrics`); this module turns that,
the job records, the node registry and the queue lengths into `resolve_farm_*` metrics.
Any number of exporters can serve the same farm: nothing lives in their memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from orchestrator.farm import Farm
from orchestrator.metrics import FPS, METRICS
from orchestrator.models import JOB_STATES
from orchestrator.settings import VERSION_KEY


class FarmCollector(Collector):
    """Collects `resolve_farm_*` metrics from Redis on each scrape."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    def collect(self) -> Iterator[Any]:
        r = self.farm.redis
        counters = {k: float(v) for k, v in (r.hgetall(METRICS) or {}).items()}

        jobs = GaugeMetricFamily("resolve_farm_jobs", "Jobs kept in Redis, by state", labels=["state"])
        states = self.farm.store.counts()  # from the indexes: no record is read
        for state in JOB_STATES:
            jobs.add_metric([state], states.get(state, 0))
        yield jobs

        segments = CounterMetricFamily("resolve_farm_segments_rendered", "Segments rendered", labels=["node"])
        frames = CounterMetricFamily("resolve_farm_frames_rendered", "Frames rendered", labels=["node"])
        failures = CounterMetricFamily("resolve_farm_task_failures", "Task failures", labels=["kind", "node"])
        retries = CounterMetricFamily("resolve_farm_task_retries", "Tasks retried after a failure", labels=["kind"])
        for field, value in sorted(counters.items()):
            kind, _, rest = field.partition(":")
            if kind == "segments":
                segments.add_metric([rest], value)
            elif kind == "frames":
                frames.add_metric([rest], value)
            elif kind == "failures":
                task_kind, _, node = rest.partition(":")
                failures.add_metric([task_kind, node], value)
            elif kind == "retries":
                retries.add_metric([rest], value)
        yield from (segments, frames, failures, retries)

        fps = GaugeMetricFamily("resolve_farm_render_fps", "Frames/s of the node's last render", labels=["node"])
        for node, value in sorted((r.hgetall(FPS) or {}).items()):
            fps.add_metric([node], float(value))
        yield fps

        yield from self._nodes()
        yield self._queues(r)

        stitch = SummaryMetricFamily("resolve_farm_stitch_seconds", "Time to join and verify a render's output")
        stitch.add_metric(
            [], count_value=int(counters.get("stitch_count", 0)), sum_value=counters.get("stitch_seconds_sum", 0.0)
        )
        yield stitch

    def _nodes(self) -> Iterator[Any]:
        nodes = self.farm.nodes.all()
        up = GaugeMetricFamily("resolve_farm_node_up", "1 when the node heartbeats, 0 when silent", labels=["node"])
        totals = GaugeMetricFamily("resolve_farm_nodes", "Nodes by status", labels=["status"])
        for node in nodes:
            up.add_metric([node.name], 1 if node.up else 0)
        totals.add_metric(["up"], sum(1 for n in nodes if n.up))
        totals.add_metric(["down"], sum(1 for n in nodes if not n.up))
        yield up
        yield totals

    @staticmethod
    def _queues(r: redis.Redis) -> GaugeMetricFamily:
        """Messages waiting per queue; kombu keeps each priority band of a queue in its own list."""
        depth: Counter[str] = Counter()
        prefix = f"v{VERSION_KEY}."
        for key in r.scan_iter(f"{prefix}*"):
            if r.type(key) == "list":
                depth[key.split(":")[0].removeprefix(prefix)] += r.llen(key)
        gauge = GaugeMetricFamily("resolve_farm_queue_depth", "Messages waiting in a queue", labels=["queue"])
        for queue, value in sorted(depth.items()):
            gauge.add_metric([queue], value)
        return gauge


def serve(farm: Farm, host: str, port: int) -> Any:
    """Serve /metrics on host:port from a background thread; returns the server."""
    from prometheus_client import start_http_server
    from prometheus_client.registry import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(FarmCollector(farm))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server
