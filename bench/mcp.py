"""Benchmark the MCP path: an agent's render_timeline call, against a bare Celery apply_async.

    python bench/mcp.py [--write] [--jobs 200]
    python bench/mcp.py --tasks [--write] [--jobs 200] [--clients 50]

In one run, on a real local farm (embedded Redis, 3 simulated nodes, a post worker) and an
MCP client session held in-process: latency from the client's `render_timeline` call to its
answer, and to the job's first segment starting on a worker (p50/p95); the same for a bare
`apply_async` of a no-op task on the same Redis (to its return, and to the task starting);
and submissions per second from one client. Goals (issue "The MCP server"): the MCP path
adds <= 5 ms p50 over bare Celery; >= 200 submissions/s from one client.

With --tasks (issue 14): a `resolve-farm mcp` subprocess spoken to by the raw JSON-RPC client
of the tests. A task-augmented `render_timeline` against the plain call, interleaved on one
stdio session (goal: overhead p50 <= 2 ms); then `tasks/get` latency p50/p95 with `--clients`
clients polling at once over streamable HTTP, one thread and connection each.

With --faces (issue 27): `render_timeline` made from the render kind's face against the
hand-written tool it replaced (the code at --against, default 4189a79, checked out in a git
worktree), each a `resolve-farm mcp` subprocess on the same farm, calls alternating between
them; --rounds rounds of --jobs calls each (goal: the face tool's answer p50 within +0.5 ms). Once
on a quiet farm (the workers stop consuming, so no render competes for the cores: the precise
comparison), once on a busy one (the workers render what is submitted: the noisier everyday case).

    python bench/mcp.py --faces [--write] [--jobs 200] [--rounds 5] [--against REV]
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
# This file is named mcp.py: keep its folder off the path, or it would shadow the mcp package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
sys.path.append(str(Path(__file__).resolve().parent))  # last: for figures.py, after the real mcp
sys.path.append(str(ROOT / "tests"))  # the raw JSON-RPC client (mcp_raw.py) the tests use

from mcp import Client  # noqa: E402

from mcp_server.server import build_server  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402
from orchestrator.routing import RENDER  # noqa: E402

SPEC = {
    "project": "Demo",
    "timeline": "Teaser",
    "start_frame": 86400,
    "end_frame": 86401,
    "split": "none",
    "audio": False,
}


def pct(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered) * 1000, "p95": ordered[int(0.95 * (len(ordered) - 1))] * 1000}


def started_at(farm: Farm, job_id: str, timeout: float = 60) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = farm.store.get(job_id).tasks[0]
        if task.started_at:
            return task.started_at
        time.sleep(0.001)
    raise TimeoutError(job_id)


async def mcp_figures(farm: Farm, count: int) -> dict[str, Any]:
    answer, start = [], []
    async with Client(build_server(farm)) as client:
        for i in range(5):  # warm up
            await client.call_tool("render_timeline", {**SPEC, "output_name": f"warm_{i}"})
        await asyncio.sleep(2)
        # Latency, one job at a time, each measured until its segment starts on a node.
        for i in range(min(count, 50)):
            t0 = time.time()
            result = await client.call_tool("render_timeline", {**SPEC, "output_name": f"lat_{i}"})
            answer.append(time.time() - t0)
            assert not result.is_error, result.content
            begun = await asyncio.to_thread(started_at, farm, result.structured_content["job_id"])
            start.append(begun - t0)
        # Throughput: `count` submissions back to back from one client.
        t0 = time.perf_counter()
        burst = []
        for i in range(count):
            s0 = time.perf_counter()
            result = await client.call_tool("render_timeline", {**SPEC, "output_name": f"burst_{i}"})
            burst.append(time.perf_counter() - s0)
            assert not result.is_error
        seconds = time.perf_counter() - t0
    return {"answer": pct(answer + burst), "start": pct(start), "rate": count / seconds, "count": count}


def celery_figures(farm: Farm, count: int) -> dict[str, Any]:
    answer, start = [], []
    for _ in range(5):
        farm.app.send_task("tasks.noop", queue=RENDER)
    time.sleep(1)
    for _ in range(min(count, 50)):
        t0 = time.time()
        result = farm.app.send_task("tasks.noop", queue=RENDER)
        answer.append(time.time() - t0)
        deadline = time.monotonic() + 30
        while result.state != "SUCCESS" and time.monotonic() < deadline:
            time.sleep(0.001)
        start.append(float(result.result) - t0)
    t0 = time.perf_counter()
    for _ in range(count):
        s0 = time.perf_counter()
        farm.app.send_task("tasks.noop", queue=RENDER)
        answer.append(time.perf_counter() - s0)
    seconds = time.perf_counter() - t0
    return {"answer": pct(answer), "start": pct(start), "rate": count / seconds, "count": count}


def task_overhead(farm: Farm, count: int) -> dict[str, Any]:
    """Plain and task-augmented render_timeline, alternating on one stdio session."""
    from mcp_raw import StdioClient

    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url or ""}
    client = StdioClient([sys.executable, "-m", "orchestrator.cli", "mcp"], env)
    plain: list[float] = []
    task: list[float] = []
    ids: list[str] = []  # tasks of short renders, finished by the time they are polled
    try:
        for i in range(10):  # warm up both paths
            client.call_tool("render_timeline", {**SPEC, "output_name": f"tw_{i}"}, tasks=i % 2 == 0)
        for i in range(count):
            for declared, samples in ((False, plain), (True, task)) if i % 2 else ((True, task), (False, plain)):
                t0 = time.perf_counter()
                answer = client.call_tool("render_timeline", {**SPEC, "output_name": f"t_{i}"}, tasks=declared)
                samples.append(time.perf_counter() - t0)
                assert ("taskId" in answer["result"]) is declared, answer
                if declared:
                    ids.append(answer["result"]["taskId"])
    finally:
        client.close()
    return {"plain": pct(plain), "task": pct(task), "count": count, "ids": ids}


def task_polling(
    farm: Farm, finished: list[str], clients: int, polls: int = 20, interval: float = 0.25
) -> dict[str, Any]:
    """`clients` threads, each its own HTTP connection, polling tasks/get of running and `finished` jobs."""
    import tempfile
    import threading

    from mcp_raw import HttpClient, http_server

    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url or ""}
    samples: list[float] = []
    statuses: dict[str, int] = {}
    errors: list[str] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as folder, http_server(env, Path(folder) / "mcp.log") as url:
        submitter = HttpClient(url)
        long = {**SPEC, "timeline": "Main", "end_frame": 86400 + 1439, "split": "auto"}
        ids = [submitter.call_tool("render_timeline", {**long, "output_name": f"poll_{i}"})["result"]["taskId"]
               for i in range(10)]  # fmt: skip
        submitter.close()
        from orchestrator import jobs

        ids += finished[-10:]
        for job_id in ids:  # polled once finished: the heavier answer, and renders not competing for the cores
            jobs.wait(farm, job_id, timeout=600)
        alone = HttpClient(url)  # the baseline: one client polling a finished task, back to back
        solo = []
        for _ in range(200):
            t0 = time.perf_counter()
            assert alone.get_task(finished[-1])["result"]["status"] == "completed"
            solo.append(time.perf_counter() - t0)
        alone.close()

        def poll(n: int) -> None:
            client = HttpClient(url)
            try:
                for k in range(polls):
                    t0 = time.perf_counter()
                    answer = client.get_task(ids[(n + k) % len(ids)])
                    took = time.perf_counter() - t0
                    with lock:
                        if "result" in answer:
                            samples.append(took)
                            statuses[answer["result"]["status"]] = statuses.get(answer["result"]["status"], 0) + 1
                        else:
                            errors.append(str(answer.get("error")))
                    time.sleep(interval)  # the client's own polling pace
            finally:
                client.close()

        threads = [threading.Thread(target=poll, args=(n,)) for n in range(clients)]
        t0 = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - t0
    return {"get": pct(samples), "solo": pct(solo), "calls": len(samples), "errors": errors, "statuses": statuses, "clients": clients,
            "polls": polls, "interval": interval, "rate": len(samples) / seconds}  # fmt: skip


HAND_WRITTEN = "4189a79"  # the last commit whose render_timeline was written by hand in mcp_server/server.py


def face_overhead(farm: Farm, against: str, count: int, rounds: int, quiet: bool) -> dict[str, Any]:
    """Plain `render_timeline` on two stdio servers of one farm, alternating: this tree's, made from the face, and
    `against`'s, written by hand; per round, each one's p50 and p95, and the median of paired differences.

    `quiet`: the workers stop consuming first, so the jobs wait in their queues and no render competes for the
    cores (the answers take the same path: validate, compile, record, send)."""
    import subprocess
    import tempfile

    from mcp_raw import StdioClient

    if quiet:
        consuming = farm.app.control.inspect(timeout=5).active_queues() or {}
        for worker, queues in consuming.items():
            for queue in queues:
                farm.app.control.cancel_consumer(queue["name"], destination=[worker], reply=True)

    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url or ""}
    command = [sys.executable, "-m", "orchestrator.cli", "mcp"]
    with tempfile.TemporaryDirectory() as folder:
        tree = Path(folder) / "hand-written"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), against], check=True,
                       capture_output=True)  # fmt: skip
        servers = {
            "face": StdioClient(command, {**env, "PYTHONPATH": str(ROOT)}, tasks=False, cwd=str(ROOT)),
            "hand": StdioClient(command, {**env, "PYTHONPATH": str(tree)}, tasks=False, cwd=str(tree)),
        }
        try:
            for name, client in servers.items():  # each runs the code it should: only the face's has `drp`
                schema = next(t for t in client.request("tools/list")["result"]["tools"]
                              if t["name"] == "render_timeline")["inputSchema"]  # fmt: skip
                assert ("drp" in schema["properties"]) is (name == "face"), (name, "runs the wrong tree")
                for i in range(10):  # warm up
                    assert "result" in client.call_tool("render_timeline", {**SPEC, "output_name": f"fw_{name}_{i}"})
            figures: list[dict[str, Any]] = []
            pairs: list[float] = []
            for r in range(rounds):
                samples: dict[str, list[float]] = {"face": [], "hand": []}
                for i in range(count):
                    order = ("face", "hand") if i % 2 else ("hand", "face")
                    for name in order:
                        t0 = time.perf_counter()
                        answer = servers[name].call_tool("render_timeline", {**SPEC, "output_name": f"f{r}_{name}_{i}"})
                        samples[name].append(time.perf_counter() - t0)
                        assert not answer["result"].get("isError"), answer
                paired = [face - hand for face, hand in zip(samples["face"], samples["hand"], strict=True)]
                pairs += paired
                figures.append({**{name: pct(taken) for name, taken in samples.items()},
                                "paired": statistics.median(paired) * 1000})  # fmt: skip
        finally:
            for client in servers.values():
                client.close()
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    return {"rounds": figures, "count": count, "against": against, "pairs": pairs, "quiet": quiet}


def render_faces(runs: list[dict[str, Any]]) -> str:
    first = runs[0]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; 3 simulated nodes; "
        f"two `resolve-farm mcp` subprocesses on one farm, spoken to over stdio by the tests' raw JSON-RPC client, "
        f"calls alternating; {len(first['rounds'])} rounds of {first['count']} calls to each. The hand-written tool: "
        f"`render_timeline` at {first['against']}.",
    ]
    for faces in runs:
        lines += ["", _faces_table(faces)]
    return "\n".join(lines)


def _faces_table(faces: dict[str, Any]) -> str:
    rounds = faces["rounds"]
    added = [r["face"]["p50"] - r["hand"]["p50"] for r in rounds]
    median = statistics.median(added)
    lines = [
        "**Quiet farm** (the workers stop consuming: the jobs wait in their queues; the precise comparison)"
        if faces["quiet"]
        else "**Busy farm** (the workers render every job submitted, as a farm in use does; noisier)",
        "",
        "| round | hand-written p50 | face p50 | face over hand-written (p50s) | median of paired differences "
        "| hand-written p95 | face p95 |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, (r, a) in enumerate(zip(rounds, added, strict=True), 1):
        lines.append(f"| {n} | {r['hand']['p50']:.2f} ms | {r['face']['p50']:.2f} ms | {a:+.2f} ms | {r['paired']:+.2f} ms "
                     f"| {r['hand']['p95']:.2f} ms | {r['face']['p95']:.2f} ms |")  # fmt: skip
    lines += [
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| face answer p50 over the hand-written tool's, median of the rounds (spread {min(added):+.2f} .. "
        f"{max(added):+.2f} ms) | {median:+.2f} ms | <= +0.5 ms | {'yes' if median <= 0.5 else 'no'} |",
        f"| a face call over the hand-written call next to it, median of all pairs ({len(rounds) * faces['count']}) "
        f"| {statistics.median(faces['pairs']) * 1000:+.2f} ms | - | - |",
    ]
    return "\n".join(lines)


def render_tasks(overhead: dict[str, Any], polling: dict[str, Any]) -> str:
    added = overhead["task"]["p50"] - overhead["plain"]["p50"]
    seen = ", ".join(f"{n} {s}" for s, n in sorted(polling["statuses"].items()))
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; 3 simulated nodes; "
        "`resolve-farm mcp` as a subprocess, spoken to by the tests' raw JSON-RPC client (tests/mcp_raw.py).",
        "",
        "| call (stdio, one session, alternating) | p50 | p95 |",
        "|---|---|---|",
        f"| plain `render_timeline` ({overhead['count']} calls) | {overhead['plain']['p50']:.2f} ms "
        f"| {overhead['plain']['p95']:.2f} ms |",
        f"| task-augmented `render_timeline` ({overhead['count']} calls) | {overhead['task']['p50']:.2f} ms "
        f"| {overhead['task']['p95']:.2f} ms |",
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| task answer p50 over the plain answer | {added:+.2f} ms | <= +2 ms | {'yes' if added <= 2 else 'no'} |",
        f"| `tasks/get` with {polling['clients']} clients polling over HTTP, each {polling['polls']} times "
        f"{polling['interval'] * 1000:.0f} ms apart ({polling['calls']} calls, {polling['rate']:.0f}/s; {seen}; "
        f"{len(polling['errors'])} errors) "
        f"| p50 {polling['get']['p50']:.2f} ms, p95 {polling['get']['p95']:.2f} ms | - | - |",
        f"| `tasks/get` of a completed task, one client over HTTP (200 calls back to back; the baseline) "
        f"| p50 {polling['solo']['p50']:.2f} ms, p95 {polling['solo']['p95']:.2f} ms | - | - |",
    ])  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--tasks", action="store_true", help="the Tasks extension's figures instead")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--faces", action="store_true", help="the face-made render_timeline against the hand-written")
    parser.add_argument("--against", default=HAND_WRITTEN, help="the revision of the hand-written tool")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from figures import local_farm

    env = {"RESOLVE_SIM_FPS": "2000", "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5"}
    if args.faces:
        runs = []
        for quiet in (True, False):
            with local_farm("bench-mcp-faces-", {"sim-1": [], "sim-2": [], "sim-3": []}, env) as farm:
                runs.append(face_overhead(farm, args.against, args.jobs, args.rounds, quiet))
        report = render_faces(runs)
        print(report)
        if args.write:
            from figures import write_section

            write_section("bench/mcp.py --faces", "MCP faces (`python bench/mcp.py --faces --write`)", report)
        return
    if args.tasks:
        with local_farm("bench-mcp-tasks-", {"sim-1": [], "sim-2": [], "sim-3": []}, env) as farm:
            overhead = task_overhead(farm, args.jobs)
            report = render_tasks(overhead, task_polling(farm, overhead["ids"], args.clients))
        print(report)
        if args.write:
            from figures import write_section

            write_section("bench/mcp.py --tasks", "MCP Tasks (`python bench/mcp.py --tasks --write`)", report)
        return
    with local_farm("bench-mcp-", {"sim-1": [], "sim-2": [], "sim-3": []}, env) as farm:
        bare = celery_figures(farm, args.jobs)
        mcp = asyncio.run(mcp_figures(farm, args.jobs))
    report = render(mcp, bare)
    print(report)
    if args.write:
        write_docs(report)


def render(mcp: dict[str, Any], bare: dict[str, Any]) -> str:
    added = mcp["answer"]["p50"] - bare["answer"]["p50"]
    added_start = mcp["start"]["p50"] - bare["start"]["p50"]
    return "\n".join([
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; 3 simulated nodes; "
        f"{mcp['count']} submissions from one in-process MCP client session (latency to start: 50 jobs one at a time).",
        "",
        "| path | call -> answer p50 | p95 | call -> first segment started p50 | p95 | submissions/s |",
        "|---|---|---|---|---|---|",
        f"| bare Celery `apply_async` of a no-op (baseline) | {bare['answer']['p50']:.2f} ms | {bare['answer']['p95']:.2f} ms "
        f"| {bare['start']['p50']:.2f} ms | {bare['start']['p95']:.2f} ms | {bare['rate']:,.0f} |",
        f"| MCP `render_timeline` (validate, compile, record, send) | {mcp['answer']['p50']:.2f} ms | {mcp['answer']['p95']:.2f} ms "
        f"| {mcp['start']['p50']:.2f} ms | {mcp['start']['p95']:.2f} ms | {mcp['rate']:,.0f} |",
        "",
        "| figure | value | goal | met |",
        "|---|---|---|---|",
        f"| MCP answer p50 over bare Celery | +{added:.2f} ms | <= +5 ms | {'yes' if added <= 5 else 'no'} |",
        f"| MCP to segment start p50 over bare Celery to task start | +{added_start:.2f} ms | - | - |",
        f"| submissions per second, one client | {mcp['rate']:,.0f} | >= 200 | {'yes' if mcp['rate'] >= 200 else 'no'} |",
    ])  # fmt: skip


def write_docs(report: str) -> None:
    from figures import write_section

    write_section("bench/mcp.py", "MCP (`python bench/mcp.py --write`)", report)


if __name__ == "__main__":
    main()
