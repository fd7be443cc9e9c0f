"""Benchmark the bridge's three ways to reach Resolve, against the simulator.

    python bench/bridge.py [--write]

Per-call latency (p50/p95) of a trivial call (`ping`: GetVersionString) and of a timeline
listing, connect time, and peak RSS of a process holding the connection, for:

- native: the compiled `fusionscript` stand-in loaded in-process (tests/fixtures);
- subprocess: the long-lived fallback helper, over its pipe;
- process per call: a fresh `python -c` that imports DaVinciResolveScript for every call,
  as earlier Resolve MCP servers do.

The baseline for native is a plain Python method call: the same simulator method called
directly on the object. Goals (issue "Foundation and the Resolve bridge"): native within 2x
of that; fallback p50 <= 0.5 ms; both at least 50x faster than a process per call.
`--write` replaces the bridge section of docs/benchmarks.md with this run's figures.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

PING_CALLS = 5000
LIST_CALLS = 1000
PER_PROCESS_CALLS = 15


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_us": statistics.median(ordered) * 1e6,
        "p95_us": ordered[int(0.95 * (len(ordered) - 1))] * 1e6,
    }


def _time_calls(call: Any, count: int) -> dict[str, float]:
    for _ in range(min(200, count)):
        call()
    samples = []
    clock = time.perf_counter
    for _ in range(count):
        t0 = clock()
        call()
        samples.append(clock() - t0)
    return _percentiles(samples)


def _peak_rss_mb(pid: int | None = None) -> float:
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024  # type: ignore[union-attr]


def child(mode: str) -> None:
    """Runs in a fresh process: connect in `mode` and measure."""
    from bridge import ops
    from bridge.session import connect
    from bridge.settings import BridgeSettings

    t0 = time.perf_counter()
    session = connect(BridgeSettings.from_env(mode=mode))
    connect_s = time.perf_counter() - t0
    session.open_project("Demo")
    result: dict[str, Any] = {
        "connect_ms": connect_s * 1000,
        "ping": _time_calls(session.ping, PING_CALLS),
        "list": _time_calls(session.list_timelines, LIST_CALLS),
    }
    if mode == "native":
        resolve = session.backend.resolve  # type: ignore[attr-defined]
        result["plain_ping"] = _time_calls(resolve.GetVersionString, PING_CALLS)
        result["plain_list"] = _time_calls(lambda: ops.list_timelines(resolve), LIST_CALLS)
        result["rss_mb"] = _peak_rss_mb()
    else:
        helper = session.backend.helper  # type: ignore[attr-defined]
        result["rss_mb"] = _peak_rss_mb() + _peak_rss_mb(helper.pid)
        result["rss_note"] = "parent + helper"
    session.close()
    print(json.dumps(result))


PER_CALL_SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import DaVinciResolveScript as dvr
resolve = dvr.scriptapp("Resolve")
project = resolve.GetProjectManager().LoadProject("Demo")
{call}
"""
PER_CALL = {
    "ping": "resolve.GetVersionString()",
    "list": "[project.GetTimelineByIndex(i).GetName() for i in range(1, project.GetTimelineCount() + 1)]",
}


def process_per_call(env: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, call in PER_CALL.items():
        samples = []
        for _ in range(PER_PROCESS_CALLS):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-c", PER_CALL_SCRIPT.format(call=call)], env=env, check=True)
            samples.append(time.perf_counter() - t0)
        result[name] = _percentiles(samples)
    result["connect_ms"] = result["ping"]["p50_us"] / 1000  # every call connects anew
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def main() -> None:
    from fixtures import build

    from bridge.session import sim_script_env
    from bridge.sim import SimConfig

    work = Path(tempfile.mkdtemp(prefix="bench-bridge-"))
    lib = build.fusionscript(work)
    sim_env = {"RESOLVE_SIM_LIBRARY": str(work / "library.json")}
    env = {
        **os.environ,
        **sim_script_env(SimConfig.from_env(sim_env)),
        "RESOLVE_SCRIPT_LIB": str(lib),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "bridge/sim/scriptapi/Modules")]),
    }
    figures: dict[str, dict[str, Any]] = {}
    for mode in ("native", "subprocess"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode], env=env, check=True, capture_output=True, text=True
        )
        figures[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    figures["process per call"] = process_per_call(env)
    report = render(figures)
    print(report)
    if "--write" in sys.argv:
        write_docs(report)


def render(f: dict[str, dict[str, Any]]) -> str:
    native, sub, per = f["native"], f["subprocess"], f["process per call"]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"{PING_CALLS} pings and {LIST_CALLS} listings per path, {PER_PROCESS_CALLS} processes per call.",
        "",
        "| path | ping p50 | ping p95 | timeline list p50 | list p95 | connect | peak RSS |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(name: str, r: dict[str, Any]) -> str:
        connect = f"{r['connect_ms']:.1f} ms" if "connect_ms" in r else "-"
        rss = f"{r['rss_mb']:.0f} MB" if "rss_mb" in r else "-"
        return (
            f"| {name} | {r['ping']['p50_us']:.2f} µs | {r['ping']['p95_us']:.2f} µs | {r['list']['p50_us']:.1f} µs "
            f"| {r['list']['p95_us']:.1f} µs | {connect} | {rss} |"
        )

    plain = {"ping": native["plain_ping"], "list": native["plain_list"]}
    lines += [row("plain Python method call (baseline)", plain), row("native", native)]
    lines += [row("subprocess fallback (RSS: parent + helper)", sub), row("process per call", per)]
    ratio_native = native["ping"]["p50_us"] / native["plain_ping"]["p50_us"]
    ratio_native_list = native["list"]["p50_us"] / native["plain_list"]["p50_us"]
    lines += [
        "",
        "| ratio | figure | goal | met |",
        "|---|---|---|---|",
        f"| native ping / plain method call | {ratio_native:.2f}x | <= 2x | {'yes' if ratio_native <= 2 else 'no'} |",
        f"| native listing / plain ops call | {ratio_native_list:.2f}x | <= 2x | "
        f"{'yes' if ratio_native_list <= 2 else 'no'} |",
        f"| fallback ping p50 | {sub['ping']['p50_us'] / 1000:.3f} ms | <= 0.5 ms | "
        f"{'yes' if sub['ping']['p50_us'] <= 500 else 'no'} |",
    ]
    for name, r in (("native", native), ("fallback", sub)):
        for call in ("ping", "list"):
            speedup = per[call]["p50_us"] / r[call]["p50_us"]
            met = "yes" if speedup >= 50 else "no"
            lines.append(f"| process per call / {name} ({call}) | {speedup:,.0f}x | >= 50x | {met} |")
    return "\n".join(lines)


def write_docs(report: str) -> None:
    from figures import write_section

    write_section("bench/bridge.py", "Bridge (`python bench/bridge.py --write`)", report)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2])
    else:
        main()
