"""A worker's life: announce itself, heartbeat, publish its catalog, sweep (post workers), say goodbye.

The heartbeat runs in a thread of the worker's main process, so a node stays "up" while
its single pool process is busy with an hour-long render. A second thread pings the host's
Resolve through a helper process (`bridge.probe`), so a Resolve that stopped answering shows
the node unhealthy within one heartbeat timeout, and healthy again once it answers. A mark
left by a piece (a call hung) is cleared by the `tasks.heartbeat` task, sent to the node's
own queue: it proves that a pool process reaches Resolve again. Post workers also run the
janitor from the heartbeat thread: lost pieces sent again, due cleanups asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown, worker_shutting_down

from bridge import BridgeError
from bridge.probe import ProbeUnavailable, ResolveProbe
from bridge.settings import BridgeSettings
from orchestrator import janitor, routing
from orchestrator.nodes import NOT_ANSWERING
from tasks.runtime import runtime

log = logging.getLogger(__name__)
_stop = threading.Event()
JANITOR_INTERVAL = 5.0  # seconds between sweeps for lost pieces, on post workers
STOPPING_MARK = 600  # seconds a stopping node's mark lives (a worker clears it when it starts)


def build_catalog() -> tuple[dict[str, Any], dict[str, Any] | None]:
    """This host's projects, timelines and render options, read through the bridge."""
    session = runtime.session()
    listing = session.list_projects()
    database = listing["database"].get("DbName", "")
    projects: dict[str, Any] = {}
    bins: dict[str, list[str]] = {}
    render: dict[str, Any] = {}
    for name in listing["projects"]:
        opened = session.open_project(name)
        projects[name] = {t["name"]: t for t in opened["timelines"]}
        bins[name] = session.list_bins()
        if not render:
            render = session.render_options()
    session.close_project()  # in a shared library, the host that opened it last would hold it
    return {"databases": {database: projects}, "bins": {database: bins}, "render": render}, session.describe()


@worker_ready.connect
def _announce(sender: Any = None, **_: Any) -> None:
    farm = runtime.farm()
    resolve = None
    if "resolve" in runtime.settings.roles:
        try:
            catalog, resolve = build_catalog()
            farm.catalog.publish(runtime.node, catalog)
        except BridgeError as exc:
            # The node joins as unhealthy: the registry shows why, and it gets no work it cannot do.
            log.error("node %s cannot reach Resolve: %s", runtime.node, exc)
            resolve = {"error": str(exc)}
        finally:
            runtime.drop_session()  # the pool processes connect on their own
    farm.nodes.announce(runtime.identity(runtime.settings.roles, resolve))
    farm.nodes.clear_stopping(runtime.node)  # a mark left by this node's last stop
    _stop.clear()
    threading.Thread(target=_beat, name="resolve-farm-heartbeat", daemon=True).start()
    if "resolve" in runtime.settings.roles:
        threading.Thread(target=_watch_resolve, name="resolve-farm-probe", daemon=True).start()
    log.info("node %s joined the farm", runtime.node)


def _beat() -> None:
    checked = swept = 0.0
    while not _stop.wait(runtime.settings.heartbeat_interval):
        try:
            farm = runtime.farm()
            farm.nodes.heartbeat(runtime.node)
            if "post" in runtime.settings.roles and time.monotonic() - swept > JANITOR_INTERVAL:
                swept = time.monotonic()
                janitor.sweep(farm)
                janitor.ask_for_cleanups(farm)
            me = next((n for n in farm.nodes.all() if n.name == runtime.node), None)
            now = time.monotonic()
            marked = me.unhealthy if me is not None else None
            probed = marked is not None and marked.startswith(NOT_ANSWERING)  # the probe clears its own
            if marked and not probed and now - checked > 3 * runtime.settings.heartbeat_interval:
                # Marked unhealthy (a call hung or crashed): let a pool process check Resolve.
                checked = now
                farm.app.send_task("tasks.heartbeat", queue=routing.node_queue(runtime.node), priority=0)
        except Exception as exc:  # Redis away for a moment: keep beating, it will come back
            log.warning("heartbeat of %s failed: %s", runtime.node, exc)


def _watch_resolve() -> None:
    """Ping Resolve every heartbeat interval; mark the node while it does not answer."""
    settings = runtime.settings
    # A frozen Resolve shows within one heartbeat timeout: an interval's wait, then the ping's.
    probe = ResolveProbe(
        BridgeSettings.from_env(mode=settings.bridge), settings.heartbeat_timeout - settings.heartbeat_interval
    )
    try:
        while not _stop.wait(settings.heartbeat_interval):
            problem = None
            try:
                resolve = {**probe.check(), "mode": settings.bridge}
            except ProbeUnavailable as exc:
                log.warning("%s; pool processes check Resolve on %s instead", exc, runtime.node)
                return
            except BridgeError as exc:
                resolve, problem = {"error": str(exc)}, f"{NOT_ANSWERING}: {exc.message}"
            try:
                if runtime.farm().nodes.resolve_answered(runtime.node, resolve, problem):
                    log.warning("node %s: %s", runtime.node, problem or "Resolve answers again")
            except Exception as exc:  # Redis away for a moment: the next ping records it
                log.warning("recording the ping of %s failed: %s", runtime.node, exc)
    finally:
        probe.close()


@worker_shutting_down.connect
def _give_back(sender: Any = None, **_: Any) -> None:
    """A stop began (a service stop, Ctrl-C: Celery's warm shutdown): mark the node stopping, so the piece it
    runs stops its render at its next progress report and goes back to the queue for another node, instead of
    the stop waiting hours for it. Sent in the worker's main process, whatever the pool."""
    try:
        runtime.farm().nodes.mark_stopping(runtime.node, STOPPING_MARK)
    except Exception as exc:  # without Redis the piece cannot be given back: the stop waits for it
        log.warning("could not mark %s stopping: %s", runtime.node, exc)


@worker_shutdown.connect
def _goodbye(sender: Any = None, **_: Any) -> None:
    _stop.set()
    try:
        runtime.farm().nodes.mark_down(runtime.node)
    except Exception as exc:  # shutting down without Redis: the timeout will mark us down
        log.warning("could not mark %s down: %s", runtime.node, exc)


@shared_task(name="tasks.heartbeat", acks_late=True)
def heartbeat() -> dict[str, Any]:
    """Check this node's Resolve answers, and record what it said (a node without Resolve: that a pool process runs)."""
    if "resolve" not in runtime.settings.roles:  # a transcode-only node: its pool answering is the proof
        runtime.farm().nodes.heartbeat(runtime.node, unhealthy=None)
        return {"roles": list(runtime.settings.roles)}
    try:
        resolve: dict[str, Any] = runtime.session().describe()
    except BridgeError as exc:
        runtime.drop_session()
        runtime.farm().nodes.heartbeat(runtime.node, resolve={"error": str(exc)})
        return {"error": str(exc)}
    runtime.farm().nodes.heartbeat(runtime.node, resolve=resolve, unhealthy=None)  # a good heartbeat
    return resolve


@shared_task(name="tasks.inspect_resolve", acks_late=True)
def inspect_resolve() -> dict[str, Any]:
    """What this node's Resolve holds, read now (and published as its catalog)."""
    catalog, resolve = build_catalog()
    runtime.farm().catalog.publish(runtime.node, catalog)
    return {"node": runtime.node, "resolve": resolve, "catalog": catalog}


@shared_task(name="tasks.noop", acks_late=True)
def noop() -> float:
    """Nothing, at once: the baseline the benchmarks compare the farm's own overhead with."""
    return time.time()
