"""A Windows Job Object that ends the fallback helper and every process it started, through ctypes.

On POSIX the helper leads a process group and a kill ends the group (`bridge.fallback`).
Windows has no process groups that a kill reaches; a Job Object does the same: the helper is
assigned to a job created with `JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE`, its children join the job as
they start, and terminating (or closing) the job ends them all.

Note: standard library only, and `kernel32` is reached only on Windows: elsewhere `Job` is
built with a stand-in (the tests' recorder), so the structure and the calls are checked here.
The helper is assigned just after it starts: a process it started in its first moments
(Python is still starting then) would escape the job.
"""

from __future__ import annotations

import ctypes
from typing import Any

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x2000
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9  # the JOBOBJECTINFOCLASS of the structure below
KILLED_EXIT_CODE = 1


class BasicLimits(ctypes.Structure):
    """JOBOBJECT_BASIC_LIMIT_INFORMATION (64 bytes on 64-bit Windows)."""

    _fields_ = [
        ("PerProcessUserTimeLimit", ctypes.c_int64),
        ("PerJobUserTimeLimit", ctypes.c_int64),
        ("LimitFlags", ctypes.c_uint32),
        ("MinimumWorkingSetSize", ctypes.c_size_t),
        ("MaximumWorkingSetSize", ctypes.c_size_t),
        ("ActiveProcessLimit", ctypes.c_uint32),
        ("Affinity", ctypes.c_size_t),
        ("PriorityClass", ctypes.c_uint32),
        ("SchedulingClass", ctypes.c_uint32),
    ]


class IoCounters(ctypes.Structure):
    """IO_COUNTERS (48 bytes)."""

    _fields_ = [
        (name, ctypes.c_uint64)
        for name in ("ReadOperationCount", "WriteOperationCount", "OtherOperationCount", "ReadTransferCount",
                     "WriteTransferCount", "OtherTransferCount")
    ]  # fmt: skip


class ExtendedLimits(ctypes.Structure):
    """JOBOBJECT_EXTENDED_LIMIT_INFORMATION (144 bytes on 64-bit Windows)."""

    _fields_ = [
        ("BasicLimitInformation", BasicLimits),
        ("IoInfo", IoCounters),
        ("ProcessMemoryLimit", ctypes.c_size_t),
        ("JobMemoryLimit", ctypes.c_size_t),
        ("PeakProcessMemoryUsed", ctypes.c_size_t),
        ("PeakJobMemoryUsed", ctypes.c_size_t),
    ]


def kill_on_close() -> ExtendedLimits:
    """The limits that make closing or terminating the job end every process in it."""
    limits = ExtendedLimits()
    limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    return limits


class JobError(OSError):
    """A Job Object call failed (the Windows error code is in `winerror` on Windows)."""


class Job:
    """One Job Object: created with kill-on-close limits, processes assigned to it, ended as a whole.

    Note: `kernel32` is `ctypes.windll.kernel32` on Windows; elsewhere one must be given.
    """

    def __init__(self, kernel32: Any = None) -> None:
        self.kernel32 = kernel32 if kernel32 is not None else ctypes.windll.kernel32  # type: ignore[attr-defined]
        self.handle = self.kernel32.CreateJobObjectW(None, None)
        if not self.handle:
            raise JobError("CreateJobObjectW failed")
        limits = kill_on_close()
        if not self.kernel32.SetInformationJobObject(self.handle, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION,
                                                     ctypes.byref(limits), ctypes.sizeof(limits)):  # fmt: skip
            self.close()
            raise JobError("SetInformationJobObject failed")

    def assign(self, process: Any) -> None:
        """Put a started process (a `subprocess.Popen`, whose `_handle` is its process handle) in the job."""
        if not self.kernel32.AssignProcessToJobObject(self.handle, int(process._handle)):
            raise JobError(f"AssignProcessToJobObject failed for process {process.pid}")

    def terminate(self) -> None:
        """End every process in the job (a job whose processes all ended already is no error)."""
        if self.handle:
            self.kernel32.TerminateJobObject(self.handle, KILLED_EXIT_CODE)

    def close(self) -> None:
        """Let go of the job; with kill-on-close, whatever still runs in it ends."""
        if self.handle:
            self.kernel32.CloseHandle(self.handle)
            self.handle = None
