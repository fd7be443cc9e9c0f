"""Benchmark Redis commands per job: how many commands the farm sends its Redis to run a render.

    python bench/commands.py [--write] [--only one,eight] [--top 12]

Each case starts its own local farm of simulated nodes (60 frames/s each, a 2 s start cost
per render job, the settings of `bench/pull.py`), renders Demo/Main (2,880 frames, ProRes
422 HQ with audio) once so the farm knows its nodes' speeds, then submits the measured jobs
together and polls their records until all have finished. `INFO commandstats` of the farm's
Redis is read just before the submit and once the last job is over; the difference, less
what this benchmark sent itself (its polls of the records and its INFO), divided by the
number of measured jobs, is printed in total and for the most frequent commands. Cases: one
job on four nodes; eight jobs submitted together on sixteen nodes.

Worker heartbeats and Celery's own polling send commands too, whether a job runs or not;
the idle farm's rate (commands per second over a few seconds with nothing to do, measured
just before) and each case's wall time are printed so that part can be told apart. `--write`
puts the figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis  # noqa: E402

sys.path.insert(0, str(ROOT / "bench"))

import pull  # noqa: E402  (its farm settings: the same farms as bench/pull.py)
from pull import MAIN, START  # noqa: E402

from orchestrator import jobs  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402

FPS = 60.0  # simulated render speed per node
BASE_ENV = {**pull.BASE_ENV, "RESOLVE_SIM_SPEED_PROFILE": ""}  # (an earlier farm's profile would stay in os.environ)
POLL = 0.1  # seconds between looks at the measured jobs' records
SETTLE = 2.0  # seconds after the warm-up job, for its last writes (cleanup, speeds) to land
IDLE = 5.0  # seconds of an idle farm, for its background rate
TIMEOUT = 600.0  # seconds a case's jobs may take


@dataclass
class Case:
    """One farm and the jobs measured on it."""

    name: str
    title: str
    nodes: int
    jobs: int
    figures: dict[str, Any] = field(default_factory=dict)


CASES = {
    "one": Case("one", "one job, 4 nodes", 4, 1),
    "eight": Case("eight", "8 jobs submitted together, 16 nodes", 16, 8),
}


class OwnCommands:
    """Counts the commands this process sends to Redis while `counting` (its polls and INFO), by name.

    Wraps redis-py's connections: every command goes through `send_command` (one) or `pack_commands`
    (pipelines, MULTI/EXEC included).
    """

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.on = False
        self.thread = threading.get_ident()
        cls = getattr(redis.connection, "AbstractConnection", redis.connection.Connection)
        send, pack = cls.send_command, cls.pack_commands

        def send_command(conn: Any, *args: Any, **kwargs: Any) -> Any:
            self.add([args])
            return send(conn, *args, **kwargs)

        def pack_commands(conn: Any, commands: Any) -> Any:
            commands = list(commands)
            self.add(commands)
            return pack(conn, commands)

        cls.send_command, cls.pack_commands = send_command, pack_commands

    def add(self, commands: list[Any]) -> None:
        if self.on and threading.get_ident() == self.thread:
            for args in commands:
                name = args[0].decode() if isinstance(args[0], bytes) else str(args[0])
                self.counts[name.split(" ")[0].lower()] += 1

    @contextlib.contextmanager
    def counting(self) -> Iterator[None]:
        self.on = True
        try:
            yield
        finally:
            self.on = False


OWN = OwnCommands()


def commandstats(client: redis.Redis) -> Counter[str]:
    """Calls per command since the server started (subcommands folded into their command)."""
    calls: Counter[str] = Counter()
    for key, stats in client.info("commandstats").items():
        calls[key.removeprefix("cmdstat_").split("|")[0].lower()] += int(stats["calls"])
    return calls


@contextlib.contextmanager
def local_farm(prefix: str, nodes: int) -> Iterator[tuple[Farm, redis.Redis]]:
    """A local farm of `nodes` simulated Resolve nodes and a post worker; with a client on its Redis."""
    from orchestrator.local.farm import LocalFarm
    from orchestrator.settings import FarmSettings

    home = Path(tempfile.mkdtemp(prefix=prefix))
    env = {"RESOLVE_FARM_HOME": str(home), "RESOLVE_SIM_LIBRARY": str(home / "sim" / "library.json"), **BASE_ENV}
    os.environ.update(env)
    local = LocalFarm(FarmSettings(), env=env)
    try:
        farm = local.start({f"n{i}": {"env": {"RESOLVE_SIM_FPS": str(FPS)}} for i in range(1, nodes + 1)})
        client = redis.Redis.from_url(farm.settings.broker_url, decode_responses=True)
        client.ping()  # connected before any count: the handshake is not counted as the benchmark's own
        yield farm, client
    finally:
        local.stop()
        shutil.rmtree(home, ignore_errors=True)


def run_jobs(farm: Farm, count: int, name: str) -> tuple[list[Any], int]:
    """Submit `count` renders of Demo/Main together and poll until all are over; (records, polls)."""
    ids = [jobs.submit(farm, "render", {**MAIN, "output_name": f"{name}{i}"}).id for i in range(count)]
    records: dict[str, Any] = {}
    polls = 0
    deadline = time.monotonic() + TIMEOUT
    while len(records) < count:
        for job_id in ids:
            if job_id not in records:
                with OWN.counting():
                    record = farm.store.get(job_id)
                polls += 1
                if record.finished and not any(t.state == "running" for t in record.tasks):
                    records[job_id] = record
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count - len(records)} of {count} jobs not over after {TIMEOUT:g} s")
        if len(records) < count:
            time.sleep(POLL)
    for record in records.values():
        assert record.state == "succeeded", record.errors
    return list(records.values()), polls


def measure(case: Case) -> None:
    with local_farm(f"bench-commands-{case.name}-", case.nodes) as (farm, client):
        records, _ = run_jobs(farm, 1, "learn")
        time.sleep(SETTLE)
        OWN.counts.clear()
        with OWN.counting():
            before = commandstats(client)
        time.sleep(IDLE)
        idle = commandstats(client) - before
        idle.subtract(OWN.counts)
        idle_rate = sum(idle.values()) / IDLE

        OWN.counts.clear()
        with OWN.counting():
            before = commandstats(client)
        started = time.monotonic()
        records, polls = run_jobs(farm, case.jobs, "measured")
        wall = time.monotonic() - started
        after = commandstats(client)
        own = Counter(OWN.counts)
        counted = after - before
        counted.subtract(own)
        counted = +counted  # drop what is left at zero
        case.figures = {
            "wall": wall, "total": sum(counted.values()), "per_command": counted, "idle_rate": idle_rate,
            "polls": polls, "own": sum(own.values()), "pieces": sum(len(r.tasks) for r in records),
        }  # fmt: skip


def render(chosen: list[Case], top: int) -> str:
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; Demo/Main "
        f"(2880 frames), ProRes 422 HQ with audio, simulated nodes at {FPS:g} frames/s, a {START:g} s start cost per "
        f"render job, target piece {BASE_ENV['RESOLVE_FARM_PIECE_SECONDS']} s, progress every "
        f"{BASE_ENV['RESOLVE_FARM_PROGRESS_INTERVAL']} s, heartbeats every "
        f"{BASE_ENV['RESOLVE_FARM_HEARTBEAT_INTERVAL']} s; each farm renders once first (not counted). Counted: "
        "`INFO commandstats` of the farm's Redis from just before the submit to the last job over, less the "
        "benchmark's own polls (not counted, shown apart).",
        "",
        "| case | jobs | pieces / job | wall time | commands / job | idle farm | commands / job, less the idle rate "
        "x wall time | benchmark's polls (their commands) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in chosen:
        f = c.figures
        less_idle = (f["total"] - f["idle_rate"] * f["wall"]) / c.jobs
        lines.append(f"| {c.title} | {c.jobs} | {f['pieces'] / c.jobs:.1f} | {f['wall']:.2f} s | {f['total'] / c.jobs:,.0f} "
                     f"| {f['idle_rate']:,.0f} /s | {less_idle:,.0f} | {f['polls']} ({f['own']}) |")  # fmt: skip
    names: Counter[str] = Counter()
    for c in chosen:
        names.update({k: v / c.jobs for k, v in c.figures["per_command"].items()})
    shown = [name for name, _ in names.most_common(top)]
    lines += [
        "",
        "| command, per job | " + " | ".join(c.title for c in chosen) + " |",
        "|---|" + "---|" * len(chosen),
    ]
    for name in shown:
        lines.append(
            f"| {name} | " + " | ".join(f"{c.figures['per_command'][name] / c.jobs:,.1f}" for c in chosen) + " |"
        )
    rest = [sum(v for k, v in c.figures["per_command"].items() if k not in shown) / c.jobs for c in chosen]
    lines.append("| (others) | " + " | ".join(f"{r:,.1f}" for r in rest) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--top", type=int, default=12, help="how many commands to list by count")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    chosen = [CASES[name] for name in args.only.split(",")]
    for c in chosen:
        measure(c)
        f = c.figures
        print(f"{c.name}: wall {f['wall']:.2f} s, {f['total']} commands, {dict(f['per_command'].most_common())}",
              file=sys.stderr)  # fmt: skip
    report = render(chosen, args.top)
    print(report)
    if args.write:
        from figures import write_section

        write_section("bench/commands.py", "Redis commands per job (`python bench/commands.py --write`)", report)


if __name__ == "__main__":
    main()
