"""Pulled renders on a real farm: free nodes take the next frames, sized by their speed.

Behaviour, not times: frame-exact outputs from a farm of mixed speeds with every frame
rendered once, speeds remembered for the next job, two jobs of one priority sharing the
nodes, an urgent job taking the next free node, and a node killed while it holds a piece.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import pytest
from farm_helpers import run, running_farm, wait_until

from bridge import sim
from orchestrator import jobs
from orchestrator.local.demo import verify
from orchestrator.models import JobRecord
from orchestrator.pull.costs import BIN
from orchestrator.pull.looks import visible

PULLED = {"RESOLVE_FARM_PIECE_SECONDS": "0.5", "RESOLVE_SIM_RENDER_START": "0.1"}


def frames_taken(record: JobRecord) -> list[int]:
    return sorted(f for t in record.tasks if t.kind == "segment" and t.state == "done"
                  for f in range(t.start or 0, (t.end or 0) + 1))  # fmt: skip


def test_a_mixed_farm_renders_every_frame_once_remembers_speeds_and_copies_the_tail(tmp_path) -> None:
    """A slow node and a fast one, speeds unknown: their first pieces are the same size, far too long for the
    slow one; the fast one takes the rest, then a copy of the slow piece; the first copy to finish is kept, the
    other stops. The file is exact, no frame doubled or missing, and both speeds are remembered."""
    nodes = {"slow": {"env": {"RESOLVE_SIM_FPS": "5"}}, "fast": {"env": {"RESOLVE_SIM_FPS": "480"}}}
    with running_farm(tmp_path, nodes, RESOLVE_FARM_RENDER_START_SECONDS="0.5", **PULLED) as (_local, farm):
        spec = {"project": "Demo", "timeline": "Main", "frames": {"start": 86400, "end": 87359}, "audio": False,
                "output_name": "tail"}  # no audio pass: each node's first piece is video  # fmt: skip
        submitted = jobs.submit_render(farm, spec)
        assert submitted.schedule is not None and not submitted.schedule.start_measured  # the setting's 0.5 s
        record = jobs.wait(farm, submitted.id, timeout=180)
        assert record.state == "succeeded", record.errors
        assert record.schedule is not None and record.schedule.start_measured  # the first report replaced it
        assert record.plan.pulled
        assert verify(record.outputs[0], record.plan)["exact"]  # joined in frame order, whatever order pieces came in
        segments = [t for t in record.tasks if t.kind == "segment" and t.state == "done" and not t.params]
        assert len(segments) > 2 and {t.node for t in segments} == {"slow", "fast"}  # several rounds, both nodes
        assert all(t.details["fps"] > 0 for t in segments)
        assert set(farm.speeds.speeds(["slow", "fast"], record.plan.speed_key)) == {"slow", "fast"}
        assert set(farm.speeds.spreads(["slow", "fast"], record.plan.speed_key)) == {"slow", "fast"}  # and how unsteady
        joined = [record.task(n) for n in record.task("stitch").after if record.task(n).kind == "segment"]
        assert sorted(f for t in joined for f in range(t.start or 0, (t.end or 0) + 1)) == list(
            range(record.plan.frames.start, record.plan.frames.end + 1)
        )  # what the stitch joined: every frame exactly once
        copies = [t for t in record.tasks if t.params.get("copy_of")]
        assert len(copies) == 1, [(t.name, t.params, t.state) for t in record.tasks]
        (copy,) = copies
        original = record.task(copy.params["copy_of"])
        assert (
            original.node == "slow" and copy.node == "fast" and (copy.start, copy.end) == (original.start, original.end)
        )
        assert original.state == "done" and copy.state in ("done", "cancelled") and copy.name not in joined
        if copy.state == "done":  # the copy won: the original's record holds its file
            assert original.output == copy.output and original.details["rendered_by"].startswith(copy.name)


@pytest.mark.parametrize("winner", ["copy", "original"])
def test_a_tail_copy_and_its_original_the_first_done_counts(tmp_path, winner: str) -> None:
    """The simulator decides who wins, once the copy exists: the original's frames cost 1000x (its throttle), or
    the copy's host freezes until the stitch is done (the copy cannot finish meanwhile, however fast). The
    winner's file is the one the record keeps and the stitch joins; the loser is stopped and leaves no file."""
    throttle = tmp_path / "slow.throttle"
    # (any freeze-on quirk lets the test freeze the host itself: `sim.HostState.freeze`)
    nodes = {"slow": {"env": {"RESOLVE_SIM_FPS": "5", "RESOLVE_SIM_THROTTLE": str(throttle)}},
             "fast": {"env": {"RESOLVE_SIM_FPS": "480", "RESOLVE_SIM_QUIRKS": "freeze-on:ProjectManager.DeleteProject"}}}  # fmt: skip
    with running_farm(tmp_path, nodes, RESOLVE_FARM_RENDER_START_SECONDS="0.5", **PULLED) as (_local, farm):
        fast = sim.HostState(tmp_path / "sim" / "library.json", "fast")
        spec = {"project": "Demo", "timeline": "Main", "frames": {"start": 86400, "end": 87359}, "audio": False,
                "output_name": f"won_by_{winner}"}  # fmt: skip
        submitted = jobs.submit_render(farm, spec)

        def copy_made() -> bool:
            return any(t.params.get("copy_of") for t in farm.store.get(submitted.id).tasks)

        try:
            wait_until(copy_made, 120, "no tail copy was made")
            if winner == "copy":
                throttle.write_text("1000")
            else:  # frozen until the stitch is done: the copy settles (and succeeds the job) after it
                fast.freeze()
                wait_until(lambda: farm.store.get(submitted.id).task("stitch").state == "done", 120, "no stitch")
        finally:
            fast.thaw()
        record = jobs.wait(farm, submitted.id, timeout=180)
        work = Path(record.plan.work_dir)  # cleared by whoever settles last, the loser's file too
        wait_until(lambda: not work.exists() or not [p for p in work.rglob("*") if p.is_file()], 30,
                   f"files left in {work}")  # fmt: skip
    assert record.state == "succeeded", record.errors
    assert verify(record.outputs[0], record.plan)["exact"]
    (copy,) = [t for t in record.tasks if t.params.get("copy_of")]
    original_piece = record.task(copy.params["copy_of"])
    assert original_piece.node == "slow" and copy.node == "fast" and original_piece.state == "done"
    joined = record.task("stitch").after
    assert original_piece.name in joined and copy.name not in joined  # the range's one entry: the original's
    if winner == "copy":
        assert copy.state == "done" and original_piece.details["rendered_by"].startswith(copy.name)
        assert original_piece.output == copy.output  # the file the copy made
    else:
        assert copy.state == "cancelled" and "rendered_by" not in original_piece.details
        assert original_piece.output and original_piece.output != copy.output  # its own file, not the copy's


TRIO = {"n1": {}, "n2": {}, "n3": {}}


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory):
    # Told the start cost: sized for a 5 s start, a job's second piece takes all its frames on one node.
    with running_farm(tmp_path_factory.mktemp("pulled"), TRIO, RESOLVE_SIM_FPS="240",
                      RESOLVE_FARM_RENDER_START_SECONDS="0.1", **PULLED) as f:  # fmt: skip
        yield f


def test_two_jobs_of_one_priority_share_the_nodes(trio) -> None:
    """Three nodes, two jobs submitted together: by the time either has rendered all its frames, both have had
    about as many node-seconds (`JobRecord.node_seconds`, what users see of fair share), and their pieces
    interleave.

    Note: with pieces this short the queue's own order interleaves the jobs too; which job the node
    over goes to is proven on its rule (`test_pulled.py`, the node over an even share)."""
    _local, farm = trio
    first = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "audio": False, "output_name": "one"})
    second = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "audio": False, "output_name": "two"})
    a, b = jobs.wait(farm, first.id, timeout=180), jobs.wait(farm, second.id, timeout=180)
    assert a.state == b.state == "succeeded", (a.errors, b.errors)
    assert verify(a.outputs[0], a.plan)["exact"] and verify(b.outputs[0], b.plan)["exact"]
    a_starts = sorted(t.started_at or 0 for t in a.tasks if t.kind == "segment" and t.state == "done")
    b_starts = sorted(t.started_at or 0 for t in b.tasks if t.kind == "segment" and t.state == "done")
    # Interleaved: the second job started before the first had taken its last piece, and so on.
    assert b_starts[0] < a_starts[-1] and a_starts[0] < b_starts[-1]
    first_done = min(max(t.finished_at or 0 for t in r.tasks if t.kind == "segment") for r in (a, b))
    had = sorted((a.node_seconds(until=first_done), b.node_seconds(until=first_done)))
    assert had[0] >= 0.75 * had[1], had


def test_a_late_urgent_job_takes_the_next_free_node(trio) -> None:
    _local, farm = trio
    long = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "audio": False, "output_name": "long"})
    wait_until(lambda: sum(t.state == "done" for t in farm.store.get(long.id).tasks) >= 2, 60,
               "the long job never got going")  # fmt: skip
    urgent = jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": "none", "priority": 0,
                                       "output_name": "urgent"})  # fmt: skip
    done = jobs.wait(farm, urgent.id, timeout=120)
    assert done.state == "succeeded", done.errors
    long_done = jobs.wait(farm, long.id, timeout=180)
    assert long_done.state == "succeeded" and verify(long_done.outputs[0], long_done.plan)["exact"]
    # The next free node took it: at most one piece of the earlier job per node started in between (a node may
    # have had one in hand as it was submitted), and the earlier job was still going.
    started = done.task("render").started_at or 0
    between = [t for t in long_done.tasks if t.started_at and urgent.created_at < t.started_at < started]
    assert max(Counter(t.node for t in between).values(), default=0) <= 1, [(t.name, t.node) for t in between]
    assert started < max(t.started_at or 0 for t in long_done.tasks if t.kind == "segment")


def test_a_node_killed_while_it_holds_a_piece_leaves_no_frame_missing_or_doubled(tmp_path) -> None:
    nodes = {"k1": {}, "k2": {}}
    env = {"RESOLVE_SIM_FPS": "120", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "10"}
    with running_farm(tmp_path, nodes, **PULLED, **env) as (local, farm):
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "frames": {"start": 86400,
                                           "end": 87839}, "output_name": "killed"})  # fmt: skip
        victim = None

        def holding() -> bool:
            nonlocal victim
            running = [t for t in farm.store.get(record.id).tasks
                       if t.kind == "segment" and t.state == "running" and t.frames_done > 10]  # fmt: skip
            victim = running[0] if running else None
            return victim is not None

        wait_until(holding, 60, "no piece started")
        assert victim is not None
        local.kill_worker(str(victim.node))
        final = jobs.wait(farm, record.id, timeout=120)
        assert final.state == "succeeded", final.errors
        assert verify(final.outputs[0], final.plan)["exact"]
        assert frames_taken(final) == list(range(final.plan.frames.start, final.plan.frames.end + 1))
        redone = final.task(victim.name)
        assert (redone.start, redone.end) == (victim.start, victim.end)  # the same frames, taken by the other node
        assert redone.node != victim.node and victim.node in redone.failed_on


def test_a_heavy_section_is_learnt_as_costing_more_not_as_a_slow_node(tmp_path) -> None:
    """Half the timeline renders 4x slower (`RESOLVE_SIM_SPEED_PROFILE`). h1 renders a light range (its speed
    sets the unit). h2 then renders a heavy range nobody has rendered: alone, that tells a slow node as well
    as a heavy section, so h2's speed is provisional. h1 then renders a heavy range that meets h2's in one
    stretch: the fit sets the two nodes against each other there, and the heavy stretches are learnt as
    costing about 4, h2 as fast as h1, firm."""
    nodes = {"h1": {}, "h2": {}}
    env = {**PULLED, "RESOLVE_SIM_FPS": "120", "RESOLVE_SIM_SPEED_PROFILE": "0.5:4"}  # from frame 87840 on
    light, heavy, later = (87360, 87839), (87840, 88079), (88032, 88271)  # later meets heavy in 88032..88079
    with running_farm(tmp_path, nodes, **env) as (_local, farm):
        for node, (start, end) in (("h1", light), ("h2", heavy), ("h1", later)):
            spec = {"project": "Demo", "timeline": "Main", "frames": {"start": start, "end": end}, "split": "none",
                    "node": node, "audio": False, "output_name": f"{node}-{start}"}  # fmt: skip
            record = run(farm, spec, timeout=180)
            assert record.state == "succeeded", record.errors
            assert verify(record.outputs[0], record.plan)["exact"]
            if (start, end) == heavy:
                assert farm.speeds.firm_speed("h2", record.plan.speed_key) is None  # it met no other node
        costs = farm.costs.known(record.plan.cost_key, range(light[0] // 48, later[1] // 48 + 1))
        light_costs = [cost for stretch, cost in costs.items() if (stretch + 1) * 48 <= heavy[0]]
        heavy_costs = [cost for stretch, cost in costs.items() if stretch * 48 >= heavy[0]]
        assert light_costs and heavy_costs, costs
        assert max(light_costs) < 1.6 and min(heavy_costs) > 2.5, costs
        h1, h2 = (farm.speeds.firm_speed(n, record.plan.speed_key) for n in ("h1", "h2"))
        assert h1 and h2 and max(h1, h2) < 1.5 * min(h1, h2), (h1, h2)  # equal nodes, both firm


def test_a_timeline_never_rendered_is_costed_by_what_its_clips_cost_on_another(tmp_path) -> None:
    """Main teaches the farm that clip A008 is heavy (12x). Main recut (the same clips, reversed and trimmed)
    opens with it: rendering a stretch of Recut elsewhere, the farm learns what is on it before its first
    claim, and costs A008's opening as Main taught it, though no frame of it was rendered here."""
    nodes = {"n1": {}, "n2": {}}
    with running_farm(tmp_path, nodes, RESOLVE_SIM_FPS="480", RESOLVE_SIM_CLIP_COSTS="A008_C008.mov:12",
                      RESOLVE_FARM_RENDER_START_SECONDS="0.1", **PULLED) as (_local, farm):  # fmt: skip
        learnt = run(farm, {"project": "Demo", "timeline": "Main", "audio": False, "output_name": "main"}, 180)
        assert learnt.state == "succeeded", learnt.errors
        spec = {"project": "Demo", "timeline": "Main recut", "audio": False, "frames": {"start": 87000, "end": 87479},
                "output_name": "re"}  # fmt: skip
        record = run(farm, spec, 180)
        assert record.state == "succeeded", record.errors
        assert verify(record.outputs[0], record.plan)["exact"]
        seen = farm.catalog.content(None, "Demo", "Main recut")
        assert seen is not None and record.plan.content == ""  # compiled before any host looked at it
        claims = [t.started_at or 0.0 for t in record.tasks if t.node == seen["node"] and t.started_at]
        assert seen["at"] <= min(claims)  # what is on it was published before that node's first frames were sized
        opening, rest = seen["tracks"][1][0], seen["tracks"][0]  # A008's title over its shot, and the cut
        assert (opening["start"], rest[0]["start"]) == (86400, 86400)
        costs = farm.costs.steps(f"Demo/Main recut|{record.plan.speed_key}-unrendered", 86400, 89279, seen)
        assert costs == ()  # another codec or size: nothing learnt
        costs = farm.costs.looks.stretch_costs(record.plan.speed_key, visible(seen["tracks"]), 86400 // BIN,
                                               89279 // BIN, BIN)  # fmt: skip
        assert costs is not None
        a008, typical = costs[0], statistics.median(costs)  # frames 86400..86447: A008 (and its title)
        assert a008 > 4 * typical, costs
