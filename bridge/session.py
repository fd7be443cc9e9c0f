"""One face for the rest of the farm: `connect(settings)` and the `Session` it returns."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import trace

from bridge import install, native, ops
from bridge.errors import (
    BridgeError,
    ConnectError,
    OperationError,
    RenderCancelled,
    RenderFailed,
)
from bridge.settings import BridgeSettings

if TYPE_CHECKING:
    from bridge.fallback import Helper

log = logging.getLogger(__name__)
SIM_SCRIPT_API = Path(__file__).with_name("sim") / "scriptapi"
IMAGE_SEQUENCE_SETTLE = 2.0  # seconds at 100% after which a finished image sequence counts as done
UNTRACED = frozenset({"ping", "render_status"})  # polls: a span each would bury a render's trace
_tracer = trace.get_tracer("resolve-farm.bridge")  # a no-op until the process configures tracing


class Backend(Protocol):
    """Runs the operations of `bridge.ops` against Resolve, here or in the helper.

    `bind(op)` returns a callable taking the operation's keyword arguments; sessions bind
    each operation once, so a call costs one lookup and no dispatch.
    """

    def bind(self, op: str) -> Callable[..., Any]: ...

    def close(self) -> None: ...

    def abort(self) -> bool: ...


class InProcess:
    """Calls `ops` directly on a Resolve object living in this process (native, sim).

    Note: in-process calls cannot be timed out; a hung call is ended by the worker's hard
    time limit, which kills the whole worker child.
    """

    def __init__(self, resolve: Any) -> None:
        self.resolve = resolve

    def bind(self, op: str) -> Callable[..., Any]:
        return partial(ops.OPERATIONS[op], self.resolve)

    def close(self) -> None:
        self.resolve = None

    def abort(self) -> bool:
        """Nothing can end a call running in this process but the end of the process: False."""
        return False


class InHelper:
    """Calls `ops` inside the fallback helper process, with a timeout on every call."""

    def __init__(self, helper: Any, call_timeout: float) -> None:
        self.helper = helper
        self.call_timeout = call_timeout

    def bind(self, op: str) -> Callable[..., Any]:
        def call(**args: Any) -> Any:
            return self.helper.call(op, args, self.call_timeout)

        return call

    def close(self) -> None:
        self.helper.close()

    def abort(self) -> bool:
        """End the helper and what it started, from any thread: the call in progress fails at once."""
        self.helper.abort()
        return True


@dataclass
class RenderResult:
    """What a finished render produced."""

    outputs: list[str]
    frames: int
    seconds: float


@dataclass
class Session:
    """A live connection to one Resolve: the operations the farm's tasks need.

    `mode` is the path in use; `attempts` says, for `auto`, what was tried and why it failed.
    """

    mode: str
    backend: Backend
    settings: BridgeSettings
    resolve_info: dict[str, Any]
    attempts: list[dict[str, str]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self._ops = {op: self.backend.bind(op) for op in ops.OPERATIONS}
        self._ping = self._ops["ping"]

    def _call(self, op: str, **args: Any) -> Any:
        try:
            run = self._ops[op]
        except KeyError:
            raise OperationError(f"unknown operation {op!r}") from None
        if op in UNTRACED:
            with self._lock:  # Resolve's API is not thread-safe
                return run(**args)
        with _tracer.start_as_current_span(f"resolve {op}", attributes={"resolve_farm.bridge": self.mode}), self._lock:
            return run(**args)

    def close(self) -> None:
        self.backend.close()

    def abort(self) -> bool:
        """End the call in progress from another thread (a piece past its deadline): the helper and all it
        started are killed and the call raises `HelperDied`; the next call starts a fresh helper. False
        where calls run in this process (native, sim): nothing but the process's end stops those.

        Note: takes no lock: the call being ended holds the session's and the helper's.
        """
        return self.backend.abort()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- describe and navigate -----------------------------------------------------------

    def ping(self) -> str:
        """The cheapest real call (GetVersionString): what heartbeats use to prove Resolve answers."""
        with self._lock:  # `_call` inlined: this runs on every heartbeat
            return self._ping()

    def describe(self) -> dict[str, Any]:
        return {**self._call("describe"), "mode": self.mode}

    def list_projects(self) -> dict[str, Any]:
        return dict(self._call("list_projects"))

    def open_project(self, name: str, database: dict[str, str] | None = None) -> dict[str, Any]:
        return dict(self._call("open_project", name=name, database=database))

    def open_drp(self, drp: str, database: dict[str, str] | None = None) -> dict[str, Any]:
        """The project a .drp holds, imported on this host once per content (`ops.open_drp`)."""
        return dict(self._call("open_drp", drp=drp, database=database))

    def delete_imports(self, names: list[str]) -> dict[str, list[str]]:
        return dict(self._call("delete_imports", names=names))

    def list_timelines(self) -> list[dict[str, Any]]:
        return list(self._call("list_timelines"))

    def timeline_info(self, timeline: str) -> dict[str, Any]:
        return dict(self._call("timeline_info", timeline=timeline))

    def timeline_content(self, timeline: str) -> dict[str, Any]:
        """The timeline's items per video track (media, range, grade) and their fingerprint (`ops.timeline_content`)."""
        return dict(self._call("timeline_content", timeline=timeline))

    def render_options(self) -> dict[str, Any]:
        return dict(self._call("render_options"))

    def save_project(self) -> bool:
        return bool(self._call("save_project"))

    def close_project(self) -> bool:
        """Close the current project (False: none to close); its write hold passes to the next opener."""
        return bool(self._call("close_project"))

    def list_bins(self) -> list[str]:
        """The current project's bins as paths from the media pool's root."""
        return list(self._call("list_bins"))

    def list_clips(self, bin: str | None = None, patterns: list[str] | None = None) -> dict[str, Any]:
        """The current project's video clips (of `bin` and the bins in it) named like `patterns` (`ops.list_clips`)."""
        return dict(self._call("list_clips", bin=bin, patterns=list(patterns or [])))

    def link_proxies(self, links: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Link clips of the current project (`clip_id`) to proxy files (`path`); one result per clip."""
        return list(self._call("link_proxies", links=links))

    def apply_edits(
        self, timeline: str, operations: list[dict[str, Any]], dry_run: bool = False
    ) -> list[dict[str, Any]]:
        """Validate `operations` (see `bridge.edits`) and apply them to `timeline`."""
        from bridge.edits import validate_operations

        checked = validate_operations(operations)
        return list(self._call("apply_edits", timeline=timeline, operations=checked, dry_run=dry_run))

    # --- render --------------------------------------------------------------------------

    def render(
        self,
        timeline: str,
        mark_in: int,
        mark_out: int,
        target_dir: str,
        name: str,
        *,
        format: str | None = None,
        codec: str | None = None,
        preset: str | None = None,
        settings: dict[str, Any] | None = None,
        progress: Callable[[int, int, dict[str, Any]], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> RenderResult:
        """Render frames mark_in..mark_out (inclusive) and wait for the file(s).

        `progress(frames_done, frames_total, status)` is called on every poll; setting
        `cancel` stops the render in Resolve and raises `RenderCancelled`.
        """
        with _tracer.start_as_current_span("resolve render", attributes={
            "resolve_farm.bridge": self.mode, "resolve_farm.timeline": timeline, "resolve_farm.mark_in": mark_in,
            "resolve_farm.mark_out": mark_out,
        }):  # fmt: skip
            return self._render(timeline, mark_in, mark_out, target_dir, name, format=format, codec=codec,
                                preset=preset, settings=settings, progress=progress, cancel=cancel)  # fmt: skip

    def _render(
        self, timeline: str, mark_in: int, mark_out: int, target_dir: str, name: str, *, format: str | None,
        codec: str | None, preset: str | None, settings: dict[str, Any] | None,
        progress: Callable[[int, int, dict[str, Any]], None] | None, cancel: threading.Event | None,
    ) -> RenderResult:  # fmt: skip
        started = time.monotonic()
        job = self._call(
            "start_render",
            timeline=timeline,
            mark_in=mark_in,
            mark_out=mark_out,
            target_dir=target_dir,
            name=name,
            format=format,
            codec=codec,
            preset=preset,
            settings=settings,
        )
        job_id, total = job["job_id"], int(job["frames"])
        outputs = self._expected_outputs(job, mark_in, mark_out)
        at_full: float | None = None
        finished = False
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    self._call("stop_render", job_id=job_id)
                    raise RenderCancelled(f"render of {timeline} {mark_in}..{mark_out} was cancelled")
                status = self._call("render_status", job_id=job_id)
                done = min(total, int(total * status["percent"] / 100))
                if progress is not None:
                    progress(done, total, status)
                state = status["status"]
                if state == "Complete":
                    break
                if state == "Failed":
                    reason = status["error"] or "no reason given"
                    raise RenderFailed(f"Resolve failed to render {timeline} {mark_in}..{mark_out}: {reason}")
                if state == "Cancelled":
                    raise RenderCancelled(f"the render of {timeline} was stopped in Resolve")
                if job["image_sequence"] and status["percent"] >= 100 and not status["in_progress"]:
                    # Resolve may leave image sequences at 100% without ever saying Complete.
                    at_full = at_full or time.monotonic()
                    if time.monotonic() - at_full >= IMAGE_SEQUENCE_SETTLE and all(os.path.isfile(p) for p in outputs):
                        break
                time.sleep(self.settings.poll_interval)
            finished = True
        except BaseException:
            if not finished:
                # Interrupted (a time limit, a failed progress report): Resolve would go on rendering, and
                # the next attempt on this host would find it busy. Stop this job, and only this one.
                self._stop_quietly(job_id)
            raise
        finally:
            self._forget(job_id)
        missing = [p for p in outputs if not os.path.isfile(p)]
        if missing:
            raise RenderFailed(
                f"Resolve reported the render complete but {len(missing)} output file(s) are missing, e.g. {missing[0]}"
            )
        return RenderResult(outputs, total, time.monotonic() - started)

    def stop_render(self) -> bool:
        return bool(self._call("stop_render"))

    def _stop_quietly(self, job_id: str) -> None:
        """Stop the render this session started and was polling when it was interrupted.

        Note: without asking the job's status first (`stop_render` without a job id): the call
        that hung, if one did, was the status poll; one render runs on a host at a time.
        """
        try:
            self._call("stop_render")
        except BridgeError as exc:
            log.warning("could not stop render job %s in Resolve: %s", job_id, exc)

    def _forget(self, job_id: str) -> None:
        try:
            self._call("delete_render_job", job_id=job_id)
        except BridgeError as exc:
            # A finished job left in Resolve's queue harms nothing; the render's outcome stands.
            log.warning("could not remove render job %s from Resolve's queue: %s", job_id, exc)

    @staticmethod
    def _expected_outputs(job: dict[str, Any], mark_in: int, mark_out: int) -> list[str]:
        target, output = job["target_dir"], job["output"]
        if not job["image_sequence"]:
            return [os.path.join(target, output)]
        stem, ext = os.path.splitext(output)
        return [os.path.join(target, f"{stem}_{frame:08d}{ext}") for frame in range(mark_in, mark_out + 1)]


# --- connecting --------------------------------------------------------------------------


def connect(settings: BridgeSettings | None = None, **overrides: Any) -> Session:
    """Connect with `settings` (default: from the environment) and prove Resolve answers.

    `auto` tries native then subprocess, and the session's `attempts` say why native failed.
    """
    settings = settings.model_copy(update=overrides) if settings else BridgeSettings.from_env(**overrides)
    if settings.mode == "sim":
        return _connect_sim(settings)
    if settings.mode == "native":
        return _connect_native(settings)
    if settings.mode == "subprocess":
        return _connect_subprocess(settings)
    attempts: list[dict[str, str]] = []
    try:
        session = _connect_native(settings)
        session.attempts = [{"mode": "native", "result": "ok"}]
        return session
    except BridgeError as exc:
        attempts.append({"mode": "native", "result": "failed", "reason": exc.reason, "error": str(exc)})
    try:
        session = _connect_subprocess(settings)
    except BridgeError as exc:
        attempts.append({"mode": "subprocess", "result": "failed", "reason": exc.reason, "error": str(exc)})
        summary = "; ".join(f"{a['mode']}: {a['error']}" for a in attempts)
        error = ConnectError(f"no usable bridge to Resolve ({summary})", fix=exc.fix)
        raise error from exc
    session.attempts = [*attempts, {"mode": "subprocess", "result": "ok"}]
    return session


def _connect_sim(settings: BridgeSettings) -> Session:
    from bridge import sim

    resolve = sim.create(settings.sim)
    return Session("sim", InProcess(resolve), settings, ops.describe(resolve))


def _connect_native(settings: BridgeSettings) -> Session:
    loaded = native.open_library(native.find_library(settings.script_lib))
    module = native.initialise(loaded)
    resolve = native.connect(module, settings.host, settings.connect_timeout)
    return Session("native", InProcess(resolve), settings, ops.describe(resolve))


def helper_for(settings: BridgeSettings, connect_timeout: float | None = None) -> Helper:
    """A fallback helper (not started) reaching the Resolve `settings` name; for `sim`, the simulator."""
    from bridge.fallback import Helper

    env: dict[str, str] = {}
    if settings.mode == "sim":
        env = sim_script_env(settings.sim)
    if settings.script_api:
        env["RESOLVE_SCRIPT_API"] = str(settings.script_api)
    elif "RESOLVE_SCRIPT_API" not in env and not os.environ.get("RESOLVE_SCRIPT_API"):
        default = install.script_api()  # Resolve's own place on this OS
        if default:
            env["RESOLVE_SCRIPT_API"] = default
    if settings.script_lib:
        env["RESOLVE_SCRIPT_LIB"] = str(settings.script_lib)
    return Helper(settings.python, env, settings.host, connect_timeout or settings.connect_timeout)


def _connect_subprocess(settings: BridgeSettings) -> Session:
    helper = helper_for(settings)
    try:
        info = helper.start()
    except BridgeError:
        helper.close()
        raise
    return Session("subprocess", InHelper(helper, settings.call_timeout), settings, info)


def sim_script_env(config: Any) -> dict[str, str]:
    """Environment that makes `DaVinciResolveScript` (and the helper) reach the simulator."""
    return {**config.to_env(), "RESOLVE_SCRIPT_API": str(SIM_SCRIPT_API)}
