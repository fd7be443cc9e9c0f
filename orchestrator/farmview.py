"""What a job kind reads of the farm when it compiles and schedules: `FarmView`; `orchestrator.farm.Farm` is one."""

from __future__ import annotations

from typing import Protocol

import redis

from orchestrator.catalog import Catalog
from orchestrator.nodes import NodeRegistry
from orchestrator.pull.costs import CostBook
from orchestrator.pull.speeds import SpeedBook
from orchestrator.settings import FarmSettings
from orchestrator.store import JobStore


class FarmView(Protocol):
    """The farm's settings, its Redis and the stores a kind reads.

    Note: a protocol, not the `Farm` class: the farm loads the kinds (its store reads records
    with their models), so a kind that imported the farm's module would close an import circle.
    """

    settings: FarmSettings

    @property
    def redis(self) -> redis.Redis: ...

    @property
    def store(self) -> JobStore: ...

    @property
    def nodes(self) -> NodeRegistry: ...

    @property
    def catalog(self) -> Catalog: ...

    @property
    def speeds(self) -> SpeedBook: ...

    @property
    def costs(self) -> CostBook: ...
