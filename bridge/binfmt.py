"""What kind of binary a file is, read from its header: enough to explain a failed load.

Standard library only. Knows ELF, Mach-O (thin and fat) and PE; reports the machine it was
built for and any libpython it names, so that "wrong architecture" and "built for another
Python" can be said plainly instead of passing on the loader's riddle.
"""

from __future__ import annotations

import platform
import re
import struct
import sys
from dataclasses import dataclass

ELF_MACHINES = {3: "x86", 62: "x86_64", 40: "arm", 183: "arm64", 8: "mips", 20: "ppc", 21: "ppc64", 243: "riscv"}
MACHO_CPUS = {7: "x86", 0x01000007: "x86_64", 12: "arm", 0x0100000C: "arm64"}
PE_MACHINES = {0x14C: "x86", 0x8664: "x86_64", 0x1C0: "arm", 0xAA64: "arm64"}
ALIASES = {"amd64": "x86_64", "x64": "x86_64", "aarch64": "arm64", "i386": "x86", "i686": "x86", "armv7l": "arm"}
# Only link-style references count: help text that merely mentions a Python proves nothing.
PYTHON_REFS = (
    re.compile(rb"libpython([23])\.(\d{1,2})[a-z]*\.(?:so|dylib)"),
    re.compile(rb"\bpython([23])(\d{1,2})\.dll", re.IGNORECASE),
    re.compile(rb"Python\.framework/Versions/([23])\.(\d{1,2})/"),
)


@dataclass(frozen=True)
class BinaryInfo:
    """The header facts of one file."""

    kind: str  # "elf", "macho", "pe" or "unknown"
    machines: tuple[str, ...]  # several for a macOS universal binary
    pythons: tuple[str, ...]  # "3.10"-style versions the file names, if any


def this_machine() -> str:
    machine = platform.machine().lower()
    return ALIASES.get(machine, machine)


def this_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def inspect(path: str, scan_limit: int = 64 * 1024 * 1024) -> BinaryInfo:
    with open(path, "rb") as f:
        head = f.read(4096)
        f.seek(0)
        body = f.read(scan_limit)
    pythons = tuple(sorted({f"{a.decode()}.{b.decode()}" for ref in PYTHON_REFS for a, b in ref.findall(body)}))
    if head[:4] == b"\x7fELF" and len(head) >= 20:
        endian = "<" if head[5] == 1 else ">"
        (machine,) = struct.unpack_from(endian + "H", head, 18)
        return BinaryInfo("elf", (ELF_MACHINES.get(machine, f"elf-machine-{machine}"),), pythons)
    magic = head[:4]
    if magic in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
        (cpu,) = struct.unpack_from("<i", head, 4)
        return BinaryInfo("macho", (MACHO_CPUS.get(cpu & 0xFFFFFFFF, f"cpu-{cpu}"),), pythons)
    if magic == b"\xca\xfe\xba\xbe":
        (count,) = struct.unpack_from(">I", head, 4)
        cpus = [struct.unpack_from(">I", head, 8 + 20 * i)[0] for i in range(min(count, 8))]
        return BinaryInfo("macho", tuple(MACHO_CPUS.get(c, f"cpu-{c}") for c in cpus), pythons)
    if head[:2] == b"MZ" and len(head) >= 64:
        (offset,) = struct.unpack_from("<I", head, 0x3C)
        if offset + 6 <= len(head) and head[offset : offset + 4] == b"PE\0\0":
            (machine,) = struct.unpack_from("<H", head, offset + 4)
            return BinaryInfo("pe", (PE_MACHINES.get(machine, f"pe-machine-{machine:#x}"),), pythons)
    return BinaryInfo("unknown", (), pythons)
