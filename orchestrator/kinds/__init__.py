"""The registry of job kinds: `render`, `edit`, `proxies` and `hold` here, more from plugin modules.

A kind registers itself when its module is imported (`register(MyKind())`). Plugin modules
named in the `plugins` setting are imported by the control plane (`load_plugins`) and by
every worker (as Celery task modules), so one module can bring a kind's compiler and its
tasks together.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from orchestrator.kinds.base import Compiled, JobKind, SubmitRefused
from orchestrator.models import JobRecord

_kinds: dict[str, JobKind[Any, Any]] = {}


def register(kind: JobKind[Any, Any]) -> JobKind[Any, Any]:
    _kinds[kind.name] = kind
    return kind


def get(name: str) -> JobKind[Any, Any]:
    try:
        return _kinds[name]
    except KeyError:
        raise SubmitRefused("kind", f"unknown job kind {name!r} (known: {', '.join(sorted(_kinds))})") from None


def names() -> list[str]:
    return sorted(_kinds)


def served(plugins: Iterable[str]) -> list[str]:
    """The kinds a farm loading these plugin modules serves: its own, and those the plugins define (another
    module's, registered in this process by some other farm's settings, are not this farm's)."""
    modules = set(plugins)
    return [name for name, kind in sorted(_kinds.items())
            if type(kind).__module__.startswith(f"{__name__}.") or type(kind).__module__ in modules]  # fmt: skip


def records() -> dict[str, type[JobRecord[Any, Any, Any]]]:
    """The record model of every registered kind, by name: what the store reads records with."""
    return {name: kind.record for name, kind in _kinds.items()}


def load_plugins(modules: Iterable[str]) -> None:
    """Import plugin modules: each registers the kinds it defines. One that does not import is refused, naming
    the setting (every face reports it as it reports any refusal)."""
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise SubmitRefused("plugins", f"{module!r} does not import here ({exc}); is it on PYTHONPATH?") from exc


def task_modules() -> list[str]:
    """The task modules of every registered kind, for workers to import."""
    return sorted({module for kind in _kinds.values() for module in kind.task_modules})


from orchestrator.kinds import edit, hold, proxies, render  # noqa: E402  (they register themselves)

__all__ = [
    "Compiled",
    "JobKind",
    "SubmitRefused",
    "edit",
    "get",
    "hold",
    "load_plugins",
    "names",
    "proxies",
    "records",
    "register",
    "render",
    "served",
    "task_modules",
]
