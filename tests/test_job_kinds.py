"""A job kind added from outside the farm's code (tests/plugins): compiled, run, waited on, shown."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import running_farm
from mcp import Client

from mcp_server.server import build_server
from orchestrator import cli, jobs, kinds

PLUGINS = str(Path(__file__).parent / "plugins")


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    sys.path.insert(0, PLUGINS)
    pythonpath = os.pathsep.join(filter(None, [PLUGINS, os.environ.get("PYTHONPATH")]))
    home = tmp_path_factory.mktemp("kinds")
    try:
        with running_farm(home, {"k-1": {}}, RESOLVE_FARM_PLUGINS="checksum_kind", PYTHONPATH=pythonpath) as (_, farm):
            yield farm
    finally:
        sys.path.remove(PLUGINS)


def test_a_kind_from_a_plugin_runs_with_its_dependencies(farm) -> None:
    root = farm.settings.storage_roots[0]
    files = []
    for i in range(3):
        path = root / "sums" / f"file{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(1000 + i))
        files.append(path)
    assert "checksum" in kinds.names()
    record = jobs.submit(farm, "checksum", {"files": [f"sums/{p.name}" for p in files], "manifest": "sums/all.json"})
    assert [t.state for t in record.tasks] == ["pending"] * 3 + ["waiting"]  # the manifest waits for the digests
    final = jobs.wait(farm, record.id, timeout=60)
    assert final.state == "succeeded", final.errors
    manifest = json.loads((root / "sums" / "all.json").read_text())
    assert manifest == {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    assert final.outputs == [str(root / "sums" / "all.json")]
    digests = [t for t in final.tasks if t.kind == "digest"]
    last_digest = max(t.finished_at or 0 for t in digests)
    assert final.task("manifest").started_at >= last_digest  # it ran only after every digest was done
    assert {t.node for t in final.tasks} == {"post"}  # placed on the post pool, as compiled


def test_a_plugin_kind_is_refused_like_any_other_and_shown_by_the_cli(farm) -> None:
    with pytest.raises(jobs.SubmitRefused, match=r"manifest: .*outside the storage roots"):
        jobs.submit(farm, "checksum", {"files": ["x"], "manifest": "/etc/passwd"})
    with pytest.raises(jobs.SubmitRefused, match="unknown job kind 'nope'"):
        jobs.submit(farm, "nope", {})
    root = farm.settings.storage_roots[0]
    (root / "one.bin").write_bytes(b"1")
    record = jobs.submit(farm, "checksum", {"files": ["one.bin"], "manifest": "one.json"})
    jobs.wait(farm, record.id, timeout=60)
    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.url}
    shown = subprocess.run([sys.executable, "-m", "orchestrator.cli", "status", record.id, "--json"],
                           capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["kind"] == "checksum" and data["state"] == "succeeded" and data["plan"]["manifest"].endswith("one.json")


def test_a_hold_job_runs_its_seconds_stops_at_a_cancel_and_fails_as_asked(farm) -> None:
    """The diagnostic kind (`orchestrator.kinds.hold`): what the conformance suite's task fixtures run."""
    from farm_helpers import wait_for_record
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="seconds"):
        jobs.submit(farm, "hold", {"seconds": -1})
    with pytest.raises(ValidationError, match="label"):
        jobs.submit(farm, "hold", {"seconds": 1, "label": "a/b\n"})
    held = jobs.wait(farm, jobs.submit(farm, "hold", {"seconds": 1.0, "label": "check"}).id, timeout=60)
    assert held.state == "succeeded" and held.progress == 100
    assert held.task("hold check").details["seconds"] >= 1.0  # (a label names the piece)
    failed = jobs.wait(farm, jobs.submit(farm, "hold", {"seconds": 0.2, "fail": "asked to fail"}).id, timeout=60)
    assert failed.state == "failed" and "asked to fail" in failed.errors[0]
    assert failed.task("hold").attempts == 1  # a permanent failure: not tried again
    long = jobs.submit(farm, "hold", {"seconds": 600})
    running = wait_for_record(farm, long.id, lambda r: 0 < r.progress < 100, "the hold reports progress")
    assert running.task("hold").node == "post"
    stopped = jobs.cancel(farm, long.id)
    assert stopped.state == "cancelled" and stopped.task("hold").state == "cancelled"


def test_a_job_that_asks_waits_in_redis_for_its_answers_then_runs_or_is_cancelled(farm) -> None:
    """`input_required` is a job state kept in the record: a store connected afresh (a server restarted) reads
    the question, and the answer, given through that store, lets the job run; a no cancels it."""
    from orchestrator.farm import Farm
    from orchestrator.settings import FarmSettings

    asked = jobs.submit(farm, "hold", {"seconds": 0.2, "questions": {"go": "Change 12,000 items?"}})
    assert asked.state == "input_required" and asked.task("confirm").state == "asking"
    assert jobs.wait(farm, asked.id, asks=True).state == "input_required"  # a wait that stops where it asks
    refused = jobs.submit(farm, "hold", {"seconds": 0.2, "questions": {"go": "Delete it all?"}})
    again = Farm(FarmSettings())  # another process's view of the same Redis
    assert again.store.get(asked.id).state == "input_required"
    assert jobs.answer(again, asked.id, {"go": {"action": "accept", "content": {"confirm": True}}}).state == "queued"
    done = jobs.wait(farm, asked.id, timeout=60)
    assert done.state == "succeeded" and done.task("hold").state == "done"
    # From the CLI: status shows the question; a key it does not ask is refused by name; no cancels the job.
    cli = [sys.executable, "-m", "orchestrator.cli"]
    status = subprocess.run([*cli, "status", refused.id], capture_output=True, text=True, timeout=60)
    assert "input_required" in status.stdout and "asks go: Delete it all?" in status.stdout, status.stdout
    wrong = subprocess.run([*cli, "answer", refused.id, "gone", "yes"], capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2 and "key: job" in wrong.stderr and "it asks: go" in wrong.stderr, wrong.stderr
    said = subprocess.run([*cli, "answer", refused.id, "go", "no"], capture_output=True, text=True, timeout=60)
    assert said.returncode == 0 and "cancelled" in said.stdout, said.stderr
    no = again.store.get(refused.id)
    assert no.state == "cancelled" and no.errors == ["confirm: not confirmed: Delete it all?"]
    assert no.task("hold").state == "cancelled" and no.task("hold").attempts == 0  # never ran


def _cli(farm, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.url}
    return subprocess.run([sys.executable, "-m", "orchestrator.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120, input=stdin)  # fmt: skip


def test_any_kind_is_submitted_and_listed_from_the_cli_and_listed_over_mcp(farm) -> None:
    """`resolve-farm submit KIND` reaches a plugin's kind with no face code: fields from --set or a spec file,
    refusals naming the field; `jobs --kind` and MCP `list_jobs(kind=...)` know it."""
    root = farm.settings.storage_roots[0]
    (root / "two.bin").write_bytes(b"22")
    done = _cli(farm, "submit", "checksum", "--set", 'files=["two.bin"]', "--set", "manifest=two.json", "--wait",
                "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert (
        record["kind"] == "checksum"
        and record["state"] == "succeeded"
        and record["plan"]["files"] == [str(root / "two.bin")]
    )
    piped = _cli(farm, "submit", "checksum", "--spec", "-", "--set", "priority=7", "--json",
                 stdin=json.dumps({"files": ["two.bin"], "manifest": "again.json"}))  # fmt: skip
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["spec"] == {"files": ["two.bin"], "manifest": "again.json", "priority": 7}
    listed = json.loads(_cli(farm, "jobs", "--kind", "checksum", "--json").stdout)
    assert {job["id"] for job in listed} >= {record["id"], json.loads(piped.stdout)["id"]}
    assert {job["kind"] for job in listed} == {"checksum"}

    for args, said in [
        (("submit", "nope"), "refused: kind: unknown job kind 'nope'"),
        (("submit", "checksum", "--set", "bogus=1"), "refused: --set bogus: checksum specs have no field 'bogus'"),
        (("submit", "checksum", "--set", "files"), "refused: --set: 'files': want KEY=VALUE"),
        (("submit", "checksum", "--set", "manifest=x.json"), "refused: spec: files: Field required"),
        (("jobs", "--kind", "nope"), "refused: --kind: no job kind 'nope'"),
    ]:
        refused = _cli(farm, *args)
        assert refused.returncode == 2 and said in " ".join(refused.stderr.split()), (args, refused.stderr)
    assert len(json.loads(_cli(farm, "jobs", "--kind", "checksum", "--json").stdout)) == len(listed)  # none queued

    async def list_jobs(kind: str) -> Any:
        async with Client(build_server(farm)) as client:
            return await client.call_tool("list_jobs", {"kind": kind})

    shown = asyncio.run(list_jobs("checksum")).structured_content["jobs"]
    assert {job["id"] for job in shown} >= {record["id"]} and {job["kind"] for job in shown} == {"checksum"}
    refused = asyncio.run(list_jobs("nope"))
    assert refused.is_error and "unknown job kind 'nope'" in refused.content[0].text


def test_a_plugin_kind_gets_a_cli_command_and_an_mcp_tool_from_its_face(farm) -> None:
    """The checksum plugin declares a face (`Face` in its own module) and nothing else: `resolve-farm checksum`
    and the MCP tool `checksum_files` submit it, typed and described as the face says, refusals naming the field."""
    root = farm.settings.storage_roots[0]
    (root / "three.bin").write_bytes(b"333")
    done = _cli(farm, "checksum", "--files", "three.bin", "--manifest", "face.json", "--wait", "--json")
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout)
    assert record["kind"] == "checksum" and record["state"] == "succeeded"
    assert json.loads((root / "face.json").read_text()) == {str(root / "three.bin"): hashlib.sha256(b"333").hexdigest()}
    refused = _cli(farm, "checksum", "--files", "three.bin", "--manifest", "m.json", "--priority", "12")
    assert refused.returncode == 2 and "refused: --priority: priority:" in refused.stderr, refused.stderr
    assert _cli(farm, "checksum", "--manifest", "m.json").returncode == 2  # --files is required

    async def session() -> tuple[Any, ...]:
        async with Client(build_server(farm)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            submitted = await client.call_tool("checksum_files", {"files": ["three.bin"], "manifest": "tool.json"})
            job_id = submitted.structured_content["job_id"]
            waited = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 60})
            outside = await client.call_tool("checksum_files", {"files": ["three.bin"], "manifest": "/etc/passwd"})
            listed = await client.call_tool("list_jobs", {"kind": "checksum", "limit": 200})
            return tools, submitted, waited, outside, listed

    tools, submitted, waited, outside, listed = asyncio.run(session())
    tool = tools["checksum_files"]
    assert tool.title == "Digest files and write a manifest" and "Example: checksum_files(" in tool.description
    schema = tool.input_schema
    assert schema["required"] == ["files", "manifest"] and set(schema["properties"]) == {
        "files", "manifest", "priority", "after"}  # fmt: skip
    assert all(prop.get("description") for prop in schema["properties"].values())
    assert schema["properties"]["priority"]["maximum"] == 9  # the face's constraints are the schema's
    assert tool.annotations.read_only_hint is False and tool.annotations.open_world_hint is False
    assert tool.output_schema and "job_id" in tool.output_schema["properties"]
    assert not submitted.is_error and waited.structured_content["state"] == "succeeded"
    job_id = submitted.structured_content["job_id"]
    assert submitted.structured_content["next"] == f"wait_for_job(job_id='{job_id}')"  # the kind's hook: followed
    assert (root / "tool.json").is_file()
    assert outside.is_error and "manifest:" in outside.content[0].text and "outside" in outside.content[0].text
    assert submitted.structured_content["job_id"] in {j["id"] for j in listed.structured_content["jobs"]}


def test_the_farms_own_kinds_are_reached_through_their_faces(farm, tmp_path: Path, monkeypatch, capsys) -> None:
    """`render`, `edit` and `proxies` are made from their kinds' faces like a plugin's: the CLI's positionals,
    renamed options (`--name`, `--start`), `--no-audio`, `KEY=VALUE` settings and an edit read from a file turn
    into the spec; bad values are refused naming the option or the file; the MCP tools carry the faces' arguments."""
    rendered = _cli(farm, "render", "Demo", "Teaser", "--start", "86400", "--end", "86401", "--no-audio", "--split",
                    "2", "--setting", "VideoQuality=Best", "--setting", "FormatWidth=1920", "--name", "faced",
                    "--priority", "3", "--json")  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    spec = json.loads(rendered.stdout)["spec"]
    assert spec["frames"] == {"start": 86400, "end": 86401} and spec["audio"] is False and spec["split"] == 2
    assert spec["settings"] == {"VideoQuality": "Best", "FormatWidth": 1920}
    assert (spec["output_name"], spec["priority"], spec["project"], spec["timeline"]) == ("faced", 3, "Demo", "Teaser")

    batch = tmp_path / "batch.yaml"
    batch.write_text("targets: [{project: Demo, timeline: Teaser}]\noperations: [{op: add_marker, frame: 86400}]\n")
    edited = _cli(farm, "edit", str(batch), "--dry-run", "--priority", "4", "--wait", "--json")
    assert edited.returncode == 0, edited.stderr
    record = json.loads(edited.stdout)
    assert record["kind"] == "edit" and record["state"] == "succeeded"
    assert record["spec"]["dry_run"] is True and record["spec"]["priority"] == 4

    bogus = tmp_path / "bogus.json"
    bogus.write_text(json.dumps({"targets": [{"project": "Demo"}], "operations": [{"op": "add_marker"}], "bogus": 1}))
    monkeypatch.setenv("RESOLVE_FARM_BROKER_URL", farm.url)
    before = len(farm.store.list(limit=200))
    for args, said in [
        (("render", "Demo", "Teaser", "--start", "86400"), "refused: --end: start_frame and end_frame go together"),
        (
            ("render", "Demo", "Teaser", "--setting", "VideoQuality"),
            "refused: --setting: 'VideoQuality': want KEY=VALUE",
        ),
        (("render", "Demo", "Teaser", "--split", "many"), "refused: --split: split.literal"),
        (("render", "Demo", "Teaser", "--setting", "MarkIn=1"), "refused: spec: settings: Value error, MarkIn"),
        (("edit", str(bogus)), f"refused: {bogus}: edit takes no 'bogus'"),
        (("edit", str(batch), "--targets", "{oops"), "refused: --targets: not JSON"),
        (("proxies", "Demo", "--priority", "12"), "refused: --priority: priority:"),
    ]:
        code = cli.main(list(args))  # in this process: a refusal is the same, without a Python start each
        stderr = capsys.readouterr().err
        assert code == 2 and said in " ".join(stderr.split()), (args, stderr)
    assert len(farm.store.list(limit=200)) == before  # nothing queued for them

    async def tools() -> dict[str, Any]:
        async with Client(build_server(farm)) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    listed = asyncio.run(tools())
    render, edit, proxies = listed["render_timeline"], listed["batch_edit"], listed["make_proxies"]
    assert {"database", "drp", "render_settings", "start_frame", "after"} <= set(render.input_schema["properties"])
    assert (
        render.input_schema["required"] == ["project", "timeline"] and "Example: render_timeline(" in render.description
    )
    assert {"wait_seconds", "priority", "after"} <= set(edit.input_schema["properties"])  # not followed: it waits
    assert "wait_seconds" not in render.input_schema["properties"]
    assert edit.annotations.destructive_hint and proxies.annotations.destructive_hint
    assert not render.annotations.destructive_hint
    jobs.cancel(farm, json.loads(rendered.stdout)["id"], wait=30)
