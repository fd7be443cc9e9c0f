"""The Tasks extension over farm jobs, spoken by a raw JSON-RPC client over stdio and streamable HTTP."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import mcp_raw
import pytest
from farm_helpers import queued_messages, running_farm, settle
from mcp_raw import TASKS, HttpClient, RawClient, StdioClient
from mcp_types import HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY

from bridge.sim import framecode
from mcp_server.tasks_ext import input_requests, task_of
from orchestrator.farm import Farm

TASK_KEYS = {"taskId", "status", "statusMessage", "createdAt", "lastUpdatedAt", "ttlMs", "pollIntervalMs"}
SERVE = mcp_raw.SERVE


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    home = tmp_path_factory.mktemp("tasks")
    slow = {"env": {"RESOLVE_SIM_THROTTLE": str(home / "throttle")}}  # no file: full speed
    with running_farm(home, {"sim-1": slow, "sim-2": slow}) as (_local, farm):
        yield farm


@contextlib.contextmanager
def _throttled(farm: Farm, factor: float) -> Iterator[None]:
    """Every frame costs `factor` times more on both nodes while inside: a render stays visible mid-way."""
    throttle = farm.settings.home / "throttle"
    throttle.write_text(str(factor))
    try:
        yield
    finally:
        throttle.unlink()


def _env(farm: Farm) -> dict[str, str]:
    return {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url or ""}


def _stdio(farm: Farm, tasks: bool = True) -> StdioClient:
    return StdioClient(SERVE, _env(farm), tasks=tasks)


def _rendering(task: dict[str, Any]) -> bool:
    """The task says how far the render is and where it runs."""
    message = task["statusMessage"]
    return "%" in message and "frames" in message and "on sim-" in message


def _follow(
    client: RawClient, task_id: str, timeout: float = 120, until: Any = lambda task: task["status"] != "working"
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Poll tasks/get (at the task's poll interval) until `until(task)`, by default until it leaves `working`."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get_task(task_id)
        assert "result" in answer, answer
        task = answer["result"]
        seen.append(task)
        if until(task) or task["status"] != "working":
            return task, seen
        assert time.monotonic() < deadline, f"task {task_id} still working: {task}"
        time.sleep(min(task["pollIntervalMs"], 200) / 1000)  # the protocol's own pacing, shortened


def _iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def test_the_extension_is_advertised(farm: Farm) -> None:
    client = _stdio(farm)
    try:
        discovered = client.request("server/discover", {})
        prompt = client.request("prompts/get", {"name": "no_such_prompt"})
    finally:
        client.close()
    assert TASKS in discovered["result"]["capabilities"]["extensions"], discovered
    server = discovered["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]
    assert server["name"] == "resolve-farm" and server["version"] == version("resolve-farm")
    # The SDK alone answers -32603 "Internal server error": the request is at fault, not the server.
    assert prompt["error"]["code"] == -32602 and "no_such_prompt" in prompt["error"]["message"]


def test_a_client_without_the_extension_gets_the_plain_answer(farm: Farm) -> None:
    client = _stdio(farm, tasks=False)
    try:
        plain = client.call_tool("render_timeline", {"project": "Demo", "timeline": "Teaser", "output_name": "plain"})
        refused = client.request("tasks/get", {"taskId": "whatever"})
    finally:
        client.close()
    result = plain["result"]
    assert result.get("resultType", "complete") == "complete" and "taskId" not in result
    assert result["structuredContent"]["job_id"] and result["structuredContent"]["state"] == "queued"
    assert refused["error"]["code"] == MISSING_REQUIRED_CLIENT_CAPABILITY  # it did not declare the extension


def test_a_handshake_era_client_gets_the_plain_answer_even_when_it_declares_tasks(farm: Farm) -> None:
    """A 2025-11-25 session cannot carry `resultType`: no task for it, whatever it declared."""
    client = _stdio(farm)
    try:
        init = client.exchange({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {"extensions": {TASKS: {}}},
            "clientInfo": {"name": "legacy", "version": "1"}}})  # fmt: skip
        client.exchange({"jsonrpc": "2.0", "method": "notifications/initialized"})
        called = client.exchange({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "render_timeline", "arguments": {"project": "Demo", "timeline": "Teaser", "output_name": "old"}}})  # fmt: skip
    finally:
        client.close()
    assert init["result"]["protocolVersion"] == "2025-11-25", init
    result = called["result"]
    assert "taskId" not in result and not result["isError"], called
    assert result["structuredContent"]["job_id"] and result["structuredContent"]["state"] == "queued"


def test_a_task_survives_a_restart_of_the_server(farm: Farm) -> None:
    """The task is created durably before the answer; a new server process follows it to the end."""
    second = None
    try:
        # Slowed down until the new server has seen it rendering: however loaded the machine, the render
        # cannot finish while no server runs, nor before the new one reports its progress.
        with _throttled(farm, 50):
            first = _stdio(farm)
            try:
                answer = first.call_tool("render_timeline",
                                         {"project": "Demo", "timeline": "Main", "output_name": "task_main"})  # fmt: skip
            finally:
                first.close()  # the server that created the task is gone
            task = answer["result"]
            assert task["resultType"] == "task" and set(task) >= TASK_KEYS, task
            assert task["status"] == "working" and task["pollIntervalMs"] > 0
            assert farm.store.get(task["taskId"]).kind == "render"  # the job is in Redis: durable
            assert task["ttlMs"] >= farm.settings.job_retention * 1000
            assert abs(_iso(task["createdAt"]) - farm.store.get(task["taskId"]).created_at) < 0.01

            second = _stdio(farm)
            rendering = _follow(second, task["taskId"], until=_rendering)[0]
        assert rendering["status"] == "working" and _rendering(rendering), rendering
        final, _ = _follow(second, task["taskId"])
    finally:
        if second is not None:
            second.close()
    assert final["status"] == "completed" and set(final) >= TASK_KEYS
    result = final["result"]
    assert result["isError"] is False
    done = result["structuredContent"]
    assert done["job_id"] == task["taskId"] and done["state"] == "succeeded" and done["finished"]
    assert done["job"]["frames_done"] == done["job"]["frames_total"] == 2880
    assert framecode.read_file(done["job"]["outputs"][0]) == list(range(86400, 89280))
    assert _iso(final["lastUpdatedAt"]) >= _iso(task["lastUpdatedAt"])


def test_a_failed_job_is_a_tool_error_inside_a_completed_task(farm: Farm) -> None:
    client = _stdio(farm)
    try:
        answer = client.call_tool("batch_edit", {"targets": [{"project": "Demo", "timeline": "Teaser"}],
                                                 "operations": [{"op": "no_such_op"}]})  # fmt: skip
        task = answer["result"]
        assert task["resultType"] == "task", answer
        final, _ = _follow(client, task["taskId"])
    finally:
        client.close()
    assert final["status"] == "completed"
    assert final["result"]["isError"] is True and "failed" in final["result"]["content"][0]["text"]
    assert final["result"]["structuredContent"]["state"] == "failed"


def test_a_refused_submission_is_a_tool_error_not_a_task(farm: Farm) -> None:
    settle(farm)
    before = (len(farm.store.list(limit=10_000)), queued_messages(farm))
    client = _stdio(farm)
    try:
        answer = client.call_tool("render_timeline", {"project": "Demo", "timeline": "Nope"})
        unknown = client.get_task("0123456789abcdef")
    finally:
        client.close()
    assert answer["result"]["isError"] and "unknown timeline 'Nope'" in answer["result"]["content"][0]["text"]
    assert "taskId" not in answer["result"]
    assert unknown["error"]["code"] == -32602 and "no task" in unknown["error"]["message"]
    assert (len(farm.store.list(limit=10_000)), queued_messages(farm)) == before


def test_a_task_call_whose_output_name_is_taken_asks_first_and_the_answer_makes_the_task(farm: Farm) -> None:
    """Asked before any task exists (`input_required`, SEP-2322); the retry carrying the answer and the sealed
    state is answered with the task of a job rendering under the next free name."""
    root = farm.settings.storage_roots[0]
    (root / "task_taken.mov").write_bytes(b"an editor's cut")
    spec = {
        "project": "Demo",
        "timeline": "Main",
        "start_frame": 86400,
        "end_frame": 86447,
        "output_name": "task_taken",
    }
    client = _stdio(farm)
    client.elicitation = True
    try:
        asked = client.call_tool("render_timeline", spec)["result"]
        assert asked["resultType"] == "input_required", asked
        form = asked["inputRequests"]["output_exists"]
        assert form["method"] == "elicitation/create" and str(root / "task_taken.mov") in form["params"]["message"]
        answer = {"output_exists": {"action": "accept", "content": {"choice": "new_version"}}}
        retry = {"name": "render_timeline", "arguments": spec, "inputResponses": answer,
                 "requestState": asked["requestState"]}  # fmt: skip
        task = client.request("tools/call", retry)["result"]
        assert task["resultType"] == "task", task
        done, _ = _follow(client, task["taskId"])
        tampered = client.request("tools/call", {**retry, "requestState": asked["requestState"][:-4] + "AAAA"})
    finally:
        client.close()
    assert done["status"] == "completed" and done["result"]["structuredContent"]["job"]["outputs"] == [
        str(root / "task_taken_v2.mov")
    ]
    assert (root / "task_taken.mov").read_bytes() == b"an editor's cut"
    assert "error" in tampered or tampered["result"].get("isError"), tampered  # the state is sealed: no forged answer


def http_server(farm: Farm, log: Path) -> contextlib.AbstractContextManager[str]:
    return mcp_raw.http_server(_env(farm), log)


@pytest.fixture
def http_url(farm: Farm, tmp_path: Path) -> Iterator[str]:
    with http_server(farm, tmp_path / "mcp.log") as url:
        yield url


def test_a_task_survives_a_restart_of_the_http_server(farm: Farm, tmp_path: Path) -> None:
    with http_server(farm, tmp_path / "first.log") as url:
        client = HttpClient(url)
        try:
            answer = client.call_tool("batch_edit", {"targets": [{"project": "Demo"}], "dry_run": True,
                                                     "operations": [{"op": "set_clip_color", "items": {"track": 1},
                                                                     "color": "Navy"}]})  # fmt: skip
        finally:
            client.close()
    task = answer["result"]
    assert task["resultType"] == "task" and set(task) >= TASK_KEYS, answer
    assert task["status"] == "working"  # answered at once: batch_edit's wait_seconds is not waited under a task
    with http_server(farm, tmp_path / "second.log") as url:  # a new process, on another port
        client = HttpClient(url)
        try:
            final, _ = _follow(client, task["taskId"])
        finally:
            client.close()
    assert final["status"] == "completed" and final["result"]["isError"] is False
    done = final["result"]["structuredContent"]
    assert done["job_id"] == task["taskId"] and done["state"] == "succeeded" and done["finished"]
    items = [i for t in done["job"]["tasks"] for i in t["results"]]
    assert len(done["job"]["tasks"]) == 4 and items and all(i["change"] == "clip color -> Navy" for i in items)


def test_cancel_over_http(farm: Farm, http_url: str) -> None:
    client = HttpClient(http_url)
    try:
        answer = client.call_tool("render_timeline", {"project": "Demo", "timeline": "Main", "output_name": "task_cx"})
        task = answer["result"]
        assert task["resultType"] == "task" and task["status"] == "working", answer
        client.name_override = "some-other-task"
        mismatched = client.get_task(task["taskId"])
        client.name_override = None
        undeclared = client.cancel_task(task["taskId"], tasks=False)
        running = farm.store.get(task["taskId"]).state
        cancelled = client.cancel_task(task["taskId"])
        got = client.get_task(task["taskId"])
        again = client.cancel_task(task["taskId"])
        unknown = client.cancel_task("no-such-task")
    finally:
        client.close()
    assert mismatched["error"]["code"] == HEADER_MISMATCH and "mcp-name" in mismatched["error"]["message"]
    assert undeclared["error"]["code"] == MISSING_REQUIRED_CLIENT_CAPABILITY and running != "cancelled"
    # An empty ack, no task envelope: the cancelled status shows at the next tasks/get.
    assert set(cancelled["result"]) <= {"resultType", "_meta"} and cancelled["result"]["resultType"] == "complete"
    assert farm.store.get(task["taskId"]).state == "cancelled"
    assert got["result"]["status"] == "cancelled" and "result" not in got["result"]
    assert set(again["result"]) <= {"resultType", "_meta"} and again["result"]["resultType"] == "complete"  # idempotent
    assert unknown["error"]["code"] == -32602 and "no-such-task" in unknown["error"]["message"]


def test_update_is_acknowledged_and_gated(farm: Farm, http_url: str) -> None:
    """`tasks/update` is bound: an empty ack for a known task (keys no request asked for are ignored), -32602
    for an unknown one, -32021 for a client that did not declare the extension."""
    client = HttpClient(http_url)
    try:
        answer = client.call_tool("batch_edit", {"targets": [{"project": "Demo"}], "dry_run": True,
                                                 "operations": [{"op": "set_clip_color", "items": {"track": 1},
                                                                 "color": "Navy"}]})  # fmt: skip
        task = answer["result"]
        updated = client.update_task(task["taskId"], {"unknown-key": {"ignored": True}})
        unknown = client.update_task("no-such-task", {})
        undeclared = client.update_task(task["taskId"], {}, tasks=False)
        final, _ = _follow(client, task["taskId"])
    finally:
        client.close()
    assert task["resultType"] == "task", answer
    assert "result" in updated, updated
    assert set(updated["result"]) <= {"resultType", "_meta"} and updated["result"]["resultType"] == "complete"
    assert unknown["error"]["code"] == -32602
    assert undeclared["error"]["code"] == MISSING_REQUIRED_CLIENT_CAPABILITY
    assert undeclared["error"]["data"]["requiredCapabilities"]["extensions"] == {mcp_raw.TASKS: {}}
    assert final["status"] == "completed" and final["result"]["isError"] is False


def test_a_job_that_asks_is_an_input_required_task_with_its_unanswered_questions() -> None:
    from orchestrator import lifecycle
    from orchestrator.kinds.hold import HoldKind

    kind = HoldKind()
    spec = kind.parse({"seconds": 1, "questions": {"a": "First?", "b": "Second?"}})
    compiled = kind.compile(None, spec, "j1")  # type: ignore[arg-type]  (the hold kind reads nothing of the farm)
    record = kind.record(id="j1", kind="hold", spec=spec, plan=compiled.plan, tasks=compiled.pieces)
    lifecycle.submit(record)
    task = task_of(record, retention=60)
    assert task["status"] == "input_required" and "First?" in task["statusMessage"]
    assert set(input_requests(record)) == {"a", "b"}
    form = input_requests(record)["a"]
    assert form["method"] == "elicitation/create" and form["params"]["message"] == "First?"
    assert form["params"]["requestedSchema"]["properties"]["confirm"]["type"] == "boolean"
    lifecycle.answer(record, {"a": {"action": "accept", "content": {"confirm": True}}})
    assert set(input_requests(record)) == {"b"}  # answered keys are asked no more
