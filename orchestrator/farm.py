"""One handle on the farm's control plane: settings, Redis, the Celery app, the stores and the job kinds."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from celery import Celery

from orchestrator import kinds
from orchestrator.app import make_app
from orchestrator.catalog import Catalog
from orchestrator.leases import ProjectLeases
from orchestrator.local.redis_server import broker_url
from orchestrator.locks import PieceLocks
from orchestrator.nodes import NodeRegistry
from orchestrator.pull.costs import CostBook
from orchestrator.pull.speeds import SpeedBook
from orchestrator.settings import FarmSettings
from orchestrator.store import JobStore, connect


@dataclass
class Farm:
    """What submitting, watching and steering jobs needs, built once per process.

    Note: the broker's address is found here, once, on first use (for a local farm it is read
    from the embedded Redis's state file); a failure is not remembered, so a farm started later
    is found by the next call.
    """

    settings: FarmSettings

    def __post_init__(self) -> None:
        kinds.load_plugins(self.settings.plugins)

    def reconnect(self) -> None:
        """Forget the broker's address and every connection made to it: the next use finds the farm anew
        (for a local farm, its Redis may have come back on another port)."""
        for name in ("url", "redis", "app", "store", "locks", "leases", "nodes", "catalog", "speeds", "costs"):
            self.__dict__.pop(name, None)

    @cached_property
    def url(self) -> str:
        return broker_url(self.settings)

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.url)

    @cached_property
    def app(self) -> Celery:
        return make_app(self.settings, self.url)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.redis, self.settings.job_retention, kinds.records)

    @cached_property
    def locks(self) -> PieceLocks:
        return PieceLocks(self.redis)

    @cached_property
    def leases(self) -> ProjectLeases:
        return ProjectLeases(self.redis)

    @cached_property
    def nodes(self) -> NodeRegistry:
        return NodeRegistry(self.redis, self.settings.heartbeat_timeout)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.redis)

    @cached_property
    def speeds(self) -> SpeedBook:
        return SpeedBook(self.redis)

    @cached_property
    def costs(self) -> CostBook:
        return CostBook(self.redis)
