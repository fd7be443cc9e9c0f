"""Where files may go, and what each host calls them.

Outputs are confined to the configured storage roots (no `..`, no symlink out of them).
Path mapping rules translate a path as the farm knows it (the canonical form, as seen by
the orchestrator) into the form a node of another OS uses, and back:

    {"/mnt/renders": {"windows": "R:\\\\renders", "darwin": "/Volumes/renders"}}
"""

from __future__ import annotations

import ntpath
import os
import posixpath
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class PathRefused(ValueError):
    """A path that would leave the storage roots, or is not a path at all."""


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def confine(
    path: str | os.PathLike[str], roots: list[Path], field: str = "path", what: str = "the storage roots"
) -> Path:
    """`path` (relative to the first root, or absolute) resolved and checked to lie within a root."""
    text = os.fspath(path)
    if "\x00" in text:
        raise PathRefused(f"{field}: contains a NUL byte")
    parts = Path(text).parts
    if ".." in parts:
        raise PathRefused(f"{field}: '..' is not allowed ({text!r})")
    candidate = Path(text) if os.path.isabs(text) else roots[0] / text
    real = os.path.realpath(candidate)  # follows symlinks: one pointing out of the roots is refused
    for root in roots:
        if _inside(real, os.path.realpath(root)):
            return Path(real)
    allowed = ", ".join(str(r) for r in roots)
    raise PathRefused(f"{field}: {text!r} is outside {what} ({allowed})")


def plain_name(name: str, field: str = "name") -> str:
    """A file name with no directory part, safe on every OS."""
    if not name or name in (".", "..") or any(sep in name for sep in ("/", "\\", "\x00")) or ":" in name:
        raise PathRefused(f"{field}: {name!r} must be a plain file name")
    return name


class PathMap:
    """Translates canonical (orchestrator) paths to a node's OS form and back."""

    def __init__(self, rules: Mapping[str, Mapping[Any, str]]) -> None:
        # Longest prefixes first, so /mnt/renders/special wins over /mnt/renders.
        self.rules = sorted(rules.items(), key=lambda kv: len(kv[0]), reverse=True)

    def to_node(self, path: str, node_os: str) -> str:
        for canonical, forms in self.rules:
            target = forms.get(node_os)
            if target is not None and (path == canonical or path.startswith(canonical.rstrip("/") + "/")):
                rest = path[len(canonical) :].lstrip("/")
                return _join(target, rest, node_os)
        return path

    def from_node(self, path: str, node_os: str) -> str:
        for canonical, forms in self.rules:
            target = forms.get(node_os)
            if target is None:
                continue
            sep = "\\" if node_os == "windows" else "/"
            norm_path = path.replace("/", "\\") if node_os == "windows" else path
            norm_target = target.rstrip(sep)
            # Windows names are case-blind (R: and r:, \\NAS\share and \\nas\share): compared so.
            fold = str.casefold if node_os == "windows" else str
            if fold(norm_path) == fold(norm_target) or fold(norm_path).startswith(fold(norm_target + sep)):
                rest = norm_path[len(norm_target) :].lstrip(sep).replace("\\", "/")
                return posixpath.join(canonical, rest) if rest else canonical
        return path


def _join(base: str, rest: str, node_os: str) -> str:
    if not rest:
        return base
    if node_os == "windows":
        return ntpath.join(base, rest.replace("/", "\\"))
    return posixpath.join(base, rest)
