"""The native path, through a real compiled CPython extension named fusionscript."""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import pytest
from fixtures import build

from bridge import native
from bridge.errors import ConnectError, EntryPointMissing, LibraryLoadError, LibraryNotFound
from bridge.session import connect
from bridge.settings import BridgeSettings
from bridge.sim import framecode


def test_native_path_end_to_end(sim_env, native_lib: Path, tmp_path: Path) -> None:
    session = connect(BridgeSettings(mode="native", script_lib=native_lib))
    assert session.mode == "native"
    assert session.resolve_info["product"] == "DaVinci Resolve Studio"
    assert type(session.backend.resolve).__module__ == "bridge.sim.resolve"  # the module's scriptapp answered
    session.open_project("Demo")
    info = session.timeline_info("Teaser")
    result = session.render("Teaser", info["start_frame"], info["start_frame"] + 23, str(tmp_path / "out"), "native")
    assert framecode.read_file(result.outputs[0]) == list(range(info["start_frame"], info["start_frame"] + 24))


def test_native_remote_host_that_does_not_answer(sim_env, native_lib: Path) -> None:
    with pytest.raises(ConnectError, match=r"no Resolve answered at 203.0.113.7") as err:
        connect(BridgeSettings(mode="native", script_lib=native_lib, host="203.0.113.7"))
    assert "Network" in err.value.fix


def test_native_local_host_by_address(sim_env, native_lib: Path) -> None:
    assert connect(BridgeSettings(mode="native", script_lib=native_lib, host="127.0.0.1")).ping()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(LibraryNotFound, match=r"nowhere.so"):
        native.find_library(tmp_path / "nowhere.so")


def test_explicit_setting_never_falls_back_to_defaults(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOLVE_SCRIPT_LIB", str(tmp_path / "gone.so"))
    assert native.candidates() == [tmp_path / "gone.so"]
    monkeypatch.delenv("RESOLVE_SCRIPT_LIB")
    assert native.candidates() == [Path("/opt/resolve/libs/Fusion/fusionscript.so")]


def test_plain_library_without_entry_point(tmp_path: Path) -> None:
    if build.compiler() is None:
        pytest.skip("no C compiler")
    lib = build.plain_library(tmp_path)
    with pytest.raises(EntryPointMissing, match="no PyInit_fusionscript") as err:
        native.open_library(lib)
    assert err.value.kind == "missing_entry_point"


def test_file_that_is_not_a_library(tmp_path: Path) -> None:
    fake = tmp_path / "fusionscript.so"
    fake.write_text("#!/bin/sh\necho I am not a library\n")
    with pytest.raises(LibraryLoadError, match="not a shared library") as err:
        native.open_library(fake)
    assert err.value.kind == "not_a_library"


def test_library_for_another_architecture(native_lib: Path, tmp_path: Path) -> None:
    foreign = tmp_path / "fusionscript.so"
    shutil.copy(native_lib, foreign)
    data = bytearray(foreign.read_bytes())
    machine = 183 if native.binfmt.this_machine() != "arm64" else 62  # arm64, or x86_64 on an arm host
    struct.pack_into("<H", data, 18, machine)
    foreign.write_bytes(bytes(data))
    with pytest.raises(LibraryLoadError, match="built for") as err:
        native.open_library(foreign)
    assert err.value.kind == "wrong_architecture"


def test_missing_dependency_uses_the_loaders_words(tmp_path: Path) -> None:
    if build.compiler() is None:
        pytest.skip("no C compiler")
    lib = build.needing_missing_dependency(tmp_path)
    with pytest.raises(LibraryLoadError, match=r"libresolvedep.so") as err:
        native.open_library(lib)
    assert err.value.kind == "missing_dependency"


def test_library_linked_to_another_python(tmp_path: Path) -> None:
    """Read from the link table: a real DT_NEEDED on libpython2.7 is refused; the same name in data is not a link."""
    if build.compiler() is None:
        pytest.skip("no C compiler")
    linked = build.linked_to_another_python(tmp_path)
    info = native.binfmt.inspect(str(linked))
    assert "libpython2.7.so.1.0" in info.needed and info.pythons == ("2.7",)
    with pytest.raises(LibraryLoadError, match=r"Python 2.7") as err:
        native.open_library(linked)
    assert err.value.kind == "python_mismatch"
    mentions = build.mentioning_another_python(tmp_path)
    assert b"libpython2.7.so.1.0" in mentions.read_bytes()  # the words are in the file...
    info = native.binfmt.inspect(str(mentions))
    assert info.pythons == () and not any("python" in n for n in info.needed)  # ...but it links to no Python
    assert native.open_library(mentions).info.kind == "elf"  # accepted


def _macho(cpu: int, loads: list[tuple[int, str]]) -> bytes:
    commands = b""
    for cmd, name in loads:
        text = name.encode() + b"\0"
        size = (24 + len(text) + 7) // 8 * 8
        commands += struct.pack("<IIIIII", cmd, size, 24, 2, 0x10000, 0x10000) + text.ljust(size - 24, b"\0")
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, cpu, 3, 6, len(loads), len(commands), 0, 0)
    return header + commands + b"\0libpython3.7.dylib mentioned in a string\0"


def test_macho_link_table() -> None:
    framework = "/Library/Frameworks/Python.framework/Versions/3.9/Python"
    thin = _macho(0x01000007, [(0xC, "/usr/lib/libSystem.B.dylib"), (0xD, "@rpath/fusionscript.so"),
                               (0x80000018, framework)])  # fmt: skip
    kind, machines, needed = native.binfmt._read(thin)
    assert (kind, machines) == ("macho", ("x86_64",))
    assert needed == ["/usr/lib/libSystem.B.dylib", framework]  # its own id (LC_ID_DYLIB) is not a dependency
    assert native.binfmt.pythons_of(needed) == ("3.9",)  # the string naming 3.7 is no link
    arm = _macho(0x0100000C, [(0xC, "/usr/lib/libSystem.B.dylib")])
    offset = 4096
    fat = struct.pack(">II", 0xCAFEBABE, 2) + struct.pack(">IIIII", 0x01000007, 3, offset, len(thin), 12)
    fat += struct.pack(">IIIII", 0x0100000C, 0, offset * 2, len(arm), 12)
    fat = fat.ljust(offset, b"\0") + thin.ljust(offset, b"\0") + arm
    kind, machines, needed = native.binfmt._read(fat)
    assert machines == ("x86_64", "arm64") and framework in needed


def test_pe_import_table() -> None:
    data = build.pe_library("python39.dll", extra=b"python27.dll\0\0\0\0")  # a name in data, not imported
    kind, machines, needed = native.binfmt._read(bytes(data))
    assert (kind, machines, needed) == ("pe", ("x86_64",), ["python39.dll", "KERNEL32.dll"])
    assert native.binfmt.pythons_of(needed) == ("3.9",)


@pytest.mark.parametrize(
    "message,winerror,kind",
    [
        (
            "/opt/r193/fusionscript.so: libdep126.so: cannot open shared object file: No such file or directory",
            None,
            "missing_dependency",
        ),
        ("/srv/126/fusionscript.so: undefined symbol: PyFake_Init", None, "missing_symbol"),
        (
            "/srv/126/fusionscript.so: /lib/libc.so.6: version `GLIBC_9.99' not found (required by /srv/126/x.so)",
            None,
            "missing_symbol",
        ),
        ("/srv/193/fusionscript.so: wrong ELF class: ELFCLASS32", None, "wrong_architecture"),
        ("/srv/193/fusionscript.so: invalid ELF header", None, "load_failed"),  # "193" in the path decides nothing
        ("[WinError 193] %1 is not a valid Win32 application", 193, "wrong_architecture"),
        ("[WinError 126] The specified module could not be found", 126, "missing_dependency"),
    ],
)
def test_load_errors_are_classified_by_code_or_the_loaders_words(message: str, winerror: int | None, kind: str) -> None:
    path = Path(message.split(": ", 1)[0]) if message.startswith("/") else Path("C:/Resolve/fusionscript.dll")
    exc = OSError(message)
    if winerror is not None:
        exc.winerror = winerror  # type: ignore[attr-defined]
    assert native._explain_load_error(path, exc).kind == kind


def test_a_missing_versioned_symbol_is_named(tmp_path: Path) -> None:
    """A library that needs a symbol version its dependency lacks: the real loader's message, classified."""
    if build.compiler() is None:
        pytest.skip("no C compiler")
    lib = build.needing_a_symbol_version(tmp_path)
    with pytest.raises(LibraryLoadError) as err:
        native.open_library(lib)
    assert err.value.kind == "missing_symbol" and "VERS_9" in str(err.value)
