"""One trace per job: OpenTelemetry, off unless the standard `OTEL_*` variables turn it on.

`configure(service)` sets up this process's tracer provider once, from the environment: tracing is
on when `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`) or an OTLP endpoint is set
(`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), and `OTEL_SDK_DISABLED` is not
`true`. The SDK reads the rest itself: service name and resource attributes, sampler, batch delays,
the exporter's endpoint, headers and timeout. Celery's messages are traced by the SDK's Celery
instrumentation (a span for each send, one for each run, the context in the message's headers).

A job's trace: `jobs.submit` runs in a span, a child of the MCP request's (the `mcp` SDK opens it from
`traceparent` in the request's `_meta`) or a new root, and keeps its context on the record
(`JobRecord.trace`, a W3C `traceparent` carrier). Every message sent for the job is sent inside that
context and carries it, whichever process sends it (the submitter, a worker ending a piece, the
janitor), so every piece's spans join the job's trace, on any worker.

Note: a prefork worker traces in its pool processes only (`trace_worker`), set up after the fork as
the SDK asks: an exporter's connections and thread must not be shared across a fork. Its main
process (heartbeats, the janitor) sends untraced, but still with the job's carrier in the headers.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context, propagate, trace

from orchestrator.refusals import Refused

log = logging.getLogger(__name__)
TRACER = "resolve-farm"
EXPORTERS = ("otlp", "console", "none")
_configured: bool | None = None


class TelemetryRefused(Refused):
    """An `OTEL_*` variable asks for what this farm cannot do; `field` names the variable."""


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (see the module's docstring)."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = [e.strip() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()]
    if exporters:
        return exporters != ["none"]
    return bool(env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def configure(service: str, instance: str | None = None) -> bool:
    """Set up tracing in this process when the environment asks for it (once; later calls return the first
    answer); `service` names this kind of process unless `OTEL_SERVICE_NAME` does. True: tracing is on.

    Raises `TelemetryRefused` for an exporter or OTLP protocol the farm does not ship.
    """
    global _configured
    if _configured is not None:
        return _configured
    if not wanted():
        _configured = False
        return False
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    names = check()
    exporters = [_exporter(name) for name in names]
    resource = Resource.create({"service.instance.id": instance} if instance else {})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": service}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument(tracer_provider=provider)
    _configured = True
    log.info("tracing on: %s as %s", ", ".join(names), resource.attributes.get("service.name"))
    return True


def check() -> list[str]:
    """The exporters the environment names (`OTEL_TRACES_EXPORTER`, default `otlp`), each one the farm ships;
    refused naming the variable otherwise (an OTLP protocol other than http/protobuf included)."""
    names = [e.strip() for e in os.environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if e.strip()]
    for name in names:
        if name not in EXPORTERS:
            raise TelemetryRefused("OTEL_TRACES_EXPORTER", f"{name!r} is not one of {', '.join(EXPORTERS)}")
    if "otlp" in names:
        for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = os.environ.get(variable)
            if protocol:
                if protocol != "http/protobuf":
                    raise TelemetryRefused(variable, f"{protocol!r}: the farm exports OTLP over http/protobuf only")
                break
    return [name for name in names if name != "none"]


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


def flush(timeout_millis: int = 5000) -> None:
    """Export the spans this process holds now (a pool process about to exit: its exit skips `atexit`)."""
    provider = trace.get_tracer_provider()
    force_flush = getattr(provider, "force_flush", None)
    if _configured and force_flush is not None:
        force_flush(timeout_millis)


def trace_worker(prefork: bool, instance: str) -> None:
    """Trace this worker's tasks: in each pool process after its fork (prefork), else in this process now."""
    from celery.signals import worker_process_init, worker_process_shutdown

    if not wanted():
        return
    check()  # refused here, in the worker's own process, not in each pool process
    if not prefork:
        configure("resolve-farm-worker", instance)
        return
    worker_process_init.connect(lambda **_: configure("resolve-farm-worker", instance), weak=False)
    worker_process_shutdown.connect(lambda **_: flush(), weak=False)


def tracer() -> trace.Tracer:
    return trace.get_tracer(TRACER)


@contextlib.contextmanager
def span(name: str, ok: tuple[type[BaseException], ...] = (), **attributes: Any) -> Iterator[trace.Span]:
    """A span, current while the block runs, a child of the current one; attributes under `resolve_farm.`.
    An exception of `ok` (control flow: a Celery retry) ends it without an error, as its `outcome`."""
    named = {f"resolve_farm.{key}": value for key, value in attributes.items() if value is not None}
    with tracer().start_as_current_span(
        name, attributes=named, record_exception=False, set_status_on_exception=False
    ) as current:
        try:
            yield current
        except ok as exc:
            current.set_attribute("resolve_farm.outcome", type(exc).__name__)
            raise
        except BaseException as exc:
            current.record_exception(exc)
            current.set_status(trace.Status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise


def carrier() -> dict[str, str]:
    """The current trace context as W3C headers (`traceparent`, `tracestate`); empty when there is none."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return headers


@contextlib.contextmanager
def within(headers: dict[str, str]) -> Iterator[None]:
    """Run the block in the trace context `headers` carry (a job's); as it is when they carry none, or when the
    current span is of that trace already (a piece of the job: the nearer parent)."""
    current = trace.get_current_span().get_span_context()
    if not headers or (current.is_valid and trace.format_trace_id(current.trace_id) == trace_id(headers)):
        yield
        return
    token = context.attach(propagate.extract(headers))
    try:
        yield
    finally:
        context.detach(token)


def trace_id(headers: dict[str, str]) -> str | None:
    """The trace id (32 hex digits) that `headers` carry; None when they carry no valid context."""
    found = trace.get_current_span(propagate.extract(headers)).get_span_context() if headers else None
    return trace.format_trace_id(found.trace_id) if found is not None and found.is_valid else None
