"""A local OTLP/HTTP collector for tests: keeps the spans that the farm's processes export, to read back."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


@dataclass(frozen=True)
class Span:
    """One exported span, with the resource of the process that exported it."""

    trace_id: str
    span_id: str
    parent_id: str
    name: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    error: bool

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", ""))

    @property
    def instance(self) -> str:
        """The exporting process's service instance (a worker's: its node name)."""
        return str(self.resource.get("service.instance.id", ""))


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


@dataclass
class Collector:
    """Serves `POST /v1/traces` (OTLP over http/protobuf) on a free loopback port."""

    spans: list[Span] = field(default_factory=list)
    endpoint: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> str:
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                collector._take(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        return self.endpoint

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def env(self) -> dict[str, str]:
        """What a process needs to export here at once (100 ms batches)."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        }

    def _take(self, request: ExportTraceServiceRequest) -> None:
        taken = []
        for batch in request.resource_spans:
            resource = {a.key: _value(a.value) for a in batch.resource.attributes}
            for scope in batch.scope_spans:
                for span in scope.spans:
                    taken.append(Span(
                        span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                        {a.key: _value(a.value) for a in span.attributes}, resource, span.status.code == 2,
                    ))  # fmt: skip
        with self._lock:
            self.spans.extend(taken)

    def of_trace(self, trace_id: str) -> list[Span]:
        with self._lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def wait_for(self, trace_id: str, enough: Callable[[list[Span]], bool], timeout: float = 30) -> list[Span]:
        """The trace's spans once `enough` says they are all in (exporters send in batches, as they end)."""
        deadline = time.monotonic() + timeout
        while True:
            spans = self.of_trace(trace_id)
            if enough(spans):
                return spans
            if time.monotonic() > deadline:
                names = sorted({s.name for s in spans})
                raise AssertionError(f"trace {trace_id} incomplete after {timeout:g}s: {len(spans)} spans: {names}")
            time.sleep(0.1)


def ancestors(span: Span, spans: list[Span]) -> list[Span]:
    """The spans above `span` among `spans`, nearest first (up to the first parent not among them)."""
    by_id = {s.span_id: s for s in spans}
    found = []
    while span.parent_id in by_id:
        span = by_id[span.parent_id]
        found.append(span)
    return found
