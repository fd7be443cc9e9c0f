"""Which Celery pool a worker runs: prefork where fork and POSIX signals hold, threads where they do not.

`prefork` runs each task in a forked child that Celery's hard time limit kills: the defence
against a Resolve call hung in C code. Windows has neither fork nor the signals (Celery has
not supported it since 4.0), and on macOS forking after the parent loaded Objective-C
frameworks can abort the child. `threads` runs one task at a time in a thread of the worker
process (Celery's threads pool: unlike `solo` it keeps the consumer, remote control and
broker heartbeats alive during a piece); every Resolve call then goes through the subprocess
helper, and deadlines are enforced by killing the helper (`tasks.deadline`), never by a signal.
"""

from __future__ import annotations

import platform
from typing import Any, Literal

Pool = Literal["prefork", "threads"]
ASKED = ("auto", "prefork", "threads")
MACOS_PREFORK = (
    "prefork on macOS is unverified: a child forked after Objective-C frameworks loaded can abort; "
    "--pool threads (or auto) avoids it"
)


class PoolRefused(ValueError):
    """The pool asked for cannot run on this system; the message says why and what to use."""


def pool_for(asked: str, system: str | None = None) -> Pool:
    """The pool a worker asked for `asked` runs on `system` (`platform.system()`): `auto` is prefork on Linux,
    threads on Windows and macOS; prefork on Windows is refused.

    Note: prefork on macOS is allowed when asked for by name, and documented as unverified.
    """
    system = system or platform.system()
    if asked not in ASKED:
        raise PoolRefused(f"pool: {asked!r} is not one of {', '.join(ASKED)}")
    if asked == "auto":
        return "prefork" if system == "Linux" else "threads"
    if asked == "prefork" and system == "Windows":
        raise PoolRefused(
            "pool: prefork does not run on Windows (Celery has not supported Windows since 4.0: tasks received "
            "and never run, pools that cannot pickle their processes, hard limits that kill children without "
            "replacing them); use --pool threads, or auto"
        )
    return "threads" if asked == "threads" else "prefork"


def bridge_for(pool: Pool, bridge: str) -> str:
    """The bridge mode a worker of `pool` uses when asked for `bridge`: in `threads`, Resolve is called through the
    subprocess helper (`auto` becomes `subprocess`; `native` is refused: a call hung inside this process could not
    be ended without ending the worker); the simulator runs in process either way."""
    if pool == "prefork" or bridge in ("subprocess", "sim"):
        return bridge
    if bridge == "native":
        raise PoolRefused(
            "bridge: native loads Resolve's library into the worker, and in the threads pool nothing could end "
            "a call hung there but the end of the worker; use --bridge subprocess (or auto)"
        )
    return "subprocess"


def worker_report(
    asked: str, bridge: str, system: str, piece_deadline: float, learnt_start: float | None
) -> dict[str, Any]:
    """What a worker started here would run, for `doctor`: its pool and bridge mode, or why it would be refused;
    what this host can be; warnings (`learnt_start`: the longest render start this node paid on the farm,
    None when not known)."""
    report: dict[str, Any] = {"system": system, "asked": asked, "ok": True, "warnings": [], "notes": []}
    try:
        report["pool"] = pool = pool_for(asked, system)
        report["bridge"] = bridge_for(pool, bridge)
    except PoolRefused as exc:
        return {**report, "ok": False, "error": str(exc)}
    if pool == "prefork" and system == "Darwin":
        report["warnings"].append(MACOS_PREFORK)
    if system == "Windows":
        report["notes"].append("a worker only: `resolve-farm up` and the demo need the embedded Redis, which has no "
                               "Windows build; set RESOLVE_FARM_BROKER_URL to the farm's Redis")  # fmt: skip
    if learnt_start is not None and piece_deadline <= learnt_start:
        report["warnings"].append(
            f"the piece deadline (render_time_limit, {piece_deadline:g}s) is below the render start cost this "
            f"node paid on the farm ({learnt_start:g}s): every piece would be ended before its first frame"
        )
    return report
