"""The farm end to end: real Redis, real worker processes, simulated Resolve hosts."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import assert_cancelled_leaving_nothing, queued_messages, run, running_farm, settle, wait_for_record
from mcp import Client
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS
from pydantic import ValidationError

from bridge.sim import framecode
from bridge.sim.library import Library
from mcp_server.server import build_server
from orchestrator import jobs, kinds
from orchestrator.local.demo import verify

NODES: dict[str, dict[str, Any]] = {
    "sim-1": {},
    "sim-2": {},
    "sim-3": {},
    "studio-1": {"tags": ["studio", "gpu"]},
    "flaky": {"tags": ["failover"], "env": {"RESOLVE_SIM_QUIRKS": "fail-render:GPU memory full"}},
    "steady": {"tags": ["failover"]},
}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    with running_farm(tmp_path_factory.mktemp("farm"), NODES) as (_local, farm):
        yield farm


def test_nodes_announce_themselves(farm) -> None:
    nodes = {n.name: n for n in farm.nodes.all()}
    assert set(nodes) == {*NODES, "post"}
    assert all(n.up and not n.version_mismatch for n in nodes.values())
    assert nodes["sim-1"].resolve["product"] == "DaVinci Resolve Studio" and nodes["sim-1"].bridge == "sim"  # type: ignore[index]
    assert nodes["studio-1"].tags == ["gpu", "studio"] and nodes["post"].roles == ["post"]
    main = farm.catalog.timeline(["sim-1"], "Demo", "Main", None)
    assert main["start_frame"] == 86400 and main["end_frame"] == 89279


def test_split_render_is_exact(farm) -> None:
    record = run(farm, {"project": "Demo", "timeline": "Social", "split": 3, "tags": [], "output_name": "social"})
    assert record.state == "succeeded", record.errors
    assert record.plan.segments == 3 and record.progress == 100.0
    segments = [t for t in record.tasks if t.kind == "segment"]
    assert [t.state for t in segments] == ["done"] * 3
    assert len({t.node for t in segments}) >= 2  # really spread over hosts
    output = record.outputs[0]
    assert output.endswith("social.mov") and os.path.isfile(output)
    check = verify(output, record.plan)
    assert check["exact"], check["summary"]
    assert framecode.read_file(output) == list(range(86400, 86400 + 30 * 24))
    assert not Path(record.plan.work_dir).exists()  # segments cleaned up
    assert [p.name for p in Path(output).parent.glob(".*partial*")] == []


def test_render_range_codec_and_no_audio(farm) -> None:
    spec = {
        "project": "Demo",
        "timeline": "Main",
        "frames": {"start": 87000, "end": 87199},
        "format": "mxf_op1a",
        "codec": "DNxHRHQ",
        "audio": False,
        "split": 4,
        "output_dir": "deliveries/mxf",
        "output_name": "main_part",
    }
    record = run(farm, spec)
    assert record.state == "succeeded", record.errors
    assert record.outputs[0].endswith("deliveries/mxf/main_part.mxf")
    assert framecode.read_file(record.outputs[0]) == list(range(87000, 87200))
    assert not any(t.kind == "audio" for t in record.tasks)


def test_long_gop_splits_and_joins_by_stream_copy(farm) -> None:
    """H.264 in MP4 split auto across the nodes and H.265 in QuickTime in two: each piece opens on an IDR frame,
    the stitch copies their packets (no re-encode) and says so, every frame decodes in order."""
    import av

    from tasks.proof import check_copy

    auto = run(
        farm, {"project": "Demo", "timeline": "Teaser", "format": "mp4", "codec": "H264", "output_name": "t_auto"}
    )
    split = run(farm, {"project": "Demo", "timeline": "Teaser", "format": "mov", "codec": "H265", "split": 2,
                       "output_name": "t_split"})  # fmt: skip
    assert auto.state == "succeeded" and auto.plan.pulled and auto.plan.stitch == "copy", auto.errors
    assert split.state == "succeeded" and split.plan.segments == 2, split.errors
    for record in (auto, split):
        assert record.task("stitch").details["stitch"] == "copy" and "reason" not in record.task("stitch").details
        pieces = sorted((t for t in record.tasks if t.kind == "segment" and t.state == "done"
                         and not t.params.get("copy_of")), key=lambda t: t.start)  # fmt: skip
        # (a tail copy that won gave its file and digest to its original: one entry per range)
        assert len(pieces) >= 2 and all(t.details["video"]["opens"] == "idr" for t in pieces)
        assert check_copy(record.outputs[0], [(t.name, t.details["video"]) for t in pieces])["frames"] == 15 * 24
        assert framecode.read_file(record.outputs[0]) == list(range(86400, 86400 + 15 * 24))
        assert verify(record.outputs[0], record.plan)["exact"]
        with av.open(record.outputs[0]) as container:
            dts = [p.dts for p in container.demux(video=0) if p.size]
        assert all(a < b for a, b in itertools.pairwise(dts))


def test_batch_edit_across_two_timelines(farm) -> None:
    from bridge.sim import scriptapp

    ops = [{"op": "add_marker", "frame": 48, "color": "Green", "name": "farm note"},
           {"op": "set_clip_color", "items": {"track": 1}, "color": "Lime"}]  # fmt: skip
    spec = {"targets": [{"project": "Demo", "timeline": "Teaser"}, {"project": "Demo", "timeline": "Social"}],
            "operations": ops}  # fmt: skip
    library = Path(os.environ["RESOLVE_SIM_LIBRARY"])
    before = Library(library).read()
    dry = run(farm, {**spec, "dry_run": True}, kind="edit")
    assert dry.state == "succeeded"
    assert all(r["dry_run"] for t in dry.tasks for r in t.results) and sum(len(t.results) for t in dry.tasks) > 4
    assert Library(library).read()["databases"] == before["databases"]  # dry run changed nothing
    record = run(farm, spec, kind="edit")
    assert record.state == "succeeded", record.errors
    assert len({t.node for t in record.tasks}) == 2
    assert all(r["ok"] for t in record.tasks for r in t.results)
    project = scriptapp("Resolve").GetProjectManager().LoadProject("Demo")
    for index in (2, 3):
        timeline = project.GetTimelineByIndex(index)
        assert timeline.GetMarkers()[48]["name"] == "farm note"
        assert {i.GetClipColor() for i in timeline.GetItemListInTrack("video", 1)} == {"Lime"}


def test_an_edit_over_its_confirm_threshold_asks_with_the_count_and_changes_nothing_until_yes(farm) -> None:
    """`confirm_over`: each target is dry-run first (`count ...`), then the job asks with the count when it is
    over; yes applies the edits, no cancels with nothing changed; under it, no question at all."""
    ops = [{"op": "add_marker", "frame": 60, "color": "Cyan", "name": "confirmed"}]
    targets = [{"project": "Demo", "timeline": "Teaser"}, {"project": "Demo", "timeline": "Social"}]
    library = Path(os.environ["RESOLVE_SIM_LIBRARY"])
    before = Library(library).read()["databases"]
    refused = jobs.submit_edit(farm, {"targets": targets, "operations": ops, "confirm_over": 1})
    asked = wait_for_record(farm, refused.id, lambda r: r.state == "input_required", "the edit asks")
    assert asked.asking() == {"confirm": "Apply 2 change(s) to 2 timeline(s)? (the dry run counted them; "
                                         "more than 1 are confirmed first)"}  # fmt: skip
    assert [t.state for t in asked.tasks if t.kind == "edit"] == ["waiting", "waiting"]  # nothing applied yet
    no = jobs.answer(farm, refused.id, {"confirm": {"action": "decline"}})
    assert no.state == "cancelled" and "not confirmed: Apply 2 change(s)" in no.errors[0]
    assert Library(library).read()["databases"] == before  # the dry runs and the refusal changed nothing
    confirmed = jobs.submit_edit(farm, {"targets": targets, "operations": ops, "confirm_over": 1})
    wait_for_record(farm, confirmed.id, lambda r: r.state == "input_required", "the edit asks again")
    jobs.answer(farm, confirmed.id, {"confirm": {"action": "accept", "content": {"confirm": True}}})
    done = jobs.wait(farm, confirmed.id, timeout=60)
    assert done.state == "succeeded", done.errors
    assert all(r["ok"] for t in done.tasks if t.kind == "edit" for r in t.results)
    assert [t.details["changes"] for t in done.tasks if t.kind == "count"] == [1, 1]
    # The CLI's --wait stops where the job asks, prints the question and how to answer, exit code 3.
    edit_file = Path(os.environ["RESOLVE_FARM_HOME"]) / "confirm.json"
    edit_file.write_text(json.dumps({"targets": targets, "operations": ops, "confirm_over": 1}))
    waited = subprocess.run([sys.executable, "-m", "orchestrator.cli", "edit", str(edit_file), "--wait"],
                            capture_output=True, text=True, timeout=120)  # fmt: skip
    assert waited.returncode == 3, waited.stderr
    assert "asks confirm: Apply 2 change(s)" in waited.stdout and "resolve-farm answer" in waited.stdout
    for left in farm.store.list(limit=100):  # (it still asks: cancelled, so the farm settles for the next tests)
        if left.state == "input_required":
            jobs.cancel(farm, left.id)
    under = run(farm, {"targets": targets[:1], "operations": ops, "confirm_over": 5}, kind="edit")
    assert under.state == "succeeded" and under.task("confirm").state == "done"  # counted, under: never asked
    assert "answers" not in under.task("confirm").details


def test_bad_edit_operations_fail_the_job_and_touch_nothing(farm) -> None:
    library = Path(os.environ["RESOLVE_SIM_LIBRARY"])
    before = Library(library).read()["databases"]
    spec = {"targets": [{"project": "Demo", "timeline": "Teaser"}],
            "operations": [{"op": "add_marker", "frame": 1}, {"op": "set_clip_color", "color": "Magenta"}]}  # fmt: skip
    record = run(farm, spec, kind="edit")
    assert record.state == "failed" and "color" in record.errors[0]
    assert Library(library).read()["databases"] == before


def test_cancel_mid_render_leaves_nothing(farm) -> None:
    record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "split": 3, "output_name": "cancelled"})
    deadline = time.monotonic() + 60
    while not any(t.frames_done > 24 for t in farm.store.get(record.id).tasks):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert_cancelled_leaving_nothing(farm, jobs.cancel(farm, record.id))


def test_failed_segment_is_finished_on_another_node(farm) -> None:
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["failover"], "output_name": "fo"})
    assert record.state == "succeeded", record.errors
    assert verify(record.outputs[0], record.plan)["exact"]
    pieces = [t for t in record.tasks if t.kind != "stitch"]
    assert all(t.node == "steady" for t in pieces)
    retried = [t for t in pieces if t.failed_on]
    assert retried and all(t.failed_on == ["flaky"] and t.attempts == 2 for t in retried)
    assert record.blocked_nodes["flaky"] == len(retried)


def test_job_pinned_to_a_node_or_tags_runs_only_there(farm) -> None:
    pinned = run(farm, {"project": "Demo", "timeline": "Teaser", "split": 3, "node": "sim-2", "output_name": "pin"})
    assert pinned.state == "succeeded"
    assert {t.node for t in pinned.tasks if t.kind != "stitch"} == {"sim-2"}
    tagged = run(
        farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["gpu", "studio"], "output_name": "tag"}
    )
    assert tagged.state == "succeeded"
    assert {t.node for t in tagged.tasks if t.kind != "stitch"} == {"studio-1"}


@pytest.mark.parametrize(
    "spec,field,reason",
    [
        ({"project": "Nope", "timeline": "Main"}, "project", "unknown project 'Nope' (known: Demo)"),
        ({"project": "Demo", "timeline": "Nope"}, "timeline", "unknown timeline 'Nope' in project 'Demo'"),
        ({"project": "Demo", "timeline": "Main", "frames": {"start": 87000, "end": 86999}}, "frames", "MarkIn"),
        (
            {"project": "Demo", "timeline": "Main", "frames": {"start": 86000, "end": 86500}},
            "frames",
            "outside timeline",
        ),
        ({"project": "Demo", "timeline": "Main", "output_dir": "/etc"}, "output_dir", "outside the storage roots"),
        ({"project": "Demo", "timeline": "Main", "output_dir": "../elsewhere"}, "output_dir", "'..' is not allowed"),
        ({"project": "Demo", "timeline": "Main", "output_name": "../x"}, "output_name", "plain file name"),
        ({"project": "Demo", "timeline": "Main", "output_name": "/abs/x"}, "output_name", "plain file name"),
        ({"project": "Demo", "timeline": "Main", "codec": "ProRes9000"}, "codec", "unknown codec 'ProRes9000'"),
        ({"project": "Demo", "timeline": "Main", "format": "avi"}, "format", "unknown format 'avi'"),
        ({"project": "Demo", "timeline": "Main", "settings": {"MarkIn": 1}}, "settings", "set by the farm"),
        ({"project": "Demo", "timeline": "Main", "node": "ghost"}, "node", "no Resolve node named 'ghost'"),
        ({"project": "Demo", "timeline": "Main", "tags": ["quantum"]}, "tags", "no Resolve node has the tags"),
    ],
)
def test_refused_at_submit_with_nothing_queued(farm, spec: dict[str, Any], field: str, reason: str) -> None:
    settle(farm)
    before_jobs = len(farm.store.list(limit=10_000))
    before_messages = queued_messages(farm)
    with pytest.raises((jobs.SubmitRefused, ValidationError)) as err:
        jobs.submit_render(farm, spec)
    assert field in str(err.value) and reason in str(err.value)
    assert len(farm.store.list(limit=10_000)) == before_jobs
    assert queued_messages(farm) == before_messages


def test_listing_and_retention(farm) -> None:
    for name in ("listed_1", "listed_2", "listed_3"):  # its own jobs: it passes alone and in any order
        spec = {"project": "Demo", "timeline": "Teaser", "frames": {"start": 86400, "end": 86423}, "output_name": name}
        assert run(farm, spec).state == "succeeded"
    listed = farm.store.list(kind="render", state="succeeded", limit=2)
    assert len(listed) == 2 and listed[0].created_at >= listed[1].created_at
    page2 = farm.store.list(kind="render", state="succeeded", limit=2, offset=2)
    assert {r.id for r in page2}.isdisjoint({r.id for r in listed})
    assert 0 < farm.redis.ttl(farm.store.key(listed[0].id)) <= farm.settings.job_retention
    assert farm.store.list(kind="edit", state="running") == []


def test_per_item_results_are_kept_beside_the_record(farm) -> None:
    """Listings and progress updates never carry a big batch's results; `get` always does."""
    from orchestrator.kinds.edit import EditJob, EditPlan, EditSpec
    from orchestrator.models import JobRecord, TaskRecord

    results = [{"op": 0, "kind": "set_clip_color", "target": f"item {n}", "ok": True, "change": "c", "error": ""}
               for n in range(1000)]  # fmt: skip
    spec = EditSpec.model_validate({"targets": [{"project": "P"}], "operations": [{"op": "add_marker"}]})
    record = EditJob(kind="edit", spec=spec, plan=EditPlan(targets=2, known_nodes=[]),
                     tasks=[TaskRecord(name="P/A", kind="edit"), TaskRecord(name="P/B", kind="edit")])  # fmt: skip
    farm.store.create(record)
    key, results_key = farm.store.key(record.id), farm.store.results_key(record.id)

    def finish(name: str):
        def change(rec: JobRecord) -> None:  # type: ignore[type-arg]
            rec.task(name).state, rec.task(name).results = "done", results
            if all(t.state == "done" for t in rec.tasks):
                rec.state = "succeeded"

        return change

    farm.store.apply(record.id, finish("P/A"))
    assert "item 999" not in farm.redis.get(key) and farm.redis.hkeys(results_key) == ["P/A"]
    assert farm.store.get(record.id).task("P/A").results == results
    listed = next(r for r in farm.store.list(kind="edit", limit=100) if r.id == record.id)
    assert listed.task("P/A").results == []  # a listing stays light
    farm.store.apply(record.id, finish("P/B"))
    final = farm.store.get(record.id)
    assert final.state == "succeeded" and [len(t.results) for t in final.tasks] == [1000, 1000]
    assert 0 < farm.redis.ttl(results_key) <= farm.settings.job_retention  # expires with the record
    assert abs(farm.redis.ttl(results_key) - farm.redis.ttl(key)) <= 1
    farm.store.apply(record.id, lambda rec: setattr(rec, "state", "queued"))  # retried: kept again
    assert farm.redis.ttl(results_key) == -1 and farm.redis.ttl(key) == -1
    farm.store.apply(record.id, lambda rec: setattr(rec.task("P/A"), "results", []))
    assert farm.redis.hkeys(results_key) == ["P/B"]
    farm.store.apply(record.id, lambda rec: setattr(rec, "state", "cancelled"))


# --- the CLI against the same farm ---------------------------------------------------------


def _cli(farm, *args: str, timeout: float = 120, env: dict[str, str] | None = None):
    import subprocess
    import sys

    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url, **(env or {})}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)  # fmt: skip


def test_cli_render_wait_json(farm) -> None:
    done = _cli(
        farm,
        "render",
        "Demo",
        "Teaser",
        "--split",
        "2",
        "--name",
        "cli",
        "--setting",
        "VideoQuality=Best",
        "--setting",
        "AudioBitDepth=24",
        "--wait",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)  # stdout holds only the final record
    assert record["state"] == "succeeded" and record["outputs"][0].endswith("cli.mov")
    assert record["spec"]["settings"] == {"VideoQuality": "Best", "AudioBitDepth": 24}
    assert "job" in done.stderr  # the progress went to stderr
    status = _cli(farm, "status", record["id"], "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["id"] == record["id"]
    listed = json.loads(_cli(farm, "jobs", "--kind", "render", "--limit", "3", "--json").stdout)
    assert isinstance(listed, list) and 1 <= len(listed) <= 3 and listed[0]["id"] == record["id"]
    nodes = json.loads(_cli(farm, "nodes", "--json").stdout)
    assert {n["name"] for n in nodes} >= {"sim-1", "post"}


def test_cli_refusal_and_failure_exit_codes(farm) -> None:
    refused = _cli(farm, "render", "Demo", "Nope", "--json")
    assert refused.returncode == 2
    assert json.loads(refused.stdout) == {
        "error": "timeline: unknown timeline 'Nope' in project 'Demo' (known: Main, Main recut, Social, Teaser)"
    }
    failed = _cli(
        farm,
        "render",
        "Demo",
        "Teaser",
        "--tag",
        "failover",
        "--node",
        "flaky",
        "--max-attempts",
        "1",
        "--wait",
        "--json",
    )
    assert failed.returncode == 1 and json.loads(failed.stdout)["state"] == "failed"
    assert "GPU memory full" in json.loads(failed.stdout)["errors"][0]
    missing = _cli(farm, "status", "0000000000000000")
    assert missing.returncode == 2 and "no job '0000000000000000'" in missing.stderr


def test_short_ids_and_unique_prefixes_name_jobs_and_tables_fit_80_columns(farm) -> None:
    """What the CLI prints of an id (8 characters) names the job in every command; a start of several jobs' ids
    is refused listing them, by the CLI and over MCP (-32602); `jobs` and `nodes` fit 80 columns."""
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "output_name": "prefixed", "overwrite": True})
    status = _cli(farm, "status", record.id[:8], "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["id"] == record.id
    assert _cli(farm, "log", record.id[:6], "--json").returncode == 0
    twins = [f"feed{n:012x}" for n in (1, 2)]
    for twin in twins:  # two kept jobs whose ids start alike
        farm.store.create(farm.store.get(record.id).model_copy(update={"id": twin, "created_at": time.time()}))
    ambiguous = _cli(farm, "status", "feed0000")
    assert ambiguous.returncode == 2 and all(t in ambiguous.stderr for t in twins), ambiguous.stderr
    assert "job: 'feed0000' starts 2 jobs' ids" in ambiguous.stderr.replace("\n", " ")
    assert _cli(farm, "status", twins[1][:-1] + "3").returncode == 2  # names none
    assert _cli(farm, "status", "fee").returncode == 2  # too short to name one
    assert jobs.get(farm, twins[1]).id == twins[1]

    async def get_job(prefix: str) -> Any:
        async with Client(build_server(farm)) as client:
            try:
                return await client.call_tool("get_job", {"job_id": prefix})
            except MCPError as exc:  # a JSON-RPC error answered
                return exc

    assert asyncio.run(get_job(record.id[:8])).structured_content["id"] == record.id
    refused = asyncio.run(get_job("feed"))
    assert isinstance(refused, MCPError), refused
    assert refused.error.code == INVALID_PARAMS and refused.error.data == {"candidates": twins}

    rows = {}
    for command in ("jobs", "nodes"):
        shown = _cli(farm, command, env={"COLUMNS": "80"})
        lines = shown.stdout.splitlines()
        assert shown.returncode == 0 and max(len(line) for line in lines) <= 80, shown.stdout
        body = lines[next(i for i, line in enumerate(lines) if set(line.strip()) == {"─"}) + 1 :]
        body = body[: next((i for i, line in enumerate(body) if not line.strip()), len(body))]  # (then the caption)
        rows[command] = [line.split()[0] for line in body if line[2:3].strip()]  # (not a cell's folded rest)
    ids = rows["jobs"]
    assert len(ids) >= 3 and set(twins) <= set(ids)  # shown whole: their first 8 characters tell them from nothing
    assert all(jobs.get(farm, shown).id.startswith(shown) for shown in ids)  # each id shown names its job
    assert rows["nodes"] == sorted(n.name for n in farm.nodes.all()) == sorted(rows["nodes"])
    assert len(body) == len(rows["nodes"])  # one line each: nothing wraps


def test_cli_edit_from_yaml(farm, tmp_path: Path) -> None:
    batch = tmp_path / "batch.yaml"
    batch.write_text(
        "targets:\n  - project: Demo\n    timeline: Main\noperations:\n  - op: add_marker\n    frame: 240\n    color: Red\n    name: from yaml\n"
    )
    done = _cli(farm, "edit", str(batch), "--dry-run", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["kind"] == "edit" and record["tasks"][0]["results"][0]["dry_run"] is True


def test_retry_runs_only_what_failed(farm) -> None:
    """Segments and audio succeed, the stitch fails (a folder stands where the output goes); the retry
    runs the stitch alone: every other piece keeps its attempt and its file."""
    root = farm.settings.storage_roots[0]
    blocker = root / "retry_only.mov"
    blocker.mkdir(parents=True)  # os.replace of the joined file onto a folder fails (with overwrite: else versioned)
    # On a node that never fails (the farm has one that always does): only the stitch may fail.
    spec = {
        "project": "Demo",
        "timeline": "Teaser",
        "split": 2,
        "max_attempts": 1,
        "node": "sim-1",
        "output_name": "retry_only",
        "overwrite": True,
    }  # fmt: skip  (on a node that never fails: only the stitch may)
    first = run(farm, spec)
    assert first.state == "failed" and "stitch" in first.errors[0]
    assert list(root.glob(".retry_only*")) == []  # the refused rename left not even the joined temporary file
    pieces = [t for t in first.tasks if t.kind != "stitch"]
    assert pieces and all(t.state == "done" and t.attempts == 1 for t in pieces)
    before = {t.name: (t.finished_at, os.stat(str(t.output)).st_mtime_ns) for t in pieces}
    blocker.rmdir()
    jobs.retry(farm, first.id)
    again = jobs.wait(farm, first.id, timeout=60)
    assert again.state == "succeeded", again.errors
    assert verify(again.outputs[0], again.plan)["exact"]
    assert again.task("stitch").attempts == 1 and again.generation == 2
    for t in again.tasks:
        if t.kind != "stitch":
            assert t.attempts == 1 and t.finished_at == before[t.name][0]  # not rendered again


def test_a_node_of_another_release_is_shown_and_kept_off_jobs(farm) -> None:
    farm.nodes.announce({"name": "old-bay", "roles": ["resolve"], "tags": [], "version_key": "0"})
    try:
        node = {n.name: n for n in farm.nodes.all()}["old-bay"]
        assert node.up and node.version_mismatch
        assert "old-bay" not in {n.name for n in farm.nodes.eligible()}
        with pytest.raises(jobs.SubmitRefused, match="no Resolve node named 'old-bay'"):
            jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "node": "old-bay"})
    finally:
        farm.nodes.forget("old-bay")


def test_progress_goes_out_as_celery_events(farm) -> None:
    """Flower and other event consumers see `task-progress` events from running renders."""
    import threading

    seen: list[dict[str, Any]] = []
    ready = threading.Event()
    receivers: list[Any] = []

    def listen() -> None:
        with farm.app.connection_for_read() as connection:
            receiver = farm.app.events.Receiver(connection, handlers={"task-progress": seen.append})
            receivers.append(receiver)
            ready.set()
            receiver.capture(limit=None, timeout=None, wakeup=True)

    patterns = farm.redis.execute_command("PUBSUB", "NUMPAT")
    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(10)
    deadline = time.monotonic() + 10
    while farm.redis.execute_command("PUBSUB", "NUMPAT") <= patterns:  # the receiver is subscribed to the events
        assert time.monotonic() < deadline, "the event receiver never subscribed"
        time.sleep(0.02)
    record = run(farm, {"project": "Demo", "timeline": "Social", "split": 2, "output_name": "events"})
    assert record.state == "succeeded"
    deadline = time.monotonic() + 10
    while not any(e.get("job_id") == record.id for e in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    receivers[0].should_stop = True
    thread.join(timeout=10)
    mine = [e for e in seen if e.get("job_id") == record.id]
    assert mine, "no task-progress event arrived"
    assert {"task", "node", "frames_done", "frames_total", "job_progress"} <= set(mine[0])
    assert max(e["frames_done"] for e in mine) > 0


def test_piece_logs_say_what_happened_on_each_node(farm) -> None:
    record = run(
        farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["failover"], "output_name": "logged"}
    )
    assert record.state == "succeeded", record.errors
    retried = next(t for t in record.tasks if t.failed_on)
    done = _cli(farm, "log", record.id, retried.name, "--json")
    assert done.returncode == 0, done.stderr
    lines = json.loads(done.stdout)["pieces"][retried.name]
    text = "\n".join(lines)
    assert "flaky" in text and "GPU memory full" in text  # Resolve's error, on the node that failed
    assert "will run again on steady" in text and "attempt 2 on steady" in text  # the retry, where it went
    assert "Resolve: Complete" in text and any(" steady INFO " in line for line in lines)
    stitch = _cli(farm, "log", record.id)
    assert stitch.returncode == 0 and "joined 2 file(s) by copy" in stitch.stdout and retried.name in stitch.stdout
    missing = _cli(farm, "log", record.id, "segment 9/9")
    assert missing.returncode == 2 and "has no piece 'segment 9/9'" in missing.stderr


def test_a_piece_log_is_bounded_and_kept_as_long_as_the_job(farm) -> None:
    from orchestrator.piecelog import MAX_LINE, MAX_LINES, PieceLog

    log = PieceLog(farm.redis, retention=120)
    for n in range(MAX_LINES + 100):
        log.append("bounded", "p", "n1", "INFO", f"line {n}")
    log.append("bounded", "p", "n1", "INFO", "x" * (MAX_LINE * 2))
    lines = log.read("bounded", "p")
    assert len(lines) == MAX_LINES and lines[0].endswith("line 101")  # the oldest went first
    assert len(lines[-1]) == MAX_LINE and lines[-1].endswith("…")
    assert 0 < farm.redis.ttl(log.key("bounded", "p")) <= 120


@pytest.mark.parametrize(
    "operation,field",
    [
        ({"op": "import_media", "paths": ["/etc/passwd"]}, "operations.0.paths.0"),
        ({"op": "import_media", "paths": ["/no/such/file.mov"]}, "operations.0.paths.0"),
        ({"op": "import_media", "paths": ["C:\\Windows\\win.ini"]}, "operations.0.paths.0"),
        ({"op": "apply_lut", "path": "/etc/luts/look.cube"}, "operations.0.path"),
        ({"op": "apply_lut", "path": "../../etc/look.cube"}, "operations.0.path"),
    ],
)
def test_edit_inputs_are_confined_to_the_media_roots(farm, operation: dict[str, Any], field: str) -> None:
    settle(farm)
    before = queued_messages(farm), len(farm.store.list(limit=10_000))
    spec = {"targets": [{"project": "Demo", "timeline": "Teaser"}], "operations": [operation]}
    with pytest.raises(jobs.SubmitRefused) as refused:
        jobs.submit_edit(farm, spec)
    assert refused.value.field == field and "is outside the media roots" in refused.value.reason
    # The same answer whether the file exists or not: nothing to learn about the hosts' files.
    assert "exist" not in refused.value.reason
    assert (queued_messages(farm), len(farm.store.list(limit=10_000))) == before


@pytest.mark.parametrize("op,key,name", [("import_media", "paths", "clip.mov"), ("apply_lut", "path", "look.cube")])
def test_a_refused_edit_input_says_the_same_of_a_file_that_exists_and_of_one_that_does_not(
    farm, tmp_path: Path, op: str, key: str, name: str
) -> None:
    outside = tmp_path / "elsewhere"  # beside the farm's home, outside its media roots
    outside.mkdir()
    there, gone = outside / name, outside / f"gone-{name}"
    there.write_bytes(b"\0" * 64)
    answers = []
    for path in (there, gone):
        value: Any = [str(path)] if key == "paths" else str(path)
        spec = {"targets": [{"project": "Demo", "timeline": "Teaser"}], "operations": [{"op": op, key: value}]}
        with pytest.raises(jobs.SubmitRefused) as refused:
            jobs.submit_edit(farm, spec)
        answers.append((refused.value.field, refused.value.reason.replace(str(path), "<path>")))
    assert answers[0] == answers[1]  # nothing to learn of the hosts' files from the answer


def test_edit_inputs_inside_the_media_roots_and_luts_of_resolve_are_accepted(farm) -> None:
    root = farm.settings.media_roots[0]
    spec = {"targets": [{"project": "Demo", "timeline": "Teaser"}], "dry_run": True,
            "operations": [{"op": "import_media", "paths": [str(root / "media" / "a.mov")]},
                           {"op": "apply_lut", "path": "Film Looks/Rec709 Kodak 2383.cube"}]}  # fmt: skip
    record = jobs.submit_edit(farm, spec)
    assert jobs.wait(farm, record.id, timeout=60).finished


def test_project_databases_only_on_configured_hosts(farm) -> None:
    with pytest.raises(jobs.SubmitRefused) as refused:
        jobs.submit_render(
            farm, {"project": "Demo", "timeline": "Main", "database": {"name": "Farm", "host": "10.9.9.9"}}
        )
    assert (
        refused.value.field == "database.host" and "'10.9.9.9' is not a project database host" in refused.value.reason
    )
    with pytest.raises(jobs.SubmitRefused) as refused:
        jobs.submit_edit(farm, {"targets": [{"project": "Demo", "database": {"name": "Farm", "host": "db.evil"}}],
                                "operations": [{"op": "add_marker", "frame": 1}]})  # fmt: skip
    assert refused.value.field == "targets.0.database.host"


def test_jobs_are_counted_and_listed_from_the_state_and_kind_indexes(farm) -> None:
    from orchestrator.kinds.edit import EditJob, EditPlan, EditSpec
    from orchestrator.models import TaskRecord
    from orchestrator.store import JobStore

    spec = EditSpec.model_validate({"targets": [{"project": "P"}], "operations": [{"op": "add_marker"}]})
    short = JobStore(farm.redis, retention=1, models=kinds.records)  # its finished records expire after a second
    before = short.counts()
    record = short.create(EditJob(kind="edit", spec=spec, plan=EditPlan(targets=1, known_nodes=[]),
                                  tasks=[TaskRecord(name="P/A", kind="edit")]))  # fmt: skip
    assert short.counts()["queued"] == before["queued"] + 1
    assert [r.id for r in short.list(state="queued", kind="edit")][:1] == [record.id]
    assert record.id not in {r.id for r in short.list(state="queued", kind="render")}
    short.apply(record.id, lambda rec: setattr(rec, "state", "succeeded"))
    counts = short.counts()
    assert counts["queued"] == before["queued"] and counts["succeeded"] >= before["succeeded"] + 1
    assert record.id in {r.id for r in short.list(state="succeeded", kind="edit", limit=1000)}
    deadline = time.monotonic() + 10
    while farm.redis.exists(short.key(record.id)):  # past its retention
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert short.counts()["succeeded"] == counts["succeeded"] - 1  # an expired record is no longer counted
    assert record.id not in {r.id for r in short.list(state="succeeded", limit=10_000)}
    assert farm.redis.zscore("rf:jobs", record.id) is None  # and the listing dropped it from every index


def test_what_is_on_a_timeline_is_published_by_its_render_and_an_edit_under_the_same_name_is_noticed(farm) -> None:
    timeline = {"project": "Demo", "timeline": "Main recut"}  # no other test renders or edits it
    submitted = time.time()
    first = run(
        farm, {**timeline, "tags": ["studio"], "frames": {"start": 86400, "end": 86447}, "output_name": "recut"}
    )
    assert first.state == "succeeded", first.errors
    seen = farm.catalog.content(None, "Demo", "Main recut")
    assert seen is not None and seen["node"] == "studio-1" and seen["at"] > submitted and len(seen["tracks"][0]) == 34
    lut = {"op": "apply_lut", "items": {"track": 1}, "path": "Film Looks/Rec709 Kodak 2383.cube"}
    edit = run(farm, {"targets": [timeline], "operations": [lut]}, kind="edit")
    assert edit.state == "succeeded", edit.errors
    changed = farm.catalog.content(None, "Demo", "Main recut")
    assert changed is not None and changed["fingerprint"] != seen["fingerprint"]  # same name, other content
    again = jobs.submit_render(farm, {**timeline, "tags": ["studio"], "frames": {"start": 86400, "end": 86447},
                                      "output_name": "recut2"})  # fmt: skip
    assert again.plan.content == changed["fingerprint"]  # compiled knowing what is on the timeline now
    assert jobs.wait(farm, again.id, timeout=120).state == "succeeded"
