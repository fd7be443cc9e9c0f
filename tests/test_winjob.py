"""The Windows Job Object that ends the fallback helper and all it started (`bridge.winjob`): its structure and
its calls, checked here against a recorder standing in for `kernel32` (the one boundary no Linux host has)."""

from __future__ import annotations

import ctypes
from types import SimpleNamespace
from typing import Any

import pytest

from bridge import winjob


class Kernel32:
    """Records the Job Object calls and answers as Windows does (a handle, or a BOOL)."""

    def __init__(self, fail: str = "") -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.fail = fail

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> int:
            self.calls.append((name, args))
            if name == self.fail:
                return 0
            return 0x1234 if name == "CreateJobObjectW" else 1

        return call


@pytest.mark.skipif(ctypes.sizeof(ctypes.c_size_t) != 8, reason="the sizes below are 64-bit Windows's")
def test_the_limits_have_windows_layout_and_kill_every_process_when_the_job_ends() -> None:
    assert ctypes.sizeof(winjob.BasicLimits) == 64 and ctypes.sizeof(winjob.IoCounters) == 48
    assert ctypes.sizeof(winjob.ExtendedLimits) == 144
    assert winjob.BasicLimits.LimitFlags.offset == 16 and winjob.BasicLimits.Affinity.offset == 48
    limits = winjob.kill_on_close()
    assert limits.BasicLimitInformation.LimitFlags == 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE


def test_a_job_is_created_with_those_limits_takes_a_process_and_ends_it_all() -> None:
    kernel32 = Kernel32()
    job = winjob.Job(kernel32)
    (create, created), (setinfo, (handle, info_class, limits, size)) = kernel32.calls
    assert create == "CreateJobObjectW" and created == (None, None) and job.handle == 0x1234
    assert setinfo == "SetInformationJobObject" and handle == 0x1234 and info_class == 9
    assert size == ctypes.sizeof(winjob.ExtendedLimits) and limits._obj.BasicLimitInformation.LimitFlags == 0x2000
    job.assign(SimpleNamespace(_handle=0x99, pid=4242))
    job.terminate()
    job.close()
    assert kernel32.calls[2:] == [("AssignProcessToJobObject", (0x1234, 0x99)), ("TerminateJobObject", (0x1234, 1)),
                                  ("CloseHandle", (0x1234,))]  # fmt: skip
    job.close()  # once only
    assert len(kernel32.calls) == 5


@pytest.mark.parametrize("failing", ["CreateJobObjectW", "SetInformationJobObject", "AssignProcessToJobObject"])
def test_a_failed_call_is_an_error_that_says_which_and_leaks_no_handle(failing: str) -> None:
    kernel32 = Kernel32(fail=failing)
    with pytest.raises(winjob.JobError, match=failing):
        winjob.Job(kernel32).assign(SimpleNamespace(_handle=0x99, pid=4242))
    if failing == "SetInformationJobObject":
        assert kernel32.calls[-1] == ("CloseHandle", (0x1234,))
