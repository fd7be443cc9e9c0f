"""`resolve-farm demo`: a local farm renders the demo timeline split across its nodes.

Starts the embedded Redis, simulated Resolve nodes and a post worker; renders `Demo`/`Main`
split across the nodes with live progress; checks the stitched file holds exactly the
timeline's frames, in order, with audio of the right length; renders it again on one node
for the speed-up; and stops the farm.

Note: reading frame numbers back uses the simulator's frame code (`bridge.sim.framecode`),
imported here only: it is a check of the demo's output, not part of the control plane.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator import jobs
from orchestrator.farm import Farm
from orchestrator.kinds.render import RenderPlan
from orchestrator.local.farm import LocalFarm
from orchestrator.settings import FarmSettings


def run_demo(nodes: int, timeline: str, compare: bool = True) -> int:
    from orchestrator.cli.views import err, follow, out

    settings = FarmSettings()
    local = LocalFarm(settings)
    try:
        names = [f"sim-{i}" for i in range(1, nodes + 1)]
        farm = local.start({name: {"bridge": "sim"} for name in names}, timeout=60)
        err.print(f"farm up: {', '.join(names)} + post (Redis {farm.url.split('@')[-1]}, home {settings.home})")
        # The demo's own files, rendered again on every run of it: replaced, as asked.
        spec: dict[str, Any] = {"project": "Demo", "timeline": timeline, "output_name": f"Demo_{timeline}_farm",
                                "overwrite": True}  # fmt: skip
        split, split_seconds = _render(farm, spec, follow)
        pieces = [t for t in split.tasks if t.kind == "segment" and t.state == "done" and not t.params.get("copy_of")]
        used = ", ".join(sorted({str(t.node) for t in pieces})) or "none"
        err.print(f"split render: {len(pieces)} segments taken by {used} as each came free")
        if split.state != "succeeded":
            out.print(f"[red]the render {split.state}[/]: {'; '.join(split.errors)}")
            return 1
        verdict = verify(split.outputs[0], split.plan)
        out.print(f"{'verified' if verdict['exact'] else 'WRONG'}: {verdict['summary']} -> {split.outputs[0]}")
        out.print(
            f"split across {len(names)} nodes: {split_seconds:.1f}s "
            f"(stitch {split.task('stitch').details['seconds']:.2f}s)"
        )
        if compare:
            one = {**spec, "node": names[0], "split": "none", "output_name": f"Demo_{timeline}_one_node"}
            single, single_seconds = _render(farm, one, follow)
            if single.state == "succeeded":
                speedup = single_seconds / split_seconds
                out.print(f"one node: {single_seconds:.1f}s -> speed-up {speedup:.2f}x on {len(names)} nodes "
                          f"(efficiency {speedup / len(names):.2f})")  # fmt: skip
        return 0 if verdict["exact"] else 1
    finally:
        err.print("stopping the farm")
        local.stop()


def _render(farm: Farm, spec: dict[str, Any], follow: Any) -> tuple[Any, float]:
    started = time.monotonic()
    record = jobs.submit_render(farm, spec)
    final = follow(farm, record.id)
    return final, time.monotonic() - started


def verify(path: str, plan: RenderPlan | dict[str, Any]) -> dict[str, Any]:
    """Does the file hold exactly the planned frames, in order, and audio of the right length?

    `plan` is the job's plan, typed or as JSON (frames, fps and audio are what is read).
    """
    import av

    from bridge.sim import framecode

    if isinstance(plan, dict):
        first, last, fps, audio = plan["frames"]["start"], plan["frames"]["end"], plan.get("fps"), plan.get("audio")
    else:
        first, last, fps, audio = plan.frames.start, plan.frames.end, plan.fps, plan.audio
    frames = framecode.read_file(path)
    with av.open(path) as container:
        audio = container.streams.audio[0] if container.streams.audio else None
        seconds = float(audio.duration * audio.time_base) if audio is not None and audio.duration else 0.0
    want = (last - first + 1) / float(fps or 24)
    exact = frames == list(range(first, last + 1)) and (not audio or abs(seconds - want) < 0.1)
    if exact:
        summary = f"{len(frames)} frames {first}..{last} in order, none missing or doubled; audio {seconds:.2f}s"
    else:
        summary = f"{len(frames)} frames read, audio {seconds:.2f}s; expected {first}..{last} and {want:.2f}s"
    return {"exact": exact, "summary": summary}
