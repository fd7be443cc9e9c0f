"""Benchmark first renders: a timeline the farm has not rendered, on farms that vary, costs it is not told.

    python bench/first.py [--runs 3] [--write] [--only known,version,...]

Every row starts its own local farm of simulated nodes (speeds scaled to a fifth, so that the
ideal is over 30 s and a 2 s start cost per render weighs as on a farm whose pieces run
minutes; the farm is not told the start cost), lets it learn its nodes on other timelines of
the same codec and size, then renders a timeline it has never rendered, measured. The ideal
counts one start, the work (each frame weighed by what the simulator made it cost) at the
speeds the nodes actually delivered, the audio pass (its node's time at that node's speed),
and the stitch; the ratio is ideal / wall time. The same timeline rendered once more gives
the best case (a repeat render), reported apart. Goals from issue 23. `--write` puts the
figures in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from figures import publish, wait_all  # noqa: E402

from bridge.sim.cost import CostModel, RenderCost  # noqa: E402
from bridge.sim.library import Library  # noqa: E402
from orchestrator import jobs  # noqa: E402
from orchestrator.farm import Farm  # noqa: E402
from orchestrator.models import JobRecord  # noqa: E402

START = 2.0  # seconds each render job takes to start on the simulator (the farm learns it)
SCALE = 0.2  # nominal speeds times this
HEAVY = "A002_C002.mov:4,A005_C005.mov:4,A007_C007.mov:4"  # clips spread through Main recut
BASE_ENV = {
    "RESOLVE_SIM_RENDER_START": str(START),
    "RESOLVE_FARM_PIECE_SECONDS": "4",
    "RESOLVE_FARM_HEARTBEAT_INTERVAL": "1",
    "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "5",
    "RESOLVE_FARM_PROGRESS_INTERVAL": "0.25",
    "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24",
    "RESOLVE_SIM_CLIP_COSTS": "",
    "RESOLVE_SIM_POSITION_NOISE": "",
    "RESOLVE_SIM_JITTER": "",
}
MIXED = [30.0, 60.0, 120.0, 240.0]


@dataclass
class Row:
    """One farm, what it learns on, and the timeline it renders first."""

    name: str
    title: str
    speeds: list[float]
    goal: float | None  # None: reported
    learn: list[str] = field(default_factory=lambda: ["Main"])
    measure: str = "Main recut"
    env: dict[str, str] = field(default_factory=dict)
    slow_down: bool = False  # the fastest node renders 2x slower from half of the job's frames on
    best_case: bool = False  # render it once more: a repeat render
    share: bool = False  # two jobs of one priority submitted together
    runs: list[dict[str, Any]] = field(default_factory=list)


ROWS = {
    "known": Row("known", "mixed, knows its nodes, a new timeline of known clips (Main, learnt on Main recut)",
                 MIXED, 0.90, learn=["Main recut"], measure="Main", best_case=True),
    "version": Row("version", "mixed, knows its nodes, a new version of a rendered timeline (Main recut after Main)",
                   MIXED, 0.92),
    "heavy": Row("heavy", "mixed, knows its nodes, heavy clips (4x) spread through the new version",
                 MIXED, 0.85, env={"RESOLVE_SIM_CLIP_COSTS": HEAVY}),
    "unseen": Row("unseen", "mixed, knows its nodes, new version, unseen position noise +-30 %", MIXED, None,
                  env={"RESOLVE_SIM_POSITION_NOISE": "0.3"}),
    "jitter": Row("jitter", "mixed, knows its nodes, new version, speeds jittered +-20 %, fastest slows 2x at half",
                  MIXED, 0.82, env={"RESOLVE_SIM_JITTER": "0.2"}, slow_down=True),
    "fresh": Row("fresh", "mixed, a fresh farm (no speeds, no costs, start cost unknown), Main recut",
                 MIXED, 0.80, learn=[]),
    "equal4": Row("equal4", "four equal nodes (60), knows its nodes, new version", [60.0] * 4, 0.95,
                  best_case=True, share=True),
    "equal16": Row("equal16", "sixteen equal nodes (60), knows its nodes, new version (2 cores: CPU-bound)",
                   [60.0] * 16, None),
}  # fmt: skip


def frame_costs(farm_home: Path, timeline: str, env: dict[str, str]) -> dict[int, float]:
    """What each frame of `timeline` costs on the simulator beyond its node's speed (content and position noise:
    the jitter and slow-downs are in the speeds the nodes delivered)."""
    library = Library(farm_home / "sim" / "library.json").read()
    project = next(p for db in library["databases"].values() for p in db["projects"].values() if p["name"] == "Demo")
    found = next(t for t in project["timelines"] if t["name"] == timeline)
    model = CostModel.from_env({**env, "RESOLVE_SIM_JITTER": "", "RESOLVE_SIM_THROTTLE": ""})
    cost = RenderCost.of(model, found, project["clips"], host="", render="")
    start = int(found["start_frame"])
    return {f: cost.frame(f, 0) for f in range(start, start + int(found["frames"]))}


def pieces(record: JobRecord[Any, Any], since: float) -> None:
    """Each piece's node, range and times (seconds since `since`), on stderr: where the time went."""
    for t in sorted(record.tasks, key=lambda t: t.started_at or 0):
        if t.state != "skipped":
            print(f"    {t.name:12} {t.node or '-':4} {t.state:9} {t.start}..{t.end} {t.frames_total:5} frames "
                  f"{(t.started_at or since) - since:6.1f}..{(t.finished_at or since) - since:6.1f} s "
                  f"fps {t.details.get('fps', '-')} sized by {t.details.get('sized_by', '-')} spread {t.details.get('spread', '-')}", file=sys.stderr)  # fmt: skip


def delivered(record: JobRecord[Any, Any], costs: dict[int, float]) -> dict[str, float]:
    """Each node's speed as it rendered this job: the work of its pieces over their render seconds."""
    per_node: dict[str, list[float]] = {}
    for t in record.tasks:
        if t.kind == "segment" and t.state == "done" and t.start is not None:
            entry = per_node.setdefault(str(t.node), [0.0, 0.0])
            entry[0] += sum(costs[f] for f in range(t.start, (t.end or 0) + 1))
            entry[1] += max(float(t.details["seconds"]) - float(t.details.get("start_seconds") or 0.0), 1e-3)
    return {node: w / s for node, (w, s) in per_node.items()}


def work(record: JobRecord[Any, Any], costs: dict[int, float], speeds: dict[str, float]) -> float:
    """The job's work: its frames weighed by their cost, and its audio pass as the work its node could have
    rendered meanwhile."""
    total = sum(costs[f] for f in range(record.plan.frames.start, record.plan.frames.end + 1))
    audio = next((t for t in record.tasks if t.kind == "audio" and t.state == "done"), None)
    if audio is not None:
        speed = speeds.get(str(audio.node), statistics.median(speeds.values()))
        total += ((audio.finished_at or 0.0) - (audio.started_at or 0.0)) * speed
    return total


def stitch_seconds(record: JobRecord[Any, Any]) -> float:
    return float(record.task("stitch").details.get("seconds") or 0.0)


def ideal(record: JobRecord[Any, Any], costs: dict[int, float]) -> float:
    """One start, the work at the speeds the nodes delivered, and the stitch."""
    speeds = delivered(record, costs)
    return START + work(record, costs, speeds) / sum(speeds.values()) + stitch_seconds(record)


def render(
    farm: Farm, timeline: str, name: str, slow: Path | None, watch_eta: bool
) -> tuple[JobRecord[Any, Any], float, float | None]:
    """Render `timeline` and wait; (record, wall seconds, ETA error at 20 % of the frames, or once a slow-down
    has been seen). `slow`: the throttle file of the node that slows down 2x at half of the frames."""
    from figures import run_render

    eta: dict[str, float] = {}
    slowed: list[float] = []

    def watch(record: JobRecord[Any, Any], started: float) -> None:
        if slow is not None and not slowed and record.progress >= 50:
            slow.write_text("2")
            slowed.append(time.time())
        ready = record.progress >= 20 if slow is None else bool(slowed) and time.time() > slowed[0] + 3
        if watch_eta and "at" not in eta and ready and record.eta_seconds:
            eta.update(at=time.time(), eta=record.eta_seconds)

    record, _, wall = run_render(farm, {"project": "Demo", "timeline": timeline, "output_name": name}, watch)
    if slow is not None:
        slow.unlink(missing_ok=True)
    finished = record.finished_at or time.time()
    error = abs(eta["at"] + eta["eta"] - finished) / (finished - eta["at"]) if eta else None
    return record, wall, error


def measure(row: Row, seed: int) -> dict[str, Any]:
    from figures import local_farm

    env = {**BASE_ENV, **row.env, "RESOLVE_SIM_SEED": str(seed)}
    throttle = Path(tempfile.mkdtemp(prefix="bench-first-")) / "slow"
    fastest = max(range(len(row.speeds)), key=lambda i: row.speeds[i])
    nodes: dict[str, Any] = {
        f"n{i}": {"env": {"RESOLVE_SIM_FPS": str(fps * SCALE),
                          **({"RESOLVE_SIM_THROTTLE": str(throttle)} if i - 1 == fastest and row.slow_down else {})}}
        for i, fps in enumerate(row.speeds, 1)
    }  # fmt: skip
    figures: dict[str, Any] = {}
    with local_farm(f"bench-first-{row.name}-", nodes, env) as farm:
        home = Path(os.environ["RESOLVE_FARM_HOME"])
        for i, timeline in enumerate(row.learn):
            learnt, _, _ = render(farm, timeline, f"learn{i}", None, False)
            assert learnt.state == "succeeded", learnt.errors
            if learnt.plan.speed_key:  # what the farm has learnt of its nodes' unsteadiness (the reserve's cue)
                spreads = farm.speeds.spreads(nodes, learnt.plan.speed_key)
                print(f"  {row.name} seed {seed}: spreads after {timeline}: {spreads}", file=sys.stderr)
        record, wall, eta_error = render(farm, row.measure, "first", throttle if row.slow_down else None, True)
        assert record.state == "succeeded", record.errors
        pieces(record, record.created_at)
        costs = frame_costs(home, row.measure, env)
        best = ideal(record, costs)
        figures.update(wall=wall, ideal=best, ratio=best / wall, eta_error=eta_error,
                       pieces=sum(1 for t in record.tasks if t.kind == "segment" and t.state == "done"))  # fmt: skip
        print(f"  {row.name} seed {seed}: first render {wall:.1f} s, ideal {best:.1f} s, ratio {best / wall:.3f}, "
              f"ETA error {eta_error}", file=sys.stderr)  # fmt: skip
        if row.best_case:
            again, wall2, _ = render(farm, row.measure, "again", None, False)
            assert again.state == "succeeded", again.errors
            figures["repeat"] = ideal(again, costs) / wall2
        if row.share:
            figures["share"] = share(farm, costs)
    return figures


def share(farm: Farm, costs: dict[int, float]) -> dict[str, Any]:
    """Two jobs of one priority submitted together: each one's node-seconds, and its wall time over its fair-share
    ideal (its start, its work and audio pass at half the delivered speed, its stitch)."""
    started = time.time()
    ids = [jobs.submit_render(farm, {"project": "Demo", "timeline": "Main recut", "output_name": f"share{i}"}).id
           for i in (1, 2)]  # fmt: skip
    done = wait_all(farm, ids, started)
    records = [farm.store.get(j) for j in ids]
    node_seconds = [sum((t.finished_at or 0) - (t.started_at or 0) for t in r.tasks
                        if t.kind in ("segment", "audio") and t.started_at and t.finished_at) for r in records]  # fmt: skip
    merged: dict[str, float] = {}
    for r in records:  # the farm's delivered speeds, from both jobs
        merged |= delivered(r, costs)
    fair = [START + work(r, costs, merged) / (sum(merged.values()) / 2) + stitch_seconds(r) for r in records]
    return {"node_seconds": node_seconds, "walls": [done[j] for j in ids],
            "over_fair": [done[j] / f for j, f in zip(ids, fair, strict=True)]}  # fmt: skip


def spread(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def report(rows: list[Row]) -> str:
    runs = max(len(r.runs) for r in rows)
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; ProRes 422 HQ "
        f"with audio; node speeds scaled to {SCALE:g} of the named ones; a {START:g} s start cost per render job "
        f"that the farm is not told; target piece {BASE_ENV['RESOLVE_FARM_PIECE_SECONDS']} s; {runs} runs per row "
        "(seeds 1..n): median (min-max).",
        "",
        "First renders of a timeline (the case users live in):",
        "",
        "| farm | ideal | wall time | ratio (ideal / wall) | goal | met | ETA error |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratios = [x["ratio"] for x in r.runs]
        etas = [x["eta_error"] * 100 for x in r.runs if x.get("eta_error") is not None]
        goal = f">= {r.goal:.2f}" if r.goal else "report"
        met = (
            "-"
            if r.goal is None
            else "yes"
            if min(ratios) >= r.goal
            else "median"
            if statistics.median(ratios) >= r.goal
            else "no"
        )
        lines.append(f"| {r.title} | {spread([x['ideal'] for x in r.runs])} s | {spread([x['wall'] for x in r.runs])} s "
                     f"| {spread(ratios)} | {goal} | {met} | {spread(etas) + ' %' if etas else '-'} |")  # fmt: skip
    best = [r for r in rows if r.best_case]
    if best:
        lines += ["", "Best case, labelled as one: the same timeline rendered again at once (a repeat render):", "",
                  "| farm | ratio |", "|---|---|"]  # fmt: skip
        lines += [f"| {r.title} | {spread([x['repeat'] for x in r.runs])} |" for r in best]
    for r in rows:
        if r.share:
            ns = [abs(a - b) / max(a, b) for x in r.runs for a, b in [x["share"]["node_seconds"]]]
            over = [max(x["share"]["over_fair"]) for x in r.runs]
            lines += ["", f"Two jobs of one priority submitted together on {r.title.split(',')[0]}: node-seconds "
                          f"apart by {spread([v * 100 for v in ns])} % (goal <= 15 %), the slower job's wall time "
                          f"over its fair-share ideal {spread(over)}x (goal <= 1.15x)."]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default=",".join(ROWS), help="comma-separated: " + ", ".join(ROWS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    rows = [ROWS[name] for name in args.only.split(",")]
    for row in rows:
        for seed in range(1, args.runs + 1):
            row.runs.append(measure(row, seed))
    publish("bench/first.py", "First renders (`python bench/first.py --write`)", report(rows), args.write)


if __name__ == "__main__":
    main()
