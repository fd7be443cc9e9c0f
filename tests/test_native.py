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


def test_library_linked_to_another_python(native_lib: Path, tmp_path: Path) -> None:
    other = tmp_path / "fusionscript.so"
    shutil.copy(native_lib, other)
    with other.open("ab") as f:
        f.write(b"\0libpython2.7.so.1.0\0")  # as a DT_NEEDED string would read
    with pytest.raises(LibraryLoadError, match=r"Python 2.7") as err:
        native.open_library(other)
    assert err.value.kind == "python_mismatch"
