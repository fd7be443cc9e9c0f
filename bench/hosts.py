"""The farm's scaling across hosts: the same render on 1, 2 and 4 namespaced hosts.

    sudo python bench/hosts.py [--write] [--fps 60]

Each Resolve host is its own network namespace with its own address, joined to Redis (in
another namespace) by veth links; the post worker and the submitting client sit in two
more. Same timeline and speed as bench/farm.py, so the two tables compare single-host
processes with hosts. Times are the job record's (submitted -> finished). Needs root.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from netns_farm import NetnsFarm, available  # noqa: E402

TAGS = {"n1": ["g1", "g2", "g4"], "n2": ["g2", "g4"], "n3": ["g4"], "n4": ["g4"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fps", type=float, default=60.0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    why_not = available()
    if why_not:
        sys.exit(f"bench/hosts.py {why_not}")
    home = Path(tempfile.mkdtemp(prefix="bench-hosts-"))
    env = {"RESOLVE_SIM_LIBRARY": str(home / "library.json"), "RESOLVE_FARM_STORAGE_ROOTS": str(home / "storage"),
           "RESOLVE_SIM_FPS": str(args.fps), "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5"}  # fmt: skip
    farm = NetnsFarm(home, list(TAGS), env, tags=TAGS)
    results: dict[int, dict[str, Any]] = {}
    try:
        farm.start()
        for nodes in (1, 2, 4):
            record = farm.cli_json("render", "Demo", "Main", "--tag", f"g{nodes}", "--name", f"hosts_{nodes}", "--wait")
            assert record["state"] == "succeeded", record["errors"]
            results[nodes] = {"wall": record["finished_at"] - record["created_at"], "segments": record["plan"]["segments"],
                              "hosts": len({t["node"] for t in record["tasks"] if t["kind"] != "stitch"})}  # fmt: skip
    finally:
        farm.stop()
        shutil.rmtree(home, ignore_errors=True)
    report = render(results, args.fps)
    print(report)
    if args.write:
        write_docs(report)


def render(results: dict[int, dict[str, Any]], fps: float) -> str:
    base = results[1]["wall"]
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; hosts are network namespaces on it, joined by veth links "
        f"to Redis in another; Demo/Main (2880 frames), simulator at {fps:g} frames/s per host, ProRes 422 HQ with audio.",
        "",
        "| hosts | segments | hosts used | submitted -> finished | speed-up | efficiency |",
        "|---|---|---|---|---|---|",
    ]
    for nodes, r in results.items():
        speedup = base / r["wall"]
        lines.append(
            f"| {nodes} | {r['segments']} | {r['hosts']} | {r['wall']:.2f} s | {speedup:.2f}x | {speedup / nodes:.2f} |"
        )
    return "\n".join(lines)


def write_docs(report: str) -> None:
    from figures import write_section

    write_section("bench/hosts.py", "Across hosts (`sudo python bench/hosts.py --write`)", report)


if __name__ == "__main__":
    main()
