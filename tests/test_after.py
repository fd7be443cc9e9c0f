"""Jobs that wait for jobs, on a real farm: an edit then a render, failures that cancel what
waits, refusals at submit, and the release surviving the loss of the janitor or of the process
that finished the upstream job.

The upstream edit runs on a node whose simulated host is frozen (`bridge.sim.host`) until the
test thaws it: the job after it is observed `waiting` by state, never by timing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import running_farm, wait_for_record, wait_until
from mcp import Client

from bridge.sim.host import HostState
from mcp_server.server import build_server
from orchestrator import jobs, lifecycle
from orchestrator.kinds import SubmitRefused
from orchestrator.local.demo import verify
from orchestrator.models import JobRecord

GATE_HOST = "gatehost"
NODES: dict[str, dict[str, Any]] = {
    "w-1": {"tags": ["work"]},
    "w-2": {"tags": ["work"]},
    # A host that can be frozen: every call checks whether it is (the quirk's own method is never called).
    "gate": {"tags": ["gate"], "env": {"RESOLVE_SIM_HOST": GATE_HOST, "RESOLVE_SIM_QUIRKS": "freeze-on:DeleteFolder"}},
}
MARK = [{"op": "add_marker", "frame": 12, "color": "Blue", "name": "before the render"}]
BAD = [{"op": "set_clip_color", "color": "Magenta"}]  # refused by the node: Magenta is no clip colour


@pytest.fixture(scope="module")
def farm_and_local(tmp_path_factory: pytest.TempPathFactory):
    with running_farm(tmp_path_factory.mktemp("after"), NODES, RESOLVE_FARM_CANCEL_CLEANUP_DELAY="600") as (local, f):
        yield local, f


@pytest.fixture
def farm(farm_and_local):
    return farm_and_local[1]


@contextlib.contextmanager
def frozen_gate(farm) -> Iterator[None]:
    """The gate node's Resolve stops answering until the block ends: what runs there cannot finish.

    Note: first the gate finishes what an earlier test left running there (its piece, thawed, still has
    calls to make): frozen again at once, that piece would hold the gate's one slot through this test."""
    wait_until(lambda: not next(n for n in farm.nodes.all() if n.name == "gate").current_task, 60,
               "the gate is still busy with an earlier test's piece")  # fmt: skip
    host = HostState(Path(os.environ["RESOLVE_SIM_LIBRARY"]), GATE_HOST)
    host.freeze()
    try:
        yield
    finally:
        host.thaw()


def edit_on_gate(farm, operations: list[dict[str, Any]], timeline: str = "Teaser") -> JobRecord:
    return jobs.submit_edit(farm, {"targets": [{"project": "Demo", "timeline": timeline}], "operations": operations,
                                   "node": "gate", "max_attempts": 1})  # fmt: skip


def render_spec(name: str, split: int = 2) -> dict[str, Any]:
    return {"project": "Demo", "timeline": "Teaser", "split": split, "tags": ["work"], "output_name": name}


def finished(farm, job_id: str, timeout: float = 120) -> JobRecord:
    return wait_for_record(farm, job_id, lambda r: r.finished and not any(t.state == "running" for t in r.tasks),
                    "never finished", timeout)  # fmt: skip


def cli(farm, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def test_a_render_after_an_edit_waits_for_it_then_runs(farm) -> None:
    with frozen_gate(farm):
        edit = edit_on_gate(farm, MARK)
        submitted = cli(farm, "render", "Demo", "Teaser", "--split", "2", "--tag", "work", "--name", "after-edit",
                        "--after", edit.id, "--json")  # fmt: skip
        assert submitted.returncode == 0, submitted.stderr
        render = json.loads(submitted.stdout)
        assert render["state"] == "waiting" and render["after"] == [edit.id] and render["waiting_on"] == [edit.id]
        assert all(t["state"] == "waiting" and t["celery_id"] is None for t in render["tasks"])
        wait_for_record(farm, edit.id, lambda r: r.tasks[0].state == "running", "the edit never started on the gate")
        status = cli(farm, "status", render["id"])
        assert status.returncode == 0 and f"waiting on {edit.id}" in status.stdout
        listed = json.loads(cli(farm, "jobs", "--state", "waiting", "--json").stdout)
        assert render["id"] in [r["id"] for r in listed]
        assert farm.store.get(render["id"]).state == "waiting"  # the edit is still running
    edited = finished(farm, edit.id)
    assert edited.state == "succeeded", edited.errors
    rendered = finished(farm, render["id"])
    assert rendered.state == "succeeded", rendered.errors
    assert min(t.started_at for t in rendered.tasks) >= edited.finished_at  # nothing of it ran before the edit ended
    assert verify(rendered.outputs[0], rendered.plan)["exact"]
    assert rendered.waiting_on == [] and rendered.after == [edit.id]


def test_a_failed_upstream_job_cancels_what_waits_for_it_saying_which_and_why(farm) -> None:
    with frozen_gate(farm):
        bad = edit_on_gate(farm, BAD)
        render = jobs.submit_render(farm, render_spec("never"), after=[bad.id])
        chained = jobs.submit_render(farm, render_spec("never-either"), after=[render.id])
        assert render.state == chained.state == "waiting" and chained.waiting_on == [render.id]
    failed = finished(farm, bad.id)
    assert failed.state == "failed" and "color" in failed.errors[0]
    cancelled = finished(farm, render.id)
    assert cancelled.state == "cancelled", cancelled.public()
    (reason,) = cancelled.errors
    assert f"job {bad.id}" in reason and "failed" in reason and "color" in reason
    assert all(t.state == "cancelled" and t.node is None and t.attempts == 0 for t in cancelled.tasks)
    further = finished(farm, chained.id)  # what waits for the cancelled job is cancelled in turn
    assert further.state == "cancelled" and f"job {render.id}" in further.errors[0]
    assert "was cancelled" in further.errors[0]
    with pytest.raises(SubmitRefused, match=f"after: job {bad.id} is failed") as refused:
        jobs.submit_render(farm, render_spec("refused"), after=[bad.id])
    assert refused.value.field == "after"
    with pytest.raises(SubmitRefused, match=r"retry job .* first"):
        jobs.retry(farm, render.id)  # its upstream job is still failed


def test_a_job_after_an_unknown_job_is_refused_with_nothing_stored(farm, tmp_path: Path) -> None:
    def stored() -> set[str]:  # (by id: an earlier test's jobs may still change state meanwhile)
        return {r.id for r in farm.store.list(limit=10_000)}

    before = stored()
    with pytest.raises(SubmitRefused, match="after: no job '0000000000000000'"):
        jobs.submit_render(farm, render_spec("refused"), after=["0000000000000000"])
    with pytest.raises(SubmitRefused, match="after: a list of job ids"):
        jobs.submit_render(farm, render_spec("refused"), after="0000000000000000")
    batch = tmp_path / "batch.json"
    batch.write_text(json.dumps({"targets": [{"project": "Demo", "timeline": "Main"}], "operations": MARK}))
    refused = cli(farm, "edit", str(batch), "--after", "0000000000000000", "--json")
    assert refused.returncode == 2 and "after: no job '0000000000000000'" in json.loads(refused.stdout)["error"]
    assert stored() == before


def test_cancelling_the_upstream_job_cancels_the_waiting_one(farm) -> None:
    with frozen_gate(farm):
        edit = edit_on_gate(farm, MARK)
        render = jobs.submit_render(farm, render_spec("cancelled-upstream"), after=[edit.id])
        jobs.cancel(farm, edit.id, wait=0)
        after = farm.store.get(render.id)  # released by the cancel itself, not later
        assert (
            after.state == "cancelled" and f"job {edit.id}, which this job runs after, was cancelled" in after.errors[0]
        )
    finished(farm, edit.id)


def test_a_retried_upstream_job_lets_a_retried_dependent_run(farm) -> None:
    with frozen_gate(farm):
        blocker = edit_on_gate(farm, MARK)  # holds the gate's one slot: the next edit there stays pending
        wait_for_record(farm, blocker.id, lambda r: r.tasks[0].state == "running", "the blocker never started")
        edit = edit_on_gate(farm, MARK, timeline="Social")
        render = jobs.submit_render(farm, render_spec("retried", split=1), after=[edit.id])
        assert jobs.cancel(farm, edit.id, wait=0).tasks[0].state == "cancelled"  # it never started
        assert farm.store.get(render.id).state == "cancelled"
        assert jobs.retry(farm, edit.id).state == "queued"  # a retry of the upstream job leaves it cancelled
        assert farm.store.get(render.id).state == "cancelled"
        again = jobs.retry(farm, render.id)  # the dependent is retried on its own, and waits again
        assert again.state == "waiting" and again.waiting_on == [edit.id] and again.generation == 2
    assert finished(farm, edit.id).state == "succeeded"
    final = finished(farm, render.id)
    assert final.state == "succeeded" and final.errors == [], final.errors
    assert min(t.started_at for t in final.tasks) >= farm.store.get(edit.id).finished_at


def test_the_release_needs_no_post_worker_and_survives_its_restart(farm_and_local) -> None:
    local, farm = farm_and_local
    with frozen_gate(farm):
        edit = edit_on_gate(farm, MARK)
        render = jobs.submit_render(farm, render_spec("no-janitor", split=1), after=[edit.id])
        local.stop_worker("post")  # the janitor goes away mid-wait
        assert farm.store.get(render.id).state == "waiting"
    edited = finished(farm, edit.id)
    released = wait_for_record(farm, render.id, lambda r: r.state != "waiting", "the render was not released")
    assert edited.state == "succeeded" and released.state in ("queued", "running", "succeeded")
    local.add_worker("post", post=True, resolve=False)
    local.wait_ready(["post"])
    assert finished(farm, render.id).state == "succeeded"


def test_the_janitor_releases_what_a_dead_process_left_waiting(farm_and_local) -> None:
    """The process that finished the upstream job died between its last write and the release."""
    local, farm = farm_and_local
    with frozen_gate(farm):
        edit = edit_on_gate(farm, MARK)
        piece = wait_for_record(farm, edit.id, lambda r: r.tasks[0].state == "running", "the edit never started").tasks[
            0
        ]
        render = jobs.submit_render(farm, render_spec("janitor", split=1), after=[edit.id])
        local.stop_worker("post")
        # The record written as the gate's worker would write it, and nothing after: no release.
        farm.store.apply(edit.id, lambda rec: lifecycle.piece_done(rec, piece.name, "gate", rec.generation))
        assert farm.store.get(edit.id).state == "succeeded"
        assert farm.store.get(render.id).state == "waiting"  # no janitor, no release: still waiting
        local.add_worker("post", post=True, resolve=False)  # a janitor again, started after the fact
        local.wait_ready(["post"])
        final = finished(farm, render.id)
    assert final.state == "succeeded", final.errors
    log = (local.home / "logs" / "post.log").read_text()
    assert f"janitor: job {render.id} was left waiting on finished jobs: now queued" in log


def test_mcp_tools_take_and_show_after(farm) -> None:
    async def steps(edit_id: str) -> list[Any]:
        async with Client(build_server(farm)) as client:
            render = await client.call_tool("render_timeline", {"project": "Demo", "timeline": "Teaser", "split": 1,
                                                                "tags": ["work"], "output_name": "mcp-after",
                                                                "after": [edit_id]})  # fmt: skip
            job_id = render.structured_content["job_id"]
            edit = await client.call_tool("batch_edit", {"targets": [{"project": "Demo", "timeline": "Teaser"}],
                                                         "operations": MARK, "dry_run": True, "after": [job_id]})  # fmt: skip
            got = await client.call_tool("get_job", {"job_id": job_id})
            listed = await client.call_tool("list_jobs", {"state": "waiting"})
            refused = await client.call_tool("render_timeline", {"project": "Demo", "timeline": "Teaser",
                                                                 "after": ["nope"]})  # fmt: skip
            return [render, edit, got, listed, refused]

    with frozen_gate(farm):
        upstream = edit_on_gate(farm, MARK)
        render, edit, got, listed, refused = asyncio.run(steps(upstream.id))
        assert not render.is_error and render.structured_content["state"] == "waiting"
        assert render.structured_content["job"]["waiting_on"] == [upstream.id]
        view = got.structured_content
        assert view["state"] == "waiting" and view["after"] == view["waiting_on"] == [upstream.id]
        edit_view = edit.structured_content
        assert not edit.is_error and edit_view["state"] == "waiting"
        assert edit_view["job"]["waiting_on"] == [render.structured_content["job_id"]]
        waiting = {j["id"]: j for j in listed.structured_content["jobs"]}
        assert waiting[view["id"]]["waiting_on"] == [upstream.id]
        assert refused.is_error and "after: no job 'nope'" in refused.content[0].text
    assert finished(farm, edit_view["job_id"]).state == "succeeded"
    assert finished(farm, view["id"]).state == "succeeded"
