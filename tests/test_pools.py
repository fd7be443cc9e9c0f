"""Which pool a worker runs, and the piece deadline that replaces Celery's hard limit in the threads pool."""

from __future__ import annotations

import threading

import pytest

from orchestrator.cli import main
from orchestrator.pools import PoolRefused, bridge_for, pool_for
from orchestrator.settings import FarmSettings
from tasks.deadline import PieceDeadline, PieceOverdue


def test_auto_is_prefork_on_linux_and_threads_on_windows_and_macos() -> None:
    assert pool_for("auto", "Linux") == "prefork"
    assert pool_for("auto", "Windows") == "threads" and pool_for("auto", "Darwin") == "threads"
    assert pool_for("threads", "Linux") == "threads"
    assert pool_for("prefork", "Darwin") == "prefork"  # asked for by name: allowed, documented as unverified


def test_prefork_on_windows_and_unknown_pools_are_refused_naming_the_field() -> None:
    with pytest.raises(PoolRefused, match=r"^pool: prefork does not run on Windows .*--pool threads"):
        pool_for("prefork", "Windows")
    with pytest.raises(PoolRefused, match=r"^pool: 'solo' is not one of auto, prefork, threads"):
        pool_for("solo", "Linux")


def test_the_threads_pool_calls_resolve_through_the_helper() -> None:
    assert bridge_for("threads", "auto") == "subprocess" and bridge_for("threads", "subprocess") == "subprocess"
    assert bridge_for("threads", "sim") == "sim"  # the simulator, in process: for the demo and the tests
    with pytest.raises(PoolRefused, match=r"^bridge: native .*--bridge subprocess"):
        bridge_for("threads", "native")
    assert bridge_for("prefork", "native") == "native" and bridge_for("prefork", "auto") == "auto"


def test_a_worker_refuses_prefork_on_windows_before_it_starts(monkeypatch, capsys) -> None:
    import platform

    monkeypatch.setattr(platform, "system", lambda: "Windows")
    assert main(["worker", "--pool", "prefork", "--bridge", "sim"]) == 2
    assert "prefork does not run on Windows" in capsys.readouterr().err


def test_a_call_deadline_below_the_floor_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("RESOLVE_FARM_CALL_DEADLINE", "0.5")
    with pytest.raises(ValueError, match="call_deadline"):
        FarmSettings()


def _in_a_thread(call) -> object:
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(call()))
    thread.start()
    thread.join()
    return found[0]


def test_a_piece_deadline_runs_only_in_a_worker_thread_and_aborts_at_its_limit() -> None:
    aborted = threading.Event()

    def abort() -> bool:
        aborted.set()
        return True

    assert PieceDeadline.start(0.1, "segment 1 of job j", abort) is None  # a prefork child's main thread
    deadline = _in_a_thread(lambda: PieceDeadline.start(0.2, "segment 1 of job j", abort))
    assert isinstance(deadline, PieceDeadline)
    assert aborted.wait(10) and deadline.expired.is_set()
    failed = deadline.overdue(RuntimeError("the helper exited"))
    assert isinstance(failed, PieceOverdue) and "within its 0.2s limit: the helper exited" in str(failed)


def test_a_piece_that_ends_in_time_is_not_aborted() -> None:
    aborted = threading.Event()
    deadline = _in_a_thread(lambda: PieceDeadline.start(0.3, "segment 2 of job j", lambda: aborted.set() or True))
    assert isinstance(deadline, PieceDeadline)
    deadline.stop()
    deadline._timer.join()  # its thread has ended: stopped, it can no longer abort
    assert not aborted.is_set()
    error = RuntimeError("a real failure")
    assert deadline.overdue(error) is error
