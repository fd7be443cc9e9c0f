"""The MCP server with no farm behind it: every tool says what is unreachable and what to do,
the server keeps serving, and it recovers by itself when the farm's Redis is back."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import farm_env
from mcp import Client
from mcp_raw import StdioClient
from mcp_types import INTERNAL_ERROR

from mcp_server.server import build_server
from orchestrator.farm import Farm
from orchestrator.local.redis_server import EmbeddedRedis, _free_port
from orchestrator.settings import FarmSettings

CALLS = [
    ("list_nodes", {}),
    ("get_job", {"job_id": "abc"}),
    ("list_jobs", {}),
    ("cancel_job", {"job_id": "abc"}),
    ("retry_job", {"job_id": "abc"}),
    ("wait_for_job", {"job_id": "abc", "timeout_seconds": 1}),
    ("render_timeline", {"project": "Demo", "timeline": "Main"}),
    ("batch_edit", {"targets": [{"project": "Demo"}], "operations": [{"op": "add_marker", "frame": 1}]}),
    ("inspect_resolve", {}),
]


def _calls(farm: Farm, calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    async def main() -> list[Any]:
        async with Client(build_server(farm)) as client:
            return [await client.call_tool(name, args) for name, args in calls]

    return asyncio.run(main())


def _dead_pid() -> int:
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    return done.pid


def _write_state(home: Path, state: dict[str, Any]) -> None:
    (home / "redis").mkdir(parents=True, exist_ok=True)
    (home / "redis" / "state.json").write_text(json.dumps(state))


def test_no_farm_ever_started(tmp_path: Path) -> None:
    with farm_env(tmp_path):
        results = _calls(Farm(FarmSettings()), CALLS)
    for (name, _), result in zip(CALLS, results, strict=True):
        text = result.content[0].text
        assert result.is_error, name
        assert "no farm is reachable" in text and "resolve-farm up" in text, (name, text)
        assert "RESOLVE_FARM_BROKER_URL" in text and "Traceback" not in text


@pytest.mark.parametrize("pid", ["dead", None])
def test_a_stale_local_address_is_recognised(tmp_path: Path, pid: str | None) -> None:
    port = _free_port()
    _write_state(tmp_path, {"port": port, **({"pid": _dead_pid()} if pid else {})})
    with farm_env(tmp_path):
        (result,) = _calls(Farm(FarmSettings()), [("list_nodes", {})])
    text = result.content[0].text
    assert result.is_error and f"127.0.0.1:{port}" in text and "stale" in text, text
    assert ("has exited" if pid else "was stopped") in text
    assert "resolve-farm up" in text


def test_a_live_redis_pid_is_not_stale(tmp_path: Path) -> None:
    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        server.start()
        try:
            assert server.stale() is None
        finally:
            server.stop()
        assert server.stale() is not None and "was stopped" in str(server.stale())


def test_an_unanswering_broker_url_is_named_without_its_password(tmp_path: Path) -> None:
    port = _free_port()
    with farm_env(tmp_path, RESOLVE_FARM_BROKER_URL=f"redis://:sekret@127.0.0.1:{port}/2"):
        (result,) = _calls(Farm(FarmSettings()), [("get_job", {"job_id": "abc"})])
    text = result.content[0].text
    assert result.is_error and f"127.0.0.1:{port}/2" in text and "RESOLVE_FARM_BROKER_URL" in text, text
    assert "sekret" not in text


def test_the_server_recovers_when_the_farm_comes_back_elsewhere(tmp_path: Path) -> None:
    """One session: the farm up, then gone, then back on another port; the server follows."""
    with farm_env(tmp_path):
        embedded = EmbeddedRedis(FarmSettings())
        embedded.start()
        farm = Farm(FarmSettings())
        try:

            async def main() -> list[Any]:
                async with Client(build_server(farm)) as client:
                    up = await client.call_tool("list_nodes", {})
                    embedded.stop()
                    gone = await client.call_tool("list_jobs", {})
                    _write_state(tmp_path, {})  # forget the port: the farm comes back on another one
                    embedded.start()
                    back = await client.call_tool("list_jobs", {})
                    return [up, gone, back]

            up, gone, back = asyncio.run(main())
        finally:
            embedded.stop()
    assert not up.is_error and up.structured_content == {"nodes": []}
    assert gone.is_error and "was stopped" in gone.content[0].text
    assert not back.is_error and back.structured_content["jobs"] == [], back.content[0].text


def test_stdio_server_without_a_farm_logs_one_line_per_failure(tmp_path: Path) -> None:
    """What a desktop client sees: tool errors it can act on; stderr holds one line each, no traceback."""
    with farm_env(tmp_path) as env:
        client = StdioClient([sys.executable, "-m", "orchestrator.cli", "mcp"], {**os.environ, **env}, tasks=False)
        try:
            first = client.call_tool("list_nodes", {})
            second = client.call_tool("get_job", {"job_id": "abc"})
        finally:
            client.close()
    for answer in (first, second):
        result = answer["result"]
        assert result["isError"] and "no farm is reachable" in result["content"][0]["text"], answer
    log = "".join(client.stderr)
    assert "Traceback" not in log
    lines = log.splitlines()
    assert all(line.startswith("WARNING:") and "no farm is reachable" in line for line in lines), log
    assert 2 <= len(lines) <= 3, log  # one per failed call, and the job watcher's once per outage


def test_tasks_without_a_farm_say_so(tmp_path: Path) -> None:
    """A client following a task while the farm is away is told why, as a JSON-RPC error."""
    with farm_env(tmp_path) as env:
        client = StdioClient([sys.executable, "-m", "orchestrator.cli", "mcp"], {**os.environ, **env}, tasks=True)
        try:
            submitted = client.call_tool("render_timeline", {"project": "Demo", "timeline": "Main"})
            got = client.get_task("0123456789abcdef")
            cancelled = client.cancel_task("0123456789abcdef")
        finally:
            client.close()
    assert submitted["result"]["isError"] and "taskId" not in submitted["result"]
    for answer in (got, cancelled):
        assert answer["error"]["code"] == INTERNAL_ERROR, answer
        assert "no farm is reachable" in answer["error"]["message"] and "resolve-farm up" in answer["error"]["message"]
