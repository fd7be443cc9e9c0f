"""One handle on the farm's control plane: settings, Redis, the Celery app and the stores."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import redis
from celery import Celery

from orchestrator.app import make_app
from orchestrator.catalog import Catalog
from orchestrator.nodes import NodeRegistry
from orchestrator.settings import FarmSettings
from orchestrator.store import JobStore, connect


@dataclass
class Farm:
    """What submitting, watching and steering jobs needs, built once per process."""

    settings: FarmSettings

    @cached_property
    def redis(self) -> redis.Redis:
        return connect(self.settings.redis_url)

    @cached_property
    def app(self) -> Celery:
        return make_app(self.settings)

    @cached_property
    def store(self) -> JobStore:
        return JobStore(self.redis, self.settings.job_retention)

    @cached_property
    def nodes(self) -> NodeRegistry:
        return NodeRegistry(self.redis, self.settings.heartbeat_timeout)

    @cached_property
    def catalog(self) -> Catalog:
        return Catalog(self.redis)
