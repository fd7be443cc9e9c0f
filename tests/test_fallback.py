"""The subprocess path: a long-lived helper that can be timed out, killed and restarted."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bridge.errors import CallTimeout, ConnectError, HelperDied
from bridge.fallback import Helper
from bridge.session import connect, sim_script_env
from bridge.settings import BridgeSettings
from bridge.sim import SimConfig, framecode


@pytest.fixture
def sim_api(sim_env, monkeypatch) -> dict[str, str]:
    """Point DaVinciResolveScript (as the helper imports it) at the simulator."""
    env = sim_script_env(SimConfig.from_env())
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("RESOLVE_SCRIPT_LIB", raising=False)
    return env


def test_subprocess_path_end_to_end(sim_api, tmp_path: Path) -> None:
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        assert session.mode == "subprocess"
        pid = session.backend.helper.pid
        session.open_project("Demo")
        info = session.timeline_info("Social")
        first = info["start_frame"] + 100
        seen: list[int] = []
        result = session.render(
            "Social",
            first,
            first + 47,
            str(tmp_path / "out"),
            "fallback",
            progress=lambda done, total, _: seen.append(done),
        )
        assert framecode.read_file(result.outputs[0]) == list(range(first, first + 48))
        assert seen[-1] == 48 and seen == sorted(seen)
        assert session.backend.helper.pid == pid  # one process for every call, not one per call


MINIMAL_DVR = """
import sys

class _Resolve:
    def GetProductName(self):
        try:
            import pydantic  # noqa: F401
            deps = "with-deps"
        except ImportError:
            deps = "no-deps"
        return f"DaVinci Resolve Studio ({deps}, no_site={sys.flags.no_site}, isolated={sys.flags.isolated})"

    def GetVersionString(self):
        return "19.1.4.11"

def scriptapp(app, host=None):
    return _Resolve() if app == "Resolve" else None
"""


def test_helper_runs_without_site_packages(tmp_path: Path) -> None:
    """The helper's own code needs nothing but the standard library (and DaVinciResolveScript)."""
    modules = tmp_path / "api" / "Modules"
    modules.mkdir(parents=True)
    (modules / "DaVinciResolveScript.py").write_text(MINIMAL_DVR)
    helper = Helper(sys.executable, {"RESOLVE_SCRIPT_API": str(tmp_path / "api")}, args=("-I", "-S"))
    try:
        info = helper.start()
        assert info["product"] == "DaVinci Resolve Studio (no-deps, no_site=1, isolated=1)"
        assert helper.call("ping") == "19.1.4.11"
        assert helper.call("describe")["studio"] is True
    finally:
        helper.close()
    assert not helper.alive


def test_hung_call_times_out_and_the_helper_restarts(sim_api, monkeypatch) -> None:
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "hang:Project.GetTimelineCount")
    with connect(BridgeSettings.from_env(mode="subprocess", call_timeout=2)) as session:
        first_pid = session.backend.helper.pid
        with pytest.raises(CallTimeout, match=r"open_project.*did not return within 2s"):
            session.open_project("Demo")
        assert not session.backend.helper.alive
        assert session.ping() == "19.1.4.11"  # a fresh helper answers
        assert session.backend.helper.pid != first_pid and session.backend.helper.restarts == 1


def test_helper_that_dies_mid_render_is_reported_and_restarted(sim_api, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "crash-at:0.5")
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        session.open_project("Demo")
        with pytest.raises(HelperDied, match="code 86"):
            session.render("Teaser", 86400, 86400 + 99, str(tmp_path), "crash")
        assert session.ping() == "19.1.4.11"


def test_auto_prefers_native(sim_api, native_lib: Path) -> None:
    with connect(BridgeSettings.from_env(mode="auto", script_lib=native_lib)) as session:
        assert session.mode == "native"
        assert session.attempts == [{"mode": "native", "result": "ok"}]


def test_auto_falls_back_and_says_why(sim_api, tmp_path: Path) -> None:
    with connect(BridgeSettings.from_env(mode="auto", script_lib=tmp_path / "missing.so")) as session:
        assert session.mode == "subprocess"
        native_attempt = session.attempts[0]
        assert native_attempt["mode"] == "native" and native_attempt["reason"] == "library not found"
        assert "missing.so" in native_attempt["error"]


def test_auto_reports_symbol_failure(sim_api, tmp_path: Path) -> None:
    from fixtures import build

    if build.compiler() is None:
        pytest.skip("no C compiler")
    with connect(BridgeSettings.from_env(mode="auto", script_lib=build.plain_library(tmp_path))) as session:
        assert session.attempts[0]["reason"] == "symbol resolution failed"


def test_auto_never_picks_the_simulator(sim_env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOLVE_SCRIPT_API", str(tmp_path / "nothing"))
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with pytest.raises(ConnectError, match="no usable bridge") as err:
        connect(BridgeSettings.from_env(mode="auto", script_lib=tmp_path / "missing.so"))
    assert "DaVinciResolveScript" in str(err.value)


def test_bad_interpreter_is_a_clear_error(sim_api) -> None:
    with pytest.raises(ConnectError, match="cannot start the helper under /no/such/python"):
        connect(BridgeSettings.from_env(mode="subprocess", python="/no/such/python"))


def test_protocol_survives_prints_to_stdout(sim_api, tmp_path: Path, monkeypatch) -> None:
    """Resolve's module printing to stdout must not corrupt the pipe."""
    modules = tmp_path / "api" / "Modules"
    modules.mkdir(parents=True)
    (modules / "DaVinciResolveScript.py").write_text(
        "import sys, os\nprint('chatty banner')\n"
        "sys.path.insert(0, " + repr(str(Path(__file__).resolve().parent.parent)) + ")\n"
        "from bridge.sim import scriptapp as _s\n"
        "def scriptapp(*a):\n    print('connecting...')\n    return _s(*a)\n"
    )
    monkeypatch.setenv("RESOLVE_SCRIPT_API", str(tmp_path / "api"))
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        assert session.open_project("Demo")["name"] == "Demo"
    assert os.environ["RESOLVE_SCRIPT_API"] == str(tmp_path / "api")


def test_a_dead_helper_leaves_no_open_pipe_behind(sim_api, monkeypatch, tmp_path: Path) -> None:
    """Its pipes are closed when it is found dead, not left for the garbage collector (which warns)."""
    import gc
    import warnings

    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "crash-at:0.5")
    gc.collect()  # what earlier tests in this process left for the collector is collected outside the window
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        session.open_project("Demo")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            for n in range(3):  # it dies, it is restarted, three times over
                with pytest.raises(HelperDied):
                    session.render("Teaser", 86400, 86400 + 49, str(tmp_path), f"crash{n}")
                session.open_project("Demo")
            gc.collect()
        # The helper talks over pipes, never a socket: an unclosed socket transport here is another test's
        # (an MCP or HTTP client of an earlier test in this worker process, collected now).
        unclosed = [str(w.message) for w in caught
                    if issubclass(w.category, ResourceWarning) and "SocketTransport" not in str(w.message)]  # fmt: skip
        assert unclosed == []


def test_the_helper_runs_under_resolves_bundled_python_unless_told_otherwise(
    sim_api, monkeypatch, tmp_path: Path
) -> None:
    """Resolve 21.1's ResolvePython, when installed, is the helper's interpreter; RESOLVE_PYTHON still wins."""
    import bridge.fallback as fallback

    if sys.platform != "linux":
        pytest.skip("the stand-in ResolvePython is a shell script")
    marker = tmp_path / "used"
    bundled = tmp_path / "ResolvePython"
    bundled.write_text(f'#!/bin/sh\necho "$$" >> "{marker}"\nexec "{sys.executable}" "$@"\n')
    bundled.chmod(0o755)
    monkeypatch.setattr(fallback.install, "bundled_pythons", lambda: [str(tmp_path / "absent"), str(bundled)])
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        assert session.ping() == "19.1.4.11"
        assert session.backend.helper.python == str(bundled) and marker.read_text().strip()
    marker.unlink()
    monkeypatch.setenv("RESOLVE_PYTHON", sys.executable)
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        assert session.ping() == "19.1.4.11" and session.backend.helper.python == sys.executable
    assert not marker.exists()  # the configured interpreter was used, not the bundled one


class _Interrupted(Exception):
    """What a soft time limit raises in the pool process, in miniature."""


def test_a_call_interrupted_by_a_signal_kills_the_helper_stuck_in_resolve(sim_api, monkeypatch) -> None:
    import signal

    from bridge import sim

    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "freeze-on:Project.GetRenderJobStatus")
    host = sim.host_state(SimConfig.from_env())
    helper = Helper(env={k: v for k, v in os.environ.items() if k.startswith("RESOLVE_")})
    helper.start()
    stuck = helper.pid
    assert stuck is not None

    def interrupt(*_: object) -> None:
        raise _Interrupted

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        host.freeze()
        signal.setitimer(signal.ITIMER_REAL, 0.5)
        with pytest.raises(_Interrupted):
            helper.call("describe", {}, 60)
        assert not helper.alive and stuck != helper.pid  # killed at once, not left stuck for its answer
        host.thaw()
        assert helper.call("describe", {}, 30)["studio"] is True  # a fresh helper, answering the right request
        assert helper.restarts == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        host.thaw()
        helper.close()


def test_a_drp_is_imported_once_through_the_helper(sim_api, tmp_path: Path) -> None:
    """The helper runs `open_drp` with the standard library only: the digest, the folder, the reuse."""
    from bridge.sim import scriptapp

    drp = tmp_path / "Show.drp"
    assert scriptapp("Resolve").GetProjectManager().ExportProject("Demo", str(drp))
    with connect(BridgeSettings.from_env(mode="subprocess")) as session:
        first, again = session.open_drp(str(drp)), session.open_drp(str(drp))
    assert first["imported"] and not again["imported"] and first["project"] == again["project"]
    assert first["project"].startswith("resolve-farm imports/Show-") and len(first["timelines"]) == 4


@contextlib.contextmanager
def _helper_with_a_child(tmp_path: Path) -> Iterator[tuple[Helper, int]]:
    """A started helper under an interpreter wrapper that first starts a child of its own (`sleep`), as
    Resolve's library may; yields the helper and the child's pid, and leaves neither behind."""
    pidfile = tmp_path / "grandchild.pid"
    wrapper = tmp_path / "python-that-starts-a-child"
    wrapper.write_text(f'#!/bin/sh\nsleep 600 &\necho $! > "{pidfile}"\nexec "{sys.executable}" "$@"\n')
    wrapper.chmod(0o755)
    helper = Helper(str(wrapper), env={k: v for k, v in os.environ.items() if k.startswith("RESOLVE_")})
    grandchild = 0
    try:
        helper.start()
        grandchild = int(pidfile.read_text())
        assert _running(grandchild)
        yield helper, grandchild
    finally:
        if grandchild and _running(grandchild):
            os.kill(grandchild, 9)
        helper.close()


def _returns_within(call: Any, seconds: float) -> list[BaseException]:
    """Run `call` in a thread; the exceptions it raised once it returned, or fail if it did not within `seconds`."""
    import threading

    raised: list[BaseException] = []
    returned = threading.Event()

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # (returned to the caller, who asserts on it)
            raised.append(exc)
        returned.set()

    threading.Thread(target=run, daemon=True).start()
    assert returned.wait(seconds), "ending the helper waited on a process it had started (it holds the helper's pipe)"
    return raised


def _ended(pid: int) -> bool:
    import time

    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not _running(pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the child end (Linux)")
def test_a_helper_killed_for_a_hung_call_takes_what_it_started_with_it(sim_api, monkeypatch, tmp_path: Path) -> None:
    """A helper killed for a hung call must not leave what it started running, holding files, a GPU, or the
    helper's own pipe (on which the kill would then wait for as long as they live)."""
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "hang:Project.GetTimelineCount")
    with _helper_with_a_child(tmp_path) as (helper, grandchild):
        raised = _returns_within(lambda: helper.call("open_project", {"name": "Demo"}, timeout=2), 60)
        assert len(raised) == 1 and isinstance(raised[0], CallTimeout)
        assert _ended(grandchild), "the helper's child outlived it"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the child end (Linux)")
def test_a_helper_that_died_between_calls_takes_what_it_started_with_it(sim_api, tmp_path: Path) -> None:
    with _helper_with_a_child(tmp_path) as (helper, grandchild):
        os.kill(helper.pid or 0, 9)  # it crashed between two calls
        while helper.alive:
            pass
        raised = _returns_within(lambda: helper.call("ping", {}, timeout=10), 60)
        assert len(raised) == 1 and isinstance(raised[0], HelperDied)
        assert _ended(grandchild), "the helper's child outlived it"


def _running(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for a reaper has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the child end (Linux)")
def test_a_call_hung_deaf_to_signals_is_ended_from_another_thread_with_what_the_helper_started(
    sim_api, monkeypatch, tmp_path: Path
) -> None:
    """The threads pool's piece deadline: `abort` from another thread ends a call stuck in Resolve with every
    signal masked, long before its own timeout, takes the helper's child with it, and the next call works."""
    import threading

    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "hang-hard:Project.GetTimelineCount")
    with _helper_with_a_child(tmp_path) as (helper, grandchild):
        stuck = helper.pid
        threading.Timer(1.0, helper.abort).start()
        raised = _returns_within(lambda: helper.call("open_project", {"name": "Demo"}, timeout=600), 60)
        assert len(raised) == 1 and isinstance(raised[0], HelperDied), raised
        assert _ended(grandchild), "the helper's child outlived it"
        assert helper.call("ping", {}, timeout=30) == "19.1.4.11" and helper.pid != stuck  # a fresh helper
