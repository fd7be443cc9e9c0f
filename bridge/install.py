"""Where DaVinci Resolve installs itself on each OS: its scripting library, its bundled Python, its scripting API.

Every default path is made here, from the OS this process runs on (`system`) and, on
Windows, from `%PROGRAMFILES%` and `%PROGRAMDATA%` (another drive than C: is common on
render hosts). `system` is the one place the bridge asks which OS it is on for Resolve's
layout, so a test can lay out a Windows install on Linux and patch it here.

Note: the helper (`bridge/helper.py`) imports nothing of ours and keeps its own defaults for
standalone runs; the bridge passes it `RESOLVE_SCRIPT_API` from here.
"""

from __future__ import annotations

import os
import sys

MACOS_APP = "/Applications/DaVinci Resolve/DaVinci Resolve.app/Contents"


def system() -> str:
    """This OS as Resolve's layout knows it: "linux", "darwin" or "win32" (else sys.platform)."""
    return "linux" if sys.platform.startswith("linux") else sys.platform


def _windows(variable: str, default: str, *parts: str) -> str:
    return os.path.join(os.environ.get(variable) or default, "Blackmagic Design", "DaVinci Resolve", *parts)


def library_paths() -> list[str]:
    """Where Resolve's scripting library (fusionscript) is installed by default on this OS."""
    paths = {
        "linux": ["/opt/resolve/libs/Fusion/fusionscript.so"],
        "darwin": [f"{MACOS_APP}/Libraries/Fusion/fusionscript.so"],
        "win32": [_windows("PROGRAMFILES", r"C:\Program Files", "fusionscript.dll")],
    }
    return paths.get(system(), [])


def bundled_pythons() -> list[str]:
    """Where Resolve 21.1's own interpreter sits beside the application (assumed: the application's own folder)."""
    paths = {
        "linux": ["/opt/resolve/bin/ResolvePython"],
        "darwin": [f"{MACOS_APP}/MacOS/ResolvePython"],
        "win32": [_windows("PROGRAMFILES", r"C:\Program Files", "ResolvePython.exe")],
    }
    return paths.get(system(), [])


def script_api() -> str | None:
    """The folder holding Resolve's scripting `Modules/` (RESOLVE_SCRIPT_API's default, as Resolve documents it)."""
    paths = {
        "linux": "/opt/resolve/Developer/Scripting",
        "darwin": "/Library/Application Support/Blackmagic Design/DaVinci Resolve/Developer/Scripting",
        "win32": _windows("PROGRAMDATA", r"C:\ProgramData", "Support", "Developer", "Scripting"),
    }
    return paths.get(system())
