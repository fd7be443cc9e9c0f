"""`resolve-farm doctor` and `resolve-farm demo`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fixtures import build


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )


def test_doctor_sim(sim_env) -> None:
    done = _cli("doctor", "--bridge", "sim", "--json", env=sim_env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is True and report["mode"] == "sim"
    assert report["connection"]["product"] == "DaVinci Resolve Studio"
    assert report["connection"]["library"] == sim_env["RESOLVE_SIM_LIBRARY"]
    assert report["python"]["version"] == ".".join(map(str, sys.version_info[:3]))


def test_doctor_sim_human(sim_env) -> None:
    done = _cli("doctor", "--bridge", "sim", env=sim_env)
    assert done.returncode == 0
    assert "connected via sim: DaVinci Resolve Studio 19.1.4.11 (Studio)" in done.stdout
    assert "worker: prefork pool, sim bridge on Linux" in done.stdout and "auto chose" not in done.stdout
    assert "usable bridge: yes" in done.stdout


def test_doctor_with_nothing_usable(sim_env, tmp_path: Path) -> None:
    env = {**sim_env, "RESOLVE_SCRIPT_LIB": str(tmp_path / "none.so"), "RESOLVE_SCRIPT_API": str(tmp_path)}
    done = _cli("doctor", "--json", env=env)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["auto"]["chosen"] is None
    assert report["library"]["found"] is None and report["library"]["looked_in"] == [str(tmp_path / "none.so")]
    fixes = " ".join(p["fix"] for p in report["problems"])
    assert "RESOLVE_SCRIPT_LIB" in fixes and "RESOLVE_SCRIPT_API" in fixes


def test_doctor_native(sim_env, native_lib: Path) -> None:
    done = _cli("doctor", "--json", env={**sim_env, "RESOLVE_SCRIPT_LIB": str(native_lib)})
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    lib = report["library"]
    assert lib["found"] == str(native_lib) and lib["loaded"] and lib["entry_point"]
    assert lib["initialised"]["ok"] and lib["initialised"]["version"] == "19.1.4.11"
    assert report["auto"]["chosen"] == "native" and report["connection"]["mode"] == "native"


def test_doctor_explains_a_library_without_entry_point(sim_env, tmp_path: Path) -> None:
    if build.compiler() is None:
        import pytest

        pytest.skip("no C compiler")
    lib = build.plain_library(tmp_path)
    done = _cli("doctor", "--bridge", "native", env={**sim_env, "RESOLVE_SCRIPT_LIB": str(lib)})
    assert done.returncode == 1
    assert "no PyInit_fusionscript" in done.stdout and "usable bridge: no" in done.stdout


def test_doctor_reports_a_crash_inside_init(sim_env, tmp_path: Path) -> None:
    """A library whose PyInit crashes the process (as a wrong Python ABI does) is diagnosed, not fatal."""
    if build.compiler() is None:
        import pytest

        pytest.skip("no C compiler")
    src = tmp_path / "crash.c"
    src.write_text("#include <signal.h>\nvoid *PyInit_fusionscript(void) { raise(SIGSEGV); return 0; }\n")
    lib = tmp_path / "fusionscript.so"
    build._cc(["-shared", "-fPIC", str(src), "-o", str(lib)])
    done = _cli("doctor", "--bridge", "native", "--json", env={**sim_env, "RESOLVE_SCRIPT_LIB": str(lib)})
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert "crashed (SIGSEGV) inside PyInit_fusionscript" in report["library"]["initialised"]["error"]
    assert "PYTHONHOME" in report["library"]["initialised"]["fix"]


def test_doctor_says_plainly_that_free_21_1_has_no_scripting(sim_env) -> None:
    env = {**sim_env, "RESOLVE_SIM_PRODUCT": "DaVinci Resolve", "RESOLVE_SIM_VERSION": "21.1.0.5"}
    done = _cli("doctor", "--bridge", "sim", "--json", env=env)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] is False and report["connection"]["reason"] == "scripting unavailable (not Studio)"
    [problem] = report["problems"]
    assert problem["what"].startswith("Python scripting is a Studio feature since DaVinci Resolve 21.1")
    assert "DaVinci Resolve 21.1.0.5 (the free edition)" in problem["what"]
    assert "install DaVinci Resolve Studio" in problem["fix"]
    human = _cli("doctor", "--bridge", "sim", env=env)
    assert "Python scripting is a Studio feature since DaVinci Resolve 21.1" in human.stdout
    assert "usable bridge: no" in human.stdout


def test_doctor_says_which_pool_a_worker_runs_and_refuses_what_cannot_run(sim_env) -> None:
    report = json.loads(_cli("doctor", "--bridge", "sim", "--json", env=sim_env).stdout)["worker"]
    assert report["ok"] and report["pool"] == "prefork" and report["bridge"] == "sim"  # auto, on Linux
    assert any("no broker configured" in note for note in report["notes"])  # it starts no Redis to look
    threads = {**sim_env, "RESOLVE_FARM_WORKER_POOL": "threads"}
    done = _cli("doctor", "--bridge", "native", env=threads)
    assert done.returncode == 1
    assert "worker: bridge: native loads Resolve's library into the worker" in done.stdout


def test_doctor_warns_when_the_piece_deadline_is_below_the_start_cost_learnt_on_the_farm(sim_env, tmp_path) -> None:
    from farm_helpers import farm_env

    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.pull.speeds import SpeedBook
    from orchestrator.settings import FarmSettings
    from orchestrator.store import connect

    with farm_env(tmp_path / "farm"):
        server = EmbeddedRedis(FarmSettings())
        try:
            url = server.start()
            SpeedBook(connect(url)).record("bay-3", "ProRes422HQ@1920x1080", 48.0, 12.0)
            env = {**sim_env, "RESOLVE_FARM_BROKER_URL": url, "RESOLVE_FARM_NODE_NAME": "bay-3",
                   "RESOLVE_FARM_VISIBILITY_TIMEOUT": "60"}  # fmt: skip
            short = json.loads(_cli("doctor", "--bridge", "sim", "--json",
                                    env={**env, "RESOLVE_FARM_RENDER_TIME_LIMIT": "10"}).stdout)["worker"]  # fmt: skip
            enough = json.loads(_cli("doctor", "--bridge", "sim", "--json",
                                     env={**env, "RESOLVE_FARM_RENDER_TIME_LIMIT": "30"}).stdout)["worker"]  # fmt: skip
        finally:
            server.stop()
    assert short["ok"] and any("below the render start cost this node paid on the farm (12s)" in w
                               for w in short["warnings"]), short  # fmt: skip
    assert enough["ok"] and not enough["warnings"] and not enough["notes"], enough
