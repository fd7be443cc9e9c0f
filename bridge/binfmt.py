"""What kind of binary a file is, read from its header and link table: enough to explain a failed load.

Standard library only. Knows ELF, Mach-O (thin and fat) and PE; reports the machine it was
built for and the libraries it links against (ELF `DT_NEEDED`, Mach-O `LC_LOAD_DYLIB` and
kin, PE imports), so that "wrong architecture" and "built for another Python" can be said
plainly instead of passing on the loader's riddle. A Python named anywhere else in the file
(help text, a string in its data) proves nothing and is not read.
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
# How a linked library's name says which Python it is.
PYTHON_REFS = (
    re.compile(r"libpython([23])\.(\d{1,2})[a-z]*\.(?:so|dylib)"),
    re.compile(r"^python([23])(\d{1,2})\.dll$", re.IGNORECASE),
    re.compile(r"Python\.framework/Versions/([23])\.(\d{1,2})/"),
)
MACHO_LOADS = {0xC, 0x80000018, 0x8000001F, 0x20, 0x80000023}  # LOAD, WEAK, REEXPORT, LAZY_LOAD, UPWARD


@dataclass(frozen=True)
class BinaryInfo:
    """The header facts of one file."""

    kind: str  # "elf", "macho", "pe" or "unknown"
    machines: tuple[str, ...]  # several for a macOS universal binary
    pythons: tuple[str, ...]  # "3.10"-style versions of the Pythons it links against, if any
    needed: tuple[str, ...] = ()  # the libraries its link table names


def this_machine() -> str:
    machine = platform.machine().lower()
    return ALIASES.get(machine, machine)


def this_python() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def inspect(path: str) -> BinaryInfo:
    with open(path, "rb") as f:
        data = f.read()
    kind, machines, needed = _read(data)
    return BinaryInfo(kind, machines, pythons_of(needed), tuple(needed))


def pythons_of(needed: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The Python versions that linked library names stand for."""
    return tuple(sorted({f"{a}.{b}" for name in needed for ref in PYTHON_REFS for a, b in ref.findall(name)}))


def _read(data: bytes) -> tuple[str, tuple[str, ...], list[str]]:
    try:
        if data[:4] == b"\x7fELF" and len(data) >= 52:
            return "elf", (_elf_machine(data),), _elf_needed(data)
        if data[:4] in (b"\xcf\xfa\xed\xfe", b"\xce\xfa\xed\xfe"):
            cpu, needed = _macho(data, 0)
            return "macho", (cpu,), needed
        if data[:4] == b"\xca\xfe\xba\xbe":
            (count,) = struct.unpack_from(">I", data, 4)
            cpus, needed = [], []
            for i in range(min(count, 8)):
                _, _, offset, _, _ = struct.unpack_from(">IIIII", data, 8 + 20 * i)
                cpu, names = _macho(data, offset)
                cpus.append(cpu)
                needed += [n for n in names if n not in needed]
            return "macho", tuple(cpus), needed
        if data[:2] == b"MZ" and len(data) >= 64:
            (offset,) = struct.unpack_from("<I", data, 0x3C)
            if data[offset : offset + 4] == b"PE\0\0":
                (machine,) = struct.unpack_from("<H", data, offset + 4)
                return "pe", (PE_MACHINES.get(machine, f"pe-machine-{machine:#x}"),), _pe_imports(data, offset)
    except struct.error:
        pass  # a truncated or damaged table: the loader will say what it makes of it
    return "unknown", (), []


def _cstring(data: bytes, offset: int) -> str:
    end = data.find(b"\0", offset)
    return data[offset : end if end >= 0 else len(data)].decode("utf-8", "replace")


def _elf_machine(data: bytes) -> str:
    endian = "<" if data[5] == 1 else ">"
    (machine,) = struct.unpack_from(endian + "H", data, 18)
    return ELF_MACHINES.get(machine, f"elf-machine-{machine}")


def _elf_needed(data: bytes) -> list[str]:
    """The DT_NEEDED names of the dynamic segment, with strings from DT_STRTAB mapped through PT_LOAD."""
    wide, endian = data[4] == 2, "<" if data[5] == 1 else ">"
    if wide:
        phoff, phentsize, phnum = (
            struct.unpack_from(endian + "Q", data, 32)[0],
            *struct.unpack_from(endian + "HH", data, 54),
        )
        ph, dyn_entry = endian + "IIQQQQQQ", endian + "qQ"
    else:
        phoff, phentsize, phnum = (
            struct.unpack_from(endian + "I", data, 28)[0],
            *struct.unpack_from(endian + "HH", data, 42),
        )
        ph, dyn_entry = endian + "IIIIIIII", endian + "iI"
    loads, dynamic = [], None
    for i in range(phnum):
        fields = struct.unpack_from(ph, data, phoff + i * phentsize)
        if wide:
            p_type, _, p_offset, p_vaddr, _, p_filesz = fields[:6]
        else:
            p_type, p_offset, p_vaddr, _, p_filesz = fields[:5]
        if p_type == 1:
            loads.append((p_vaddr, p_offset, p_filesz))
        elif p_type == 2:
            dynamic = (p_offset, p_filesz)
    if dynamic is None:
        return []
    size = struct.calcsize(dyn_entry)
    needed, strtab = [], None
    for at in range(dynamic[0], dynamic[0] + dynamic[1] - size + 1, size):
        tag, value = struct.unpack_from(dyn_entry, data, at)
        if tag == 0:
            break
        if tag == 1:
            needed.append(value)
        elif tag == 5:
            strtab = value
    if strtab is None:
        return []
    base = next((off + strtab - vaddr for vaddr, off, filesz in loads if vaddr <= strtab < vaddr + filesz), None)
    return [] if base is None else [_cstring(data, base + n) for n in needed]


def _macho(data: bytes, start: int) -> tuple[str, list[str]]:
    """The CPU of one Mach-O image at `start` and the dylibs its load commands name."""
    wide = data[start : start + 4] == b"\xcf\xfa\xed\xfe"
    cpu, _, _, ncmds, _ = struct.unpack_from("<iiIII", data, start + 4)
    at, needed = start + (32 if wide else 28), []
    for _ in range(ncmds):
        cmd, cmdsize = struct.unpack_from("<II", data, at)
        if cmd in MACHO_LOADS:
            (name_offset,) = struct.unpack_from("<I", data, at + 8)
            needed.append(_cstring(data, at + name_offset))
        if cmdsize < 8:
            break
        at += cmdsize
    return MACHO_CPUS.get(cpu & 0xFFFFFFFF, f"cpu-{cpu}"), needed


def _pe_imports(data: bytes, pe: int) -> list[str]:
    """The DLL names of a PE file's import directory, its RVAs mapped through the section table."""
    sections, optional_size = struct.unpack_from("<HxxxxxxxxxxxxH", data, pe + 6)
    optional = pe + 24
    (magic,) = struct.unpack_from("<H", data, optional)
    directories = optional + (112 if magic == 0x20B else 96)
    import_rva, _ = struct.unpack_from("<II", data, directories + 8)  # directory 1: imports
    table = optional + optional_size
    spans = []
    for i in range(sections):
        vsize, vaddr, rawsize, rawptr = struct.unpack_from("<IIII", data, table + 40 * i + 8)
        spans.append((vaddr, max(vsize, rawsize), rawptr))

    def offset(rva: int) -> int | None:
        return next((ptr + rva - va for va, size, ptr in spans if va <= rva < va + size), None)

    at, names = offset(import_rva) if import_rva else None, []
    while at is not None and at + 20 <= len(data):
        descriptor = struct.unpack_from("<IIIII", data, at)
        if not any(descriptor):
            break
        name_at = offset(descriptor[3])
        if name_at is not None:
            names.append(_cstring(data, name_at))
        at += 20
    return names
