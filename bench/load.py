"""Load: many jobs at once across four simulated nodes, and many MCP clients at once.

    python bench/load.py [--jobs 1000] [--items 10000] [--clients 50] [--write]

Queues `--jobs` short render jobs at once (24 frames each, one segment, no audio) on a local
farm of 4 simulated nodes and a post worker, waits for all, and checks every record is
consistent (succeeded, every piece done, one output that exists). Reports the jobs per
second the farm sustained and Redis memory per job. Then a batch edit touching `--items`
timeline items (a clip colour and a CDL on each): checks every item changed and every result
recorded, and compares the simulator's journaled change per item with the whole-library
rewrite per change it replaced (the baseline). Then `--clients` MCP client sessions at once,
each submitting jobs and polling them, and reports errors and p95 latency. Bounded in count
and time, loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# bench/mcp.py would shadow the mcp package: keep this folder last on the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))

from bridge.sim.library import get_in  # noqa: E402
from orchestrator import jobs  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402

SHORT = {
    "project": "Demo",
    "timeline": "Teaser",
    "frames": {"start": 86400, "end": 86423},
    "split": "none",
    "audio": False,
}


def many_jobs(farm: Farm, count: int) -> dict[str, Any]:
    memory_before = int(farm.redis.info("memory")["used_memory"])
    started = time.time()
    ids = [jobs.submit_render(farm, {**SHORT, "output_name": f"load_{i}"}).id for i in range(count)]
    submitted = time.time() - started
    deadline = time.monotonic() + 1800
    pending = set(ids)
    while pending:
        assert time.monotonic() < deadline, f"{len(pending)} jobs unfinished"
        for record in farm.store.list(limit=count + 100):
            if record.id in pending and record.finished:
                pending.discard(record.id)
        time.sleep(0.5)
    seconds = time.time() - started
    memory_after = int(farm.redis.info("memory")["used_memory"])
    consistent = 0
    for job_id in ids:
        record = farm.store.get(job_id)
        ok = record.state == "succeeded" and all(t.state == "done" for t in record.tasks)
        ok = ok and len(record.outputs) == 1 and Path(record.outputs[0]).is_file()
        consistent += ok
        if not ok:
            print(
                "inconsistent:",
                record.id,
                record.state,
                record.errors,
                [(t.name, t.state, t.node, t.attempts) for t in record.tasks],
                record.outputs,
                file=sys.stderr,
            )
    return {"jobs": count, "seconds": seconds, "submit_seconds": submitted, "consistent": consistent,
            "redis_bytes_per_job": (memory_after - memory_before) / count}  # fmt: skip


def many_items(farm: Farm, count: int) -> dict[str, Any]:
    from bridge.sim import SimConfig, create
    from bridge.sim.bulk import many_items_project
    from bridge.sim.library import Library

    assert many_items_project(create(SimConfig.from_env()), "Load", "Items", count) == count
    jobs.inspect(farm, "n1", timeout=60)  # publishes the new project in the node's catalog
    operations = [{"op": "set_clip_color", "color": "Teal"}, {"op": "set_cdl", "slope": [1.1, 1.0, 0.9]}]
    started = time.time()
    record = jobs.submit_edit(farm, {"targets": [{"project": "Load", "timeline": "Items"}], "operations": operations})
    record = jobs.wait(farm, record.id, timeout=1800)
    seconds = time.time() - started
    (task,) = record.tasks
    library = Library(Path(os.environ["RESOLVE_SIM_LIBRARY"]))
    project = next(p for p in library.read()["databases"]["Local Database"]["projects"].values() if p["name"] == "Load")
    items = next(t for t in project["timelines"] if t["name"] == "Items")["tracks"]["video"][0]["items"]
    changed = sum(it["color"] == "Teal" and it["cdl"].get("1", {}).get("Slope") == [1.1, 1.0, 0.9] for it in items)
    consistent = record.state == "succeeded" and len(task.results) == 2 * count and all(r["ok"] for r in task.results)
    # The baseline: every change rewrote the whole library (what `Library.update` still does).
    address = ("databases", "Local Database", "projects", project["id"], "timelines",
               next(i for i, t in enumerate(project["timelines"]) if t["name"] == "Items"), "tracks", "video", 0, "items")  # fmt: skip

    def recolor(item: dict[str, Any]) -> bool:
        item["color"] = "Navy"
        return True

    t0 = time.perf_counter()
    for n in range(200):
        library.update_at(lambda data, n=n: (*address, n), recolor)
    journaled = (time.perf_counter() - t0) / 200
    t0 = time.perf_counter()
    for n in range(10):
        library.update(lambda data, n=n: recolor(get_in(data, (*address, n))))
    rewritten = (time.perf_counter() - t0) / 10
    return {"items": count, "seconds": seconds, "changed": changed, "consistent": consistent,
            "record_bytes": int(farm.redis.memory_usage(farm.store.key(record.id)) or 0),
            "results_bytes": int(farm.redis.memory_usage(farm.store.results_key(record.id)) or 0),
            "snapshot_bytes": library.path.stat().st_size,
            "journaled_ms": journaled * 1000, "rewritten_ms": rewritten * 1000}  # fmt: skip


async def many_clients(farm: Farm, clients: int, per_client: int) -> dict[str, Any]:
    from mcp import Client

    from mcp_server.server import build_server

    latencies: list[float] = []
    errors: list[str] = []

    async def client(n: int) -> None:
        async with Client(build_server(farm)) as session:
            for i in range(per_client):
                t0 = time.perf_counter()
                result = await session.call_tool("render_timeline", {"project": "Demo", "timeline": "Teaser",
                                                                     "start_frame": 86400, "end_frame": 86405, "split": "none",
                                                                     "audio": False, "output_name": f"mcp_{n}_{i}"})  # fmt: skip
                latencies.append(time.perf_counter() - t0)
                if result.is_error:
                    errors.append(result.content[0].text)
                    continue
                job_id = result.structured_content["job_id"]
                for _ in range(3):
                    t0 = time.perf_counter()
                    polled = await session.call_tool("get_job", {"job_id": job_id})
                    latencies.append(time.perf_counter() - t0)
                    if polled.is_error:
                        errors.append(polled.content[0].text)

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    ordered = sorted(latencies)
    return {"clients": clients, "calls": len(latencies), "errors": len(errors), "seconds": time.perf_counter() - started,
            "p50_ms": statistics.median(ordered) * 1000, "p95_ms": ordered[int(0.95 * (len(ordered) - 1))] * 1000}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    from figures import local_farm

    env = {"RESOLVE_SIM_FPS": "2000", "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "10"}
    with local_farm("bench-load-", {f"n{i}": [] for i in range(1, 5)}, env) as farm:
        load = many_jobs(farm, args.jobs)
        edit = many_items(farm, args.items)
        mcp = asyncio.run(many_clients(farm, args.clients, 4))
    report = "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; 4 simulated nodes "
        "and a post worker, embedded Redis.",
        "",
        "| load | figure |",
        "|---|---|",
        f"| {load['jobs']} render jobs queued at once (submitted in {load['submit_seconds']:.1f} s) | all finished in "
        f"{load['seconds']:.1f} s: {load['jobs'] / load['seconds']:.1f} jobs/s; {load['consistent']}/{load['jobs']} records "
        "consistent (succeeded, every piece done, output on disk) |",
        f"| Redis memory per job record (+ its Celery results) | {load['redis_bytes_per_job'] / 1024:.1f} KiB |",
        f"| a batch edit touching {edit['items']} timeline items (clip colour + CDL: {2 * edit['items']} changes) | "
        f"finished in {edit['seconds']:.1f} s ({2 * edit['items'] / edit['seconds']:.0f} changes/s); {edit['changed']}/"
        f"{edit['items']} items changed in the library; record {'consistent' if edit['consistent'] else 'INCONSISTENT'} "
        f"(in Redis: the record {edit['record_bytes'] / 1024:.1f} KiB, its {2 * edit['items']} per-item results beside it "
        f"{edit['results_bytes'] / 1024 / 1024:.1f} MiB) |",
        f"| one item change in the simulator's library ({edit['snapshot_bytes'] / 1024 / 1024:.1f} MiB snapshot) | "
        f"journaled {edit['journaled_ms']:.2f} ms vs whole-library rewrite (baseline) {edit['rewritten_ms']:.1f} ms: "
        f"{edit['rewritten_ms'] / edit['journaled_ms']:.0f}x faster |",
        f"| {mcp['clients']} MCP clients at once, {mcp['calls']} calls (submit + 3 polls each, 4 jobs per client) | "
        f"{mcp['errors']} errors; p50 {mcp['p50_ms']:.1f} ms, p95 {mcp['p95_ms']:.1f} ms |",
    ])  # fmt: skip
    print(report)
    if args.write:
        from figures import write_section

        write_section("bench/load.py", "Load (`python bench/load.py --write`)", report)


if __name__ == "__main__":
    main()
