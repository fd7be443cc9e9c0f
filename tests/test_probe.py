"""The heartbeat's ping of Resolve (`bridge.probe`), and a simulated host that stops answering.

A real Resolve that is stuck answers no scripting client at all; the simulator models that
per host (`freeze-on:` and `bridge.sim.host`), across every process connected to it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from bridge import sim
from bridge.errors import CallTimeout
from bridge.probe import ProbeUnavailable, ResolveProbe
from bridge.session import connect
from bridge.settings import BridgeSettings

FREEZING = "freeze-on:Project.GetRenderJobStatus"


def gone(pid: int) -> bool:
    """The process ended (a zombie that nobody reaped yet counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")


def wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_a_frozen_host_fails_the_ping_within_its_timeout_then_answers_once_thawed(sim_env, monkeypatch) -> None:
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", FREEZING)  # a host that can freeze (frozen here from outside)
    settings = BridgeSettings.from_env(mode="sim")
    host = sim.host_state(settings.sim)
    probe = ResolveProbe(settings, timeout=3.0)  # (a helper's start on a loaded machine takes over 1 s)
    try:
        assert probe.check()["studio"] is True
        helper = probe._helper.pid
        assert helper is not None
        host.freeze()
        with pytest.raises(CallTimeout, match=r"did not answer within 3s"):
            probe.check()
        assert gone(helper)  # the helper stuck in the frozen call was killed
        with pytest.raises(CallTimeout):
            probe.check()  # a fresh helper cannot connect either while the host is frozen
        host.thaw()
        assert probe.check()["product"] == "DaVinci Resolve Studio"
    finally:
        host.thaw()
        probe.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_freezing_call_freezes_every_connection_to_that_host_and_no_other(sim_env, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", FREEZING)
    monkeypatch.setenv("RESOLVE_SIM_HOST", "frosty")
    frosty = BridgeSettings.from_env(mode="sim")
    monkeypatch.setenv("RESOLVE_SIM_HOST", "sunny")
    sunny = BridgeSettings.from_env(mode="sim")
    assert (frosty.sim.host, sunny.sim.host) == ("frosty", "sunny")
    host = sim.host_state(frosty.sim)
    session = connect(frosty)
    session.open_project("Demo")
    first = session.timeline_info("Teaser")["start_frame"]
    rendered: list[object] = []
    render = threading.Thread(
        target=lambda: rendered.append(session.render("Teaser", first, first + 11, str(tmp_path / "out"), "frozen")),
        daemon=True,
    )
    # 5 s: each probe's first check starts its helper, which on a loaded machine takes over 1 s (CI saw it)
    probes = [ResolveProbe(frosty, timeout=5.0), ResolveProbe(sunny, timeout=5.0)]
    try:
        assert all(p.check()["studio"] for p in probes)
        render.start()  # its first status poll freezes the host
        wait_for(lambda: host.frozen, 10, "the render's status poll never froze the host")
        with pytest.raises(CallTimeout):
            probes[0].check()  # another process connected to the frozen host gets no answer
        assert probes[1].check()["studio"]  # another host answers
        assert not rendered
        host.thaw()
        render.join(timeout=30)
        assert not render.is_alive() and rendered, "the render did not go on once the host answered"
    finally:
        host.thaw()
        for p in probes:
            p.close()
        session.close()


def test_a_probe_that_cannot_import_resolves_module_says_so_instead_of_blaming_resolve(sim_env, tmp_path) -> None:
    nothing = tmp_path / "no-api"
    (nothing / "Modules").mkdir(parents=True)
    probe = ResolveProbe(BridgeSettings(mode="native", script_api=nothing, script_lib=tmp_path / "x.so"), 5.0)
    try:
        with pytest.raises(ProbeUnavailable, match="cannot import DaVinciResolveScript"):
            probe.check()
    finally:
        probe.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_helper_stuck_in_resolve_dies_with_the_process_it_serves(sim_env, monkeypatch, tmp_path) -> None:
    """A pool process killed by the hard time limit cannot close its helper: the helper must not outlive it."""
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", FREEZING)
    monkeypatch.setenv("RESOLVE_SIM_HOST", "frosty")
    host = sim.host_state(BridgeSettings.from_env(mode="sim").sim)
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys
            from bridge.session import helper_for
            from bridge.settings import BridgeSettings
            helper = helper_for(BridgeSettings.from_env(mode="sim"))
            helper.start()
            print(helper.pid, flush=True)
            sys.stdin.readline()
            helper.call("describe", {}, 600)  # the host is frozen by now: stuck here
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    try:
        assert parent.stdout is not None and parent.stdin is not None
        helper = int(parent.stdout.readline())
        host.freeze()
        parent.stdin.write("go\n")
        parent.stdin.flush()
        parent.stdin.close()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=10)
        wait_for(lambda: gone(helper), 10, f"helper {helper} outlived the process it served")
    finally:
        host.thaw()
        if parent.poll() is None:
            parent.kill()


def test_a_ping_clears_only_the_mark_a_ping_left(tmp_path) -> None:
    """A good ping must not clear a piece's mark (a call hung): that needs a pool process to reach Resolve again."""
    from farm_helpers import farm_env

    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.nodes import NOT_ANSWERING, NodeRegistry
    from orchestrator.settings import FarmSettings
    from orchestrator.store import connect as redis_connect

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        try:
            nodes = NodeRegistry(redis_connect(server.start()), heartbeat_timeout=30)
            nodes.announce({"name": "n1", "roles": ["resolve"]})
            good = {"product": "DaVinci Resolve Studio", "studio": True}
            assert not nodes.resolve_answered("n1", good, None)  # healthy stays healthy
            assert nodes.resolve_answered("n1", {"error": "x"}, f"{NOT_ANSWERING}: timed out")
            assert not nodes.resolve_answered("n1", {"error": "x"}, f"{NOT_ANSWERING}: again")  # marked once
            assert nodes.resolve_answered("n1", good, None)
            (node,) = nodes.all()
            assert node.unhealthy is None and node.resolve == good
            nodes.heartbeat("n1", unhealthy="a call hung running segment 1/2 of job j")
            assert not nodes.resolve_answered("n1", good, None)
            assert not nodes.resolve_answered("n1", {"error": "x"}, f"{NOT_ANSWERING}: timed out")
            (node,) = nodes.all()
            assert node.unhealthy == "a call hung running segment 1/2 of job j"
        finally:
            server.stop()


def test_a_node_marked_by_another_keeps_when_it_was_last_seen(tmp_path) -> None:
    """A live worker marking a lost node unhealthy must not make it look alive: it still goes down."""
    from farm_helpers import farm_env

    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.nodes import NodeRegistry
    from orchestrator.settings import FarmSettings
    from orchestrator.store import connect as redis_connect

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        try:
            nodes = NodeRegistry(redis_connect(server.start()), heartbeat_timeout=30)
            nodes.announce({"name": "n1", "roles": ["resolve"]})
            client = nodes.redis
            stale = {**json.loads(client.get(nodes.key("n1"))), "last_seen": 1.0}  # last heard of long ago
            client.set(nodes.key("n1"), json.dumps(stale))
            nodes.mark("n1", unhealthy="lost segment 1/2 of job j")
            (node,) = nodes.all()
            assert node.unhealthy == "lost segment 1/2 of job j" and node.last_seen == 1.0 and not node.up
            nodes.mark("n2", unhealthy="lost segment 2/2 of job j")  # never announced: a record that still reads
            assert {n.name: n.unhealthy for n in nodes.all()} == {"n1": "lost segment 1/2 of job j",
                                                                "n2": "lost segment 2/2 of job j"}  # fmt: skip
        finally:
            server.stop()


def test_a_thaw_then_another_freeze_at_once_still_ends_the_first_wait(tmp_path) -> None:
    """A test's thaw followed at once by the next test's freeze: the call blocked by the first freeze returns."""
    looked = threading.Event()

    class Watched(sim.HostState):
        def _token(self) -> str | None:
            token = super()._token()
            looked.set()  # the waiter has met the freeze
            return token

    host = Watched(tmp_path / "library.json", "flicker")
    host.freeze()
    host.freeze()  # frozen already (a freeze-on method called again): the same freeze
    returned = threading.Event()
    waiter = threading.Thread(target=lambda: (host.wait_while_frozen(), returned.set()), daemon=True)
    waiter.start()
    try:
        assert looked.wait(10) and not returned.is_set()
        host.thaw()
        host.freeze()  # no gap a poller could see
        assert returned.wait(10)
        assert host.frozen  # the second freeze holds
    finally:
        host.thaw()


def test_a_frozen_call_stays_deaf_when_another_thread_takes_the_signal(tmp_path) -> None:
    """A process with other threads (a piece's lock keeper): the kernel hands a soft time limit's signal to one
    of them, and Python runs its handler in the main thread at its next bytecode. The frozen call must not."""
    child = textwrap.dedent(f"""
        import signal, sys, threading, time
        from pathlib import Path
        from bridge import sim

        class Limit(Exception): pass
        def limit(signum, frame): raise Limit()
        signal.signal(signal.SIGALRM, limit)
        threading.Thread(target=lambda: time.sleep(60), daemon=True).start()  # takes the signal: not masked
        host = sim.HostState(Path({str(tmp_path / "library.json")!r}), "deaf")
        host.freeze()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        try:
            host.wait_while_frozen()
            time.sleep(1)  # the pending handler runs once the call returned, if not before
        except Limit:
            print("interrupted while frozen" if host.frozen else "thawed", flush=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    host = sim.HostState(tmp_path / "library.json", "deaf")
    deadline = time.monotonic() + 30
    while not host.frozen:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(1)  # well past the signal: a poll in Python would have run the handler by now
    host.thaw()
    out, err = proc.communicate(timeout=30)
    assert out.splitlines() == ["thawed"], (out, err)  # the signal came, once the call had returned
