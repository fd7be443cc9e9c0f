"""The farm's Celery app, configured for hour-long renders on Redis.

`celery -A orchestrator.app worker` and `resolve-farm worker` both use `get_app()`. The
task modules are named in `include`, so only workers import them: the orchestrator sends
tasks by name and never imports `tasks`.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from celery import Celery
from celery.backends.redis import RedisBackend

from orchestrator import kinds
from orchestrator.local.redis_server import broker_url
from orchestrator.routing import RENDER
from orchestrator.settings import FarmSettings

WORKER_MODULES = ["tasks.worker", "tasks.cleanup"]  # besides the kinds' own task modules


class RecordKeepingRedisBackend(RedisBackend):
    """Celery's Redis result backend, without the per-task result subscription.

    Note: nobody waits on a Celery result here (job state lives in the job record), so a
    sender need not subscribe to every task's result channel; the stock backend does, and
    its subscriptions outlive the sending process's connection.
    """

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None  # no subscription to the task's result channel...

    def on_result_fulfilled(self, result: Any) -> None:
        return None  # ...so none to cancel when the result object goes


BACKEND = f"{__name__}:RecordKeepingRedisBackend"


def celery_config(settings: FarmSettings, url: str) -> dict[str, Any]:
    """Celery settings for the farm whose Redis is at `url`, as DESIGN.md's notes on Celery with Redis require."""
    redelivery = {
        "visibility_timeout": settings.visibility_timeout,  # above the longest render
        # Look for messages of dead workers every few seconds (kombu's default is ~100 s).
        "unacked_restore_interval": max(1, min(10, settings.visibility_timeout // 4)),
        "unacked_restore_throttle": 1,
        "queue_order_strategy": "priority",
        "priority_steps": list(range(10)),
        "sep": ":",
    }
    return {
        "broker_url": url,
        "result_backend": f"{BACKEND}+{settings.result_url or url}",
        "broker_transport_options": redelivery,
        "result_backend_transport_options": {"visibility_timeout": settings.visibility_timeout},
        "visibility_timeout": settings.visibility_timeout,
        "broker_connection_retry_on_startup": True,
        # JSON only: pickle is refused everywhere.
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "event_serializer": "json",
        # A task is acknowledged when it ends; a lost worker's task runs again.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # A task killed by its time limit (a call hung in Resolve) goes back on the queue; its
        # next copy finds the attempt dead and hands the piece to another node.
        "task_acks_on_failure_or_timeout": False,
        "task_retry_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "worker_concurrency": 1,
        "worker_pool": "prefork",
        "task_time_limit": settings.render_time_limit,
        "task_soft_time_limit": settings.soft_time_limit,
        "task_track_started": True,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "task_default_queue": RENDER,
        "task_default_priority": 5,
        "task_create_missing_queues": True,
        "result_expires": settings.job_retention,
        "result_extended": True,
        "task_annotations": {
            # Edits and a proxies job's scan and link read and write projects: the edit limit. A
            # transcode, like a render, may take hours: the render limit (the default).
            name: {"time_limit": settings.edit_time_limit, "soft_time_limit": settings.edit_time_limit - 5}
            for name in ("tasks.apply_edits", "tasks.scan_proxies", "tasks.link_proxies")
        },
        "include": [*WORKER_MODULES, *kinds.task_modules()],
        "worker_hijack_root_logger": False,
    }


def make_app(settings: FarmSettings, url: str) -> Celery:
    kinds.load_plugins(settings.plugins)
    app = Celery("resolve-farm", set_as_current=False)
    app.conf.update(celery_config(settings, url))
    return app


@lru_cache(maxsize=1)
def get_app() -> Celery:
    """The app for this process, from its environment's settings."""
    settings = FarmSettings()
    return make_app(settings, broker_url(settings))


def __getattr__(name: str) -> Any:
    if name in ("app", "celery"):  # what `celery -A orchestrator.app` looks for
        return get_app()
    raise AttributeError(name)
