"""A raw JSON-RPC MCP client, written from the 2026-07-28 specification and the Tasks extension.

The SDK's client cannot do Tasks, so the tests speak the wire themselves: every request
carries its own `_meta` envelope (protocol version, client capabilities, client info); over
streamable HTTP each POST also carries `MCP-Protocol-Version`, `Mcp-Method` and, for
`tools/call` and `tasks/*`, `Mcp-Name` (the tool name, the task id).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2

PROTOCOL = "2026-07-28"
TASKS = "io.modelcontextprotocol/tasks"
NAME_PARAM = {"tools/call": "name", "tasks/get": "taskId", "tasks/cancel": "taskId", "tasks/update": "taskId"}
SERVE = [sys.executable, "-m", "orchestrator.cli", "mcp"]


@contextlib.contextmanager
def http_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """`resolve-farm mcp --http` on a free loopback port; yields its URL once it listens, stops it after."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    with open(log, "w") as out:
        server = subprocess.Popen([*SERVE, "--http", f"127.0.0.1:{port}"], env=env, stdout=out,
                                  stderr=subprocess.STDOUT)  # fmt: skip
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx2.get(url)
                break
            except httpx2.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError(f"the MCP server did not listen on {url}: {log.read_text()}") from None
                time.sleep(0.1)  # not listening yet
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def envelope(tasks: bool, elicitation: bool = False) -> dict[str, Any]:
    """The per-request `_meta` of a 2026-07-28 client; `tasks`: declare the Tasks extension; `elicitation`: declare
    that it can answer forms."""
    capabilities: dict[str, Any] = {"extensions": {TASKS: {}}} if tasks else {}
    if elicitation:
        capabilities["elicitation"] = {"form": {}}
    return {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
        "io.modelcontextprotocol/clientInfo": {"name": "raw-test-client", "version": "1.0"},
    }


class RawClient:
    """One JSON-RPC exchange at a time: `request` returns the whole response (`result` or `error`)."""

    def __init__(self, tasks: bool = True) -> None:
        self.tasks = tasks
        self.elicitation = False  # declare that it answers forms (SEP-2322's `input_required`)
        self._ids = itertools.count(1)

    def body(self, method: str, params: dict[str, Any] | None = None, tasks: bool | None = None) -> dict[str, Any]:
        declared = self.tasks if tasks is None else tasks
        return {
            "jsonrpc": "2.0",
            "id": next(self._ids),
            "method": method,
            "params": {**(params or {}), "_meta": envelope(declared, self.elicitation)},
        }

    def request(self, method: str, params: dict[str, Any] | None = None, tasks: bool | None = None) -> dict[str, Any]:
        raise NotImplementedError

    # --- the calls the tests make -------------------------------------------------------

    def call_tool(self, name: str, arguments: dict[str, Any], tasks: bool | None = None) -> dict[str, Any]:
        return self.request("tools/call", {"name": name, "arguments": arguments}, tasks=tasks)

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self.request("tasks/get", {"taskId": task_id})

    def cancel_task(self, task_id: str, tasks: bool | None = None) -> dict[str, Any]:
        return self.request("tasks/cancel", {"taskId": task_id}, tasks=tasks)

    def update_task(self, task_id: str, responses: dict[str, Any], tasks: bool | None = None) -> dict[str, Any]:
        return self.request("tasks/update", {"taskId": task_id, "inputResponses": responses}, tasks=tasks)


class StdioClient(RawClient):
    """Newline-delimited JSON-RPC on a server subprocess's stdin/stdout."""

    def __init__(self, command: list[str], env: dict[str, str], tasks: bool = True, cwd: str | None = None) -> None:
        super().__init__(tasks)
        self.process = subprocess.Popen(command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, cwd=cwd)  # fmt: skip
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, args=(self.process.stdout, self._lines), daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    @staticmethod
    def _read(stream: Any, lines: queue.Queue[str | None]) -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    def _read_err(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def request(
        self, method: str, params: dict[str, Any] | None = None, tasks: bool | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        return self.exchange(self.body(method, params, tasks), timeout)

    def exchange(self, body: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """Send one message as given; for a request (with an id), wait for its response."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(body) + "\n")
        self.process.stdin.flush()
        if "id" not in body:
            return {}  # a notification: nothing comes back
        while True:
            line = self._lines.get(timeout=timeout)
            assert line is not None, f"the server closed stdout; stderr: {''.join(self.stderr)}"
            message = json.loads(line)
            if message.get("id") == body["id"]:
                return dict(message)  # notifications (no id) are skipped

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class HttpClient(RawClient):
    """One POST per request to a streamable HTTP endpoint; the answer as JSON or as an SSE stream."""

    def __init__(self, url: str, tasks: bool = True, headers: dict[str, str] | None = None) -> None:
        super().__init__(tasks)
        self.url = url
        self.http = httpx2.Client(timeout=60, headers=headers or {})
        self.name_override: str | None = None  # send this Mcp-Name instead of the right one

    def request(self, method: str, params: dict[str, Any] | None = None, tasks: bool | None = None) -> dict[str, Any]:
        body = self.body(method, params, tasks)
        headers = {
            "Accept": "application/json, text/event-stream",
            "Content-Type": "application/json",
            "MCP-Protocol-Version": PROTOCOL,
            "Mcp-Method": method,
        }
        if method in NAME_PARAM:
            headers["Mcp-Name"] = self.name_override or str(body["params"][NAME_PARAM[method]])
        response = self.http.post(self.url, json=body, headers=headers)
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            for line in response.text.splitlines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("id") == body["id"]:
                        return dict(message)
            raise AssertionError(f"no answer to request {body['id']} in the stream: {response.text[:500]}")
        return dict(response.json())

    def close(self) -> None:
        self.http.close()
