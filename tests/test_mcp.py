"""The MCP server: in-process sessions against a real local farm, a real stdio session, HTTP with tokens."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from farm_helpers import queued_messages, run, running_farm, settle
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from otlp_stub import ancestors

from bridge.sim import framecode
from mcp_server.server import build_server
from orchestrator import jobs, telemetry
from orchestrator.local.demo import verify

TOOLS = {"render_timeline", "batch_edit", "make_proxies", "get_job", "list_jobs", "cancel_job", "retry_job", "wait_for_job",
         "list_nodes", "inspect_resolve", "get_job_log", "answer_job"}  # fmt: skip


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory, collector):
    home = tmp_path_factory.mktemp("mcp")
    node = {"env": {"RESOLVE_SIM_THROTTLE": str(home / "throttle")}}  # no file: full speed
    traced = collector.env()  # every worker traces, as a farm with OTEL_* set does
    with running_farm(home, {"sim-1": node, "sim-2": node, "sim-3": node}, workers=traced) as (_local, farm):
        yield farm


def call(farm, *steps):
    """Run `steps(client)` coroutines against an in-process session; returns their results."""

    async def main() -> list[Any]:
        async with Client(build_server(farm)) as client:
            return [await step(client) for step in steps]

    return asyncio.run(main())


def test_tools_are_described_for_an_agent(farm) -> None:
    (tools,) = call(farm, lambda c: c.list_tools())
    assert {t.name for t in tools.tools} == TOOLS
    for tool in tools.tools:
        assert tool.description and "Example" in tool.description, tool.name
        for name, prop in tool.input_schema.get("properties", {}).items():
            assert prop.get("description"), f"{tool.name}.{name} has no description"
    render = next(t for t in tools.tools if t.name == "render_timeline").input_schema["properties"]
    assert render["format"]["anyOf"][0]["enum"] == ["mov", "mxf_op1a", "mp4", "tif", "dpx", "exr"]
    assert render["priority"]["maximum"] == 9


READ_ONLY = {"get_job", "get_job_log", "list_jobs", "wait_for_job", "list_nodes", "inspect_resolve"}


def test_tools_are_typed_titled_and_annotated(farm) -> None:
    (tools,) = call(farm, lambda c: c.list_tools())
    by_name = {t.name: t for t in tools.tools}
    for tool in tools.tools:
        hints = tool.annotations
        assert tool.title and hints is not None, tool.name
        assert None not in (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint, hints.open_world_hint)
        assert hints.read_only_hint is (tool.name in READ_ONLY), tool.name
        assert hints.open_world_hint is False  # nothing outside the farm is touched
        assert tool.output_schema and tool.output_schema["type"] == "object", tool.name
    assert by_name["cancel_job"].annotations.destructive_hint and by_name["cancel_job"].annotations.idempotent_hint
    assert by_name["batch_edit"].annotations.destructive_hint  # edits change timelines
    assert not by_name["render_timeline"].annotations.idempotent_hint  # each call is a new job
    assert not by_name["get_job"].annotations.destructive_hint
    job = by_name["get_job"].output_schema
    assert {"id", "state", "progress", "tasks", "outputs", "errors"} <= set(job["required"])


def test_views_use_the_cli_json_keys(farm) -> None:
    """An agent and a script reading `--json` see the same names for the same things."""
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "output_name": "keys"})

    async def steps(client):
        return await client.call_tool("get_job", {"job_id": record.id}), await client.call_tool("list_nodes", {})

    ((got, nodes),) = call(farm, steps)
    view, public = got.structured_content, farm.store.get(record.id).public()
    assert set(view) - {"frames_done", "frames_total", "stitch"} <= set(public)
    stitch = next(t for t in public["tasks"] if t["kind"] == "stitch")
    assert view["stitch"] == {"method": stitch["details"]["stitch"]} == {"method": "copy"}
    for key in ("id", "kind", "state", "outputs", "errors", "eta_seconds"):
        assert view[key] == public[key], key
    for shown, stored in zip(view["tasks"], public["tasks"], strict=True):
        assert set(shown) <= set(stored) and all(shown[k] == stored[k] for k in shown), shown
    cli_nodes = {n.name: n.public() for n in farm.nodes.all()}  # what `resolve-farm nodes --json` prints
    for node in nodes.structured_content["nodes"]:
        assert set(node) <= set(cli_nodes[node["name"]]), set(node) - set(cli_nodes[node["name"]])


def test_render_and_wait_with_progress(farm) -> None:
    """Progress notifications while the wait is open. The nodes render 40x slower until the first notification
    that names a busy node has arrived: on a loaded machine the render could otherwise be over before the
    wait began, and a finished job has no progress to report."""
    progress: list[tuple[float, float | None, str | None]] = []
    throttle = farm.settings.home / "throttle"
    throttle.write_text("40")

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, total, message))
        if message and "on sim-" in message:
            throttle.unlink(missing_ok=True)

    async def submit(client):
        return await client.call_tool(
            "render_timeline", {"project": "Demo", "timeline": "Social", "output_name": "mcp_social"}
        )

    (submitted,) = call(farm, submit)
    answer = submitted.structured_content
    assert not submitted.is_error and answer["state"] == "queued"
    assert answer["plan"]["segments"] == 3 and sorted(answer["plan"]["eligible_nodes"]) == ["sim-1", "sim-2", "sim-3"]

    async def wait(client):
        return await client.call_tool("wait_for_job", {"job_id": answer["job_id"], "timeout_seconds": 120},
                                      progress_callback=on_progress)  # fmt: skip

    try:
        (waited,) = call(farm, wait)
    finally:
        throttle.unlink(missing_ok=True)
    final = waited.structured_content
    assert final["finished"] and final["state"] == "succeeded", final
    assert final["frames_done"] == final["frames_total"] == 720 and final["progress"] == 100.0
    assert len(progress) >= 2 and progress[-1][0] == 100.0 and all(t == 100.0 for _, t, _ in progress)
    assert [p for p, _, _ in progress] == sorted(p for p, _, _ in progress)
    assert any(m and "on sim-" in m for _, _, m in progress)  # the message names busy nodes
    assert framecode.read_file(final["outputs"][0]) == list(range(86400, 86400 + 720))


def test_estimate_once_history_exists(farm) -> None:
    """A render remembers its nodes' speeds: the next render's answer carries an estimate from them."""
    done = run(farm, {"project": "Demo", "timeline": "Teaser", "output_name": "history"})
    assert farm.speeds.speeds(done.plan.known_nodes, done.plan.speed_key)
    (first,) = call(
        farm, lambda c: c.call_tool("render_timeline", {"project": "Demo", "timeline": "Teaser", "output_name": "est"})
    )
    estimate = first.structured_content["estimate_seconds"]
    assert estimate is not None and 0 < estimate < 120


def test_job_views_and_resources(farm) -> None:
    async def steps(client):
        # A job of its own, whatever ran before: the listing's first succeeded job may be an edit, with no outputs.
        answer = await client.call_tool(
            "render_timeline", {"project": "Demo", "timeline": "Teaser", "output_name": "views"}
        )
        job_id = answer.structured_content["job_id"]
        await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 120})
        listed = await client.call_tool("list_jobs", {"state": "succeeded", "limit": 5})
        assert job_id in [j["id"] for j in listed.structured_content["jobs"]]
        got = await client.call_tool("get_job", {"job_id": job_id})
        resource = await client.read_resource(f"job://{job_id}")
        nodes = await client.read_resource("farm://nodes")
        node_tool = await client.call_tool("list_nodes", {})
        return job_id, got, resource, nodes, node_tool

    ((job_id, got, resource, nodes, node_tool),) = call(farm, steps)
    assert got.structured_content["id"] == job_id and got.structured_content["state"] == "succeeded"
    assert {"name", "node", "state", "attempts", "frames_done", "frames_total"} <= set(
        got.structured_content["tasks"][0]
    )
    record = json.loads(resource.contents[0].text)
    assert record["id"] == job_id and record["outputs"]
    names = {n["name"] for n in json.loads(nodes.contents[0].text)}
    assert names == {"sim-1", "sim-2", "sim-3", "post"}
    listed = {n["name"]: n for n in node_tool.structured_content["nodes"]}
    assert listed["sim-1"]["resolve"]["product"] == "DaVinci Resolve Studio" and listed["sim-1"]["up"]


def test_refusals_are_tool_errors_and_queue_nothing(farm) -> None:
    settle(farm)
    before = (len(farm.store.list(limit=10_000)), queued_messages(farm))
    bad_calls = [
        ("render_timeline", {"project": "Demo", "timeline": "Nope"}, "unknown timeline 'Nope'"),
        ("render_timeline", {"project": "Demo", "timeline": "Main", "priority": 42}, "priority"),
        ("render_timeline", {"project": "Demo", "timeline": "Main", "output_dir": "../../etc"}, "'..' is not allowed"),
        (
            "render_timeline",
            {"project": "Demo", "timeline": "Main", "start_frame": 90000, "end_frame": 90001},
            "outside timeline",
        ),
        (
            "render_timeline",
            {"project": "Demo", "timeline": "Main", "start_frame": 86400},
            "start_frame and end_frame go together",
        ),
        ("render_timeline", {"project": "Demo", "timeline": "Main", "format": "avi"}, "format"),
        ("render_timeline", {"timeline": "Main"}, "project"),
        (
            "batch_edit",
            {"targets": [{"project": "Nope", "timeline": "Main"}], "operations": [{"op": "add_marker", "frame": 1}]},
            "unknown project",
        ),
        ("get_job", {"job_id": "nope"}, "no job 'nope'"),
        ("retry_job", {"job_id": "nope"}, "no job 'nope'"),
        ("render_timeline", {"project": "Demo" * 10_000, "timeline": "\x00"}, "project"),
        ("no_such_tool", {}, "no_such_tool"),
    ]

    async def steps(client):
        return [await client.call_tool(name, args) for name, args, _ in bad_calls]

    (results,) = call(farm, steps)
    for (name, _, reason), result in zip(bad_calls, results, strict=True):
        text = result.content[0].text
        assert result.is_error, name
        assert reason in text, (name, text)
        assert "Traceback" not in text
    assert (len(farm.store.list(limit=10_000)), queued_messages(farm)) == before
    (alive,) = call(farm, lambda c: c.call_tool("list_nodes", {}))
    assert not alive.is_error  # nothing crashed the server


def test_a_taken_output_name_is_asked_about_where_the_client_can_answer_and_refused_where_not(farm) -> None:
    """A 2026-07-28 client that declared elicitation answers an `input_required` form (the SDK's client drives
    the retry); a handshake-era one is asked in the call; one that declared neither is refused, the refusal
    naming `overwrite`. Cancel queues nothing; the next version is free; overwrite keeps the name."""
    from mcp_types import ElicitResult

    root = farm.settings.storage_roots[0]
    for name in ("asked_plain", "asked_cancel", "asked_version", "asked_over"):
        (root / f"{name}.mov").write_bytes(b"an editor's cut")
    spec = {"project": "Demo", "timeline": "Main", "start_frame": 86400, "end_frame": 86447}
    asked: list[str] = []

    def answering(choice: str):
        async def callback(context, params) -> ElicitResult:
            asked.append(params.message)
            return ElicitResult(action="accept", content={"choice": choice})

        return callback

    async def main() -> dict[str, Any]:
        results = {}
        async with Client(build_server(farm)) as plain:  # no elicitation declared
            results["plain"] = await plain.call_tool("render_timeline", {**spec, "output_name": "asked_plain"})
        for name, mode, choice in (("asked_cancel", "auto", "cancel"), ("asked_version", "auto", "new_version"),
                                   ("asked_over", "legacy", "overwrite")):  # fmt: skip
            async with Client(build_server(farm), mode=mode, elicitation_callback=answering(choice)) as client:
                results[name] = await client.call_tool("render_timeline", {**spec, "output_name": name})
        return results

    settle(farm)
    before = len(farm.store.list(limit=10_000))
    results = asyncio.run(main())
    plain = results["plain"].content[0].text
    assert results["plain"].is_error and "overwrite" in plain and "asked_plain_v2" in plain, plain
    assert results["asked_cancel"].is_error and "not submitted" in results["asked_cancel"].content[0].text
    assert len(asked) == 3 and all("exists" in message and "new_version" in message for message in asked), asked
    version, over = results["asked_version"].structured_content, results["asked_over"].structured_content
    assert not results["asked_version"].is_error and version["plan"]["output"] == str(root / "asked_version_v2")
    assert not results["asked_over"].is_error and over["plan"]["output"] == str(root / "asked_over")
    assert len(farm.store.list(limit=10_000)) == before + 2  # the refusal and the cancel queued nothing
    for answer in (version, over):
        assert jobs_done(farm, answer["job_id"]).state == "succeeded"
    assert (root / "asked_over.mov").read_bytes() != b"an editor's cut"  # replaced: the user said so
    assert (root / "asked_version.mov").read_bytes() == b"an editor's cut" and (root / "asked_version_v2.mov").exists()


def jobs_done(farm, job_id: str):
    from orchestrator import jobs

    return jobs.wait(farm, job_id, timeout=120)


def test_a_job_that_asks_shows_its_questions_and_is_answered_with_answer_job(farm) -> None:
    from orchestrator import jobs

    asking = jobs.submit(farm, "hold", {"seconds": 0.2, "questions": {"go": "Change 12,000 items?"}})

    async def steps(client):
        return (await client.call_tool("get_job", {"job_id": asking.id}),
                await client.call_tool("answer_job", {"job_id": asking.id, "answers": {"nope": True}}),
                await client.call_tool("answer_job", {"job_id": asking.id, "answers": {"go": True}}))  # fmt: skip

    ((shown, wrong, answered),) = call(farm, steps)
    view = shown.structured_content
    assert view["state"] == "input_required" and view["asking"] == {"go": "Change 12,000 items?"}
    assert wrong.is_error and "answers.nope" in wrong.content[0].text and "it asks: go" in wrong.content[0].text
    assert not answered.is_error and answered.structured_content["state"] in ("queued", "running", "succeeded")
    assert jobs_done(farm, asking.id).state == "succeeded"


def test_an_agent_is_asked_to_confirm_a_large_batch_edit_and_answers(farm) -> None:
    """`batch_edit(confirm_over=...)` answers once the job asks (not after `wait_seconds`), `wait_for_job` returns
    at once on a job that asks, and `answer_job` lets it go on."""
    ops = [{"op": "add_marker", "frame": 72, "color": "Pink", "name": "agent confirmed"}]
    targets = [{"project": "Demo", "timeline": "Teaser"}, {"project": "Demo", "timeline": "Social"}]

    async def steps(client):
        edit = await client.call_tool("batch_edit", {"targets": targets, "operations": ops, "confirm_over": 1,
                                                     "wait_seconds": 60})  # fmt: skip
        job_id = edit.structured_content["job_id"]
        followed = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 3600})
        await client.call_tool("answer_job", {"job_id": job_id, "answers": {"confirm": True}})
        done = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 120})
        return edit, followed, done

    ((edit, followed, done),) = call(farm, steps)
    asked = edit.structured_content["job"]
    assert asked["state"] == "input_required" and asked["asking"]["confirm"].startswith("Apply 2 change(s)"), asked
    assert followed.structured_content["note"] == "the job asks: answer with answer_job"
    assert done.structured_content["finished"] and done.structured_content["state"] == "succeeded"


def test_wait_timeout_and_cancelled_wait_leave_the_job_running(farm) -> None:
    async def steps(client):
        submitted = await client.call_tool(
            "render_timeline", {"project": "Demo", "timeline": "Main", "output_name": "mcp_main"}
        )
        job_id = submitted.structured_content["job_id"]
        short = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 0.5})
        with anyio.move_on_after(1.0):  # the client gives up on the wait: cancels its request
            await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 60})
        after = await client.call_tool("get_job", {"job_id": job_id})
        final = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 120})
        return short, after, final

    ((short, after, final),) = call(farm, steps)
    assert short.structured_content["finished"] is False and "still running" in short.structured_content["note"]
    assert after.structured_content["state"] in ("running", "stitching", "queued")
    assert final.structured_content["state"] == "succeeded"
    assert verify(
        final.structured_content["outputs"][0], {"frames": {"start": 86400, "end": 89279}, "fps": 24, "audio": True}
    )["exact"]


def test_cancel_and_retry(farm) -> None:
    async def steps(client):
        submitted = await client.call_tool(
            "render_timeline", {"project": "Demo", "timeline": "Main", "output_name": "mcp_cancel"}
        )
        job_id = submitted.structured_content["job_id"]
        with anyio.fail_after(30):  # cancelled once it really renders
            while not any(t["state"] == "running" and t["frames_done"] for t in
                          (await client.call_tool("get_job", {"job_id": job_id})).structured_content["tasks"]):  # fmt: skip
                await anyio.sleep(0.05)
        cancelled = await client.call_tool("cancel_job", {"job_id": job_id})
        retried = await client.call_tool("retry_job", {"job_id": job_id})
        final = await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 120})
        return cancelled, retried, final

    ((cancelled, retried, final),) = call(farm, steps)
    assert cancelled.structured_content["state"] == "cancelled"
    assert retried.structured_content["state"] == "queued"
    assert final.structured_content["state"] == "succeeded", final.structured_content["errors"]


def test_batch_edit_dry_run_answers_with_the_report(farm) -> None:
    (result,) = call(farm, lambda c: c.call_tool("batch_edit", {
        "targets": [{"project": "Demo", "timeline": "Teaser"}],
        "operations": [{"op": "set_clip_color", "items": {"track": 1}, "color": "Navy"}], "dry_run": True}))  # fmt: skip
    answer = result.structured_content
    assert answer["finished"] and answer["state"] == "succeeded"
    items = answer["job"]["tasks"][0]["results"]
    assert items and all(i["dry_run"] and i["change"] == "clip color -> Navy" for i in items)


def test_inspect_resolve(farm) -> None:
    (result,) = call(farm, lambda c: c.call_tool("inspect_resolve", {"node": "sim-2"}))
    answer = result.structured_content
    assert answer["live"] and answer["node"] == "sim-2"
    timelines = answer["catalog"]["databases"]["Local Database"]["Demo"]
    assert timelines["Main"]["fps"] == 24.0 and timelines["Main"]["width"] == 1920
    assert "ProRes422HQ" in answer["catalog"]["render"]["codecs"]["mov"].values()
    (bad,) = call(farm, lambda c: c.call_tool("inspect_resolve", {"node": "ghost"}))
    assert bad.is_error and "no Resolve node named 'ghost'" in bad.content[0].text


def test_subscribed_client_hears_a_job_progress(farm) -> None:
    async def steps(client):
        submitted = await client.call_tool(
            "render_timeline", {"project": "Demo", "timeline": "Social", "output_name": "mcp_sub"}
        )
        uri = f"job://{submitted.structured_content['job_id']}"
        events = []
        async with client.listen(resource_subscriptions=[uri]) as subscription:
            with anyio.move_on_after(30):
                async for event in subscription:
                    events.append(event)
                    record = json.loads((await client.read_resource(uri)).contents[0].text)
                    if record["state"] == "succeeded":
                        break
        return uri, events

    ((uri, events),) = call(farm, steps)
    assert len(events) >= 2 and all(getattr(e, "uri", None) == uri for e in events)


# --- real transports -------------------------------------------------------------------


def _env(farm) -> dict[str, str]:
    return {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url}


def test_stdio_session(farm) -> None:
    """A desktop client's way in: `resolve-farm mcp` as a subprocess speaking on stdio."""
    params = StdioServerParameters(command=sys.executable, args=["-m", "orchestrator.cli", "mcp"], env=_env(farm))
    progress: list[float] = []

    async def main():
        async with Client(params) as client:
            tools = await client.list_tools()
            submitted = await client.call_tool(
                "render_timeline", {"project": "Demo", "timeline": "Main", "output_name": "stdio_main"}
            )

            async def on_progress(value: float, total: float | None, message: str | None) -> None:
                progress.append(value)

            waited = await client.call_tool("wait_for_job", {"job_id": submitted.structured_content["job_id"],
                                                             "timeout_seconds": 120}, progress_callback=on_progress)  # fmt: skip
            return tools, waited

    tools, waited = asyncio.run(main())
    assert {t.name for t in tools.tools} == TOOLS
    final = waited.structured_content
    assert final["state"] == "succeeded" and len(progress) >= 2 and progress[-1] == 100.0
    assert framecode.read_file(final["outputs"][0]) == list(range(86400, 89280))


def test_one_trace_per_job(farm, collector) -> None:
    """The agent's `traceparent` names the job's trace, and it links the tool call to every piece on every worker
    process (its claim, its Resolve calls, its proof) and to the stitch; `get_job` and `status` name it."""
    trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
    env = {**_env(farm), **collector.env()}
    params = StdioServerParameters(command=sys.executable, args=["-m", "orchestrator.cli", "mcp"], env=env)

    async def main():
        async with Client(params) as client:
            submitted = await client.call_tool(
                "render_timeline", {"project": "Demo", "timeline": "Main", "output_name": "traced", "overwrite": True},
                meta={"traceparent": f"00-{trace_id}-{client_span}-01"},
            )  # fmt: skip
            job_id = submitted.structured_content["job_id"]
            await client.call_tool("wait_for_job", {"job_id": job_id, "timeout_seconds": 120})
            return (await client.call_tool("get_job", {"job_id": job_id})).structured_content

    job = asyncio.run(main())
    assert job["state"] == "succeeded" and job["trace_id"] == trace_id
    record = farm.store.get(job["id"])
    ran = [t for t in record.tasks if t.node]
    assert len({t.node for t in ran}) >= 2  # pieces on several worker processes

    def complete(spans) -> bool:
        names = {s.name for s in spans}
        return {f"piece {t.name}" for t in ran} <= names and "place output" in names

    spans = collector.wait_for(trace_id, complete)
    by_id = {s.span_id: s for s in spans}
    (call,) = [s for s in spans if s.name == "tools/call render_timeline"]
    assert call.parent_id == client_span and call.service == "resolve-farm-mcp"
    (submit,) = [s for s in spans if s.name == "submit render"]
    assert submit.parent_id == call.span_id and submit.attributes["resolve_farm.job"] == record.id
    orphans = [s.name for s in spans if s is not call and s.parent_id not in by_id]
    assert not orphans, f"spans whose parent is not in the job's trace: {orphans}"

    def under(span) -> set[str]:
        found, todo = set(), [span.span_id]
        while todo:
            parent = todo.pop()
            for child in (s for s in spans if s.parent_id == parent):
                found.add(child.name)
                todo.append(child.span_id)
        return found

    for piece in ran:
        (span,) = [
            s for s in spans if s.name == f"piece {piece.name}" and s.attributes.get("resolve_farm.outcome") == "output"
        ]
        assert span.instance == piece.node and not span.error  # exported by the worker that ran it
        assert submit in ancestors(span, spans)  # sent in the job's trace, by whichever process
        inside = under(span)
        assert {"claim", "perform"} <= inside, (piece.name, inside)
        if piece.kind == "stitch":
            assert {"join by copy", "proof of joined file", "place output"} <= inside
        elif piece.kind in ("segment", "render"):
            assert {"resolve start_render", "resolve render", "proof of piece"} <= inside
    assert len({s.instance for s in spans if s.service == "resolve-farm-worker"}) >= 3  # nodes and the post worker
    sent_by_workers = [s for s in spans if s.name.startswith("apply_async/") and s.service == "resolve-farm-worker"]
    assert sent_by_workers  # a pulled render's next pieces are sent as pieces end...
    for sent in sent_by_workers:  # ...each under the piece that sent it
        assert any(a.name.startswith("piece ") for a in ancestors(sent, spans)), sent.name

    shown = subprocess.run([sys.executable, "-m", "orchestrator.cli", "status", record.id], capture_output=True,
                           text=True, env=_env(farm), timeout=60)  # fmt: skip
    assert f"trace: {trace_id}" in shown.stdout, shown.stdout + shown.stderr


def test_a_job_keeps_its_trace_whoever_sends_its_pieces(farm, collector) -> None:
    """A job's pieces join its trace when a process that traces nothing sends them (this one), and when a worker
    busy with another job's trace does (a job that runs after another is sent by the other's last piece)."""
    first, second = secrets.token_hex(16), secrets.token_hex(16)
    spec = {"project": "Demo", "timeline": "Social", "overwrite": True}
    throttle = farm.settings.home / "throttle"
    throttle.write_text("40")  # the first job runs until the second waits for it
    try:
        with telemetry.within(_traceparent(first)):
            a = jobs.submit_render(farm, {**spec, "output_name": "traced_a"})
        with telemetry.within(_traceparent(second)):
            b = jobs.submit_render(farm, {**spec, "output_name": "traced_b"}, after=[a.id])
    finally:
        throttle.unlink(missing_ok=True)
    assert b.state == "waiting" and (a.trace_id, b.trace_id) == (first, second)
    assert jobs.wait(farm, b.id, timeout=120).state == "succeeded"
    for job, trace_id, other in ((a, first, b), (b, second, a)):
        ran = [t for t in farm.store.get(job.id).tasks if t.node]

        def complete(spans, ran=ran) -> bool:
            return {f"piece {t.name}" for t in ran} <= {s.name for s in spans}

        spans = collector.wait_for(trace_id, complete)
        assert not [s for s in spans if s.attributes.get("resolve_farm.job") == other.id], "another job's spans"
        assert {s.attributes.get("resolve_farm.job") for s in spans if s.name.startswith("piece ")} == {job.id}


def _traceparent(trace_id: str) -> dict[str, str]:
    return {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_http_with_tokens(farm, tmp_path: Path) -> None:
    port = _free_port()
    token = "farm-token-123456"
    env = {**_env(farm), "RESOLVE_FARM_MCP_TOKENS": f"other-token,{token}"}
    log = tmp_path / "mcp.log"
    with open(log, "w") as out:
        server = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "mcp", "--http", f"127.0.0.1:{port}"],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status = httpx2.post(url, json={}).status_code
                break
            except httpx2.TransportError:
                assert time.monotonic() < deadline and server.poll() is None, log.read_text()
                time.sleep(0.2)
        assert status == 401  # no token
        assert httpx2.post(url, json={}, headers={"Authorization": "Bearer wrong"}).status_code == 401

        async def main():
            http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60)
            async with Client(streamable_http_client(url, http_client=http)) as client:
                return await client.call_tool("list_nodes", {})

        answer = asyncio.run(main())
        assert not answer.is_error and {n["name"] for n in answer.structured_content["nodes"]} >= {"sim-1"}
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert token not in log.read_text()  # never logged


def test_http_refuses_an_open_address_without_tokens(farm) -> None:
    env = {k: v for k, v in _env(farm).items() if k != "RESOLVE_FARM_MCP_TOKENS"}
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "mcp", "--http", f"0.0.0.0:{_free_port()}"],
                          env=env, capture_output=True, text=True, timeout=30)  # fmt: skip
    assert done.returncode == 2 and "without a token" in done.stderr


def test_a_job_log_through_mcp(farm) -> None:
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": "mcp_log"})

    async def steps(client):
        return (await client.call_tool("get_job_log", {"job_id": record.id, "piece": "stitch"}),
                await client.call_tool("get_job_log", {"job_id": record.id, "piece": "nope"}))  # fmt: skip

    ((one, missing),) = call(farm, steps)
    lines = one.structured_content["pieces"]["stitch"]
    assert not one.is_error and any("joined 2 file(s) by copy" in line for line in lines)
    assert missing.is_error and "has no piece 'nope'" in missing.content[0].text


def test_the_conformance_fixtures_are_served_on_loopback_http_only(tmp_path: Path) -> None:
    """`--conformance` adds the conformance suite's fixture tools (`.ci/conformance.py` runs the suite against
    them): never on an address other machines reach, nor on stdio, where a desktop client would list them."""
    env = {**os.environ, "RESOLVE_FARM_HOME": str(tmp_path), "RESOLVE_FARM_BROKER_URL": "redis://127.0.0.1:1/0"}
    for args in (["--http", "0.0.0.0:8799", "--conformance"], ["--conformance"]):
        done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "mcp", *args], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2 and "--conformance" in done.stderr, (args, done.stderr)
