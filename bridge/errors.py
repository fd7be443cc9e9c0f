"""The bridge's errors: each says what failed and, where it can, how to fix it.

Standard library only: these cross the helper's pipe by name and are rebuilt in the parent.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every bridge failure. `fix` is advice for a person, or empty."""

    reason = "error"

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.fix})" if self.fix else self.message


class LibraryNotFound(BridgeError):
    """No scripting library where RESOLVE_SCRIPT_LIB or the platform's default points."""

    reason = "library not found"


class LibraryLoadError(BridgeError):
    """The library exists but cannot be used in this process; `kind` says why."""

    reason = "library failed to load"

    def __init__(self, message: str, kind: str, fix: str = "") -> None:
        super().__init__(message, fix)
        self.kind = kind  # not_a_library, wrong_architecture, missing_dependency, python_mismatch


class EntryPointMissing(LibraryLoadError):
    """The library loads but has no `PyInit_fusionscript`: it is not Resolve's module."""

    reason = "symbol resolution failed"


class ConnectError(BridgeError):
    """The library loaded but no Resolve answered."""

    reason = "connection failed"


class ScriptModuleMissing(ConnectError):
    """The helper's interpreter cannot import `DaVinciResolveScript`: it says nothing about Resolve."""

    reason = "scripting module not found"


class ScriptingUnavailable(ConnectError):
    """Resolve answered but refuses scripting: a free edition of 21.1 or later (a Studio feature there)."""

    reason = "scripting unavailable (not Studio)"


class CallTimeout(BridgeError):
    """A call into Resolve did not return in time."""

    reason = "timeout"


class HelperDied(BridgeError):
    """The fallback helper process exited while serving a call."""

    reason = "helper died"


class OperationError(BridgeError):
    """Resolve refused an operation (a missing project, a refused setting, a failed render)."""

    reason = "runtime error"


class RenderFailed(OperationError):
    """A render ended with JobStatus Failed."""


class RenderCancelled(OperationError):
    """A render was stopped before it completed."""


ERRORS = {
    cls.__name__: cls
    for cls in (
        BridgeError,
        LibraryNotFound,
        LibraryLoadError,
        EntryPointMissing,
        ConnectError,
        ScriptModuleMissing,
        ScriptingUnavailable,
        CallTimeout,
        HelperDied,
        OperationError,
        RenderFailed,
        RenderCancelled,
    )
}
