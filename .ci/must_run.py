"""CI's rule for tests that need root, a service or a tool: where this machine has it, they ran.

Each probe below checks on its own (not through the tests' own checks) that this machine has what
a group of tests needs; for each probe that succeeds, no test of its group may have been skipped
in the suite's JUnit report. Prints which groups ran and which could not here, and why.

Usage: python .ci/must_run.py REPORT.xml
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass


def _root() -> str | None:
    return None if os.geteuid() == 0 else "not root"


def _netns() -> str | None:
    if (why := _root()) or shutil.which("ip") is None:
        return why or "no iproute2"
    name = f"rf-ci-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode:
        return f"ip netns add: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", name], check=False)
    return None


def _tmpfs() -> str | None:
    if why := _root():
        return why
    with tempfile.TemporaryDirectory() as folder:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", folder], capture_output=True, text=True
        )
        if mounted.returncode:
            return f"mount tmpfs: {mounted.stderr.strip()}"
        subprocess.run(["umount", folder], check=False)
    return None


def _compiler() -> str | None:
    return None if any(shutil.which(cc) for cc in ("cc", "gcc", "clang")) else "no C compiler"


def _proc() -> str | None:
    return None if os.path.exists("/proc/self/stat") else "no /proc"


@dataclass(frozen=True)
class Group:
    """Tests that need one thing: the probe that says whether this machine has it (None: yes, else why not),
    their files (none: any file), and what their skip says when it is missing (None: any skip in those files)."""

    probe: Callable[[], str | None]
    files: tuple[str, ...]
    says: str | None = None

    def skipped_for_it(self, case: tuple[str, str, str | None]) -> bool:
        file, _, message = case
        return self.holds(file) and message is not None and (self.says is None or self.says in message)

    def holds(self, file: str) -> bool:
        return not self.files or file in self.files


GROUPS = {
    "root and network namespaces": Group(_netns, ("tests/test_hosts.py",)),
    "root and a tmpfs": Group(_tmpfs, ("tests/test_storage_full.py",)),
    "a C compiler": Group(_compiler, (), "C compiler"),
    "/proc": Group(_proc, (), "/proc"),
}


def _cases(report: str) -> list[tuple[str, str, str | None]]:
    """(file, test name, skip message or None) of every test case in a JUnit report."""
    found = []
    for case in ET.parse(report).iter("testcase"):
        module = case.get("classname", "").split(".")
        path = "/".join(module[: next((i + 1 for i, p in enumerate(module) if p.startswith("test_")), len(module))])
        skipped = case.find("skipped")
        found.append((f"{path}.py", case.get("name", ""), None if skipped is None else skipped.get("message", "")))
    return found


def main(report: str) -> int:
    cases = _cases(report)
    failed = False
    for name, group in GROUPS.items():
        why = group.probe()
        mine = [c for c in cases if group.holds(c[0])]
        skipped = [c for c in mine if group.skipped_for_it(c)]
        if why is not None:
            print(f"needs {name}: not here ({why}); {len(skipped)} of {len(mine)} test(s) skipped for it")
        elif skipped:
            failed = True
            for file, test, message in skipped:
                print(f"needs {name}: this machine has it, yet {file}::{test} was skipped: {message}")
        else:
            print(f"needs {name}: here; none of {len(mine)} test(s) in {', '.join(group.files) or 'the suite'} skipped")
    if not cases:
        print(f"{report} holds no test case")
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
