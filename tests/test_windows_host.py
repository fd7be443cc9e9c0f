"""A Windows Resolve host, laid out on this machine: Resolve installed under %PROGRAMFILES% on another drive,
its scripting API under %PROGRAMDATA%, the OS patched where the bridge and the CLI ask for it
(`bridge.install.system`, `platform.system`). What `doctor` finds there, what it loads, what a worker
would run, all through the code a Windows host runs."""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
from pathlib import Path

import pytest
from fixtures.build import pe_library

from bridge import install
from bridge.session import SIM_SCRIPT_API
from orchestrator.cli import main


@pytest.mark.skipif(sys.platform != "linux", reason="the stand-in ResolvePython.exe is a shell script")
def test_doctor_on_a_windows_install_finds_resolve_where_windows_puts_it_and_says_what_a_worker_runs(
    sim_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    files, data = tmp_path / "D" / "Program Files", tmp_path / "D" / "ProgramData"
    resolve = files / "Blackmagic Design" / "DaVinci Resolve"
    resolve.mkdir(parents=True)
    library = resolve / "fusionscript.dll"
    library.write_bytes(pe_library(f"python{sys.version_info.major}{sys.version_info.minor}.dll"))
    used = tmp_path / "used"
    python = resolve / "ResolvePython.exe"  # Resolve's own interpreter, as 21.1 ships it
    python.write_text(f'#!/bin/sh\necho "$$" >> "{used}"\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    scripting = data / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Developer" / "Scripting"
    shutil.copytree(SIM_SCRIPT_API / "Modules", scripting / "Modules")  # DaVinciResolveScript, reaching the sim
    for variable in ("RESOLVE_SCRIPT_API", "RESOLVE_SCRIPT_LIB", "RESOLVE_PYTHON", "RESOLVE_FARM_BROKER_URL",
                     "RESOLVE_FARM_WORKER_POOL"):  # fmt: skip
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("PROGRAMFILES", str(files))
    monkeypatch.setenv("PROGRAMDATA", str(data))
    monkeypatch.setattr(install, "system", lambda: "win32")
    monkeypatch.setattr(platform, "system", lambda: "Windows")
    dll_folders: list[str] = []
    monkeypatch.setattr(os, "add_dll_directory", dll_folders.append, raising=False)

    code = main(["doctor", "--json"])
    report = json.loads(capsys.readouterr().out)

    found = report["library"]
    assert found["looked_in"] == [str(library)] and found["found"] == str(library)  # %PROGRAMFILES%, not C:
    # Its headers pass (a PE library for this machine and this Python); Windows' loader would be told
    # Resolve's folder for its DLLs; this machine's loader cannot load a PE file, and says so.
    assert dll_folders == [str(resolve)]
    assert found["loaded"] is False and "cannot load" in found["error"]
    # auto falls back to the helper, under Resolve's own interpreter, importing the scripting API from
    # %PROGRAMDATA%: it reaches Resolve.
    assert report["auto"]["chosen"] == "subprocess" and report["connection"]["ok"]
    assert report["connection"]["product"] == "DaVinci Resolve Studio"
    assert used.read_text().strip()  # the helper ran under ResolvePython.exe
    worker = report["worker"]
    assert (worker["system"], worker["pool"], worker["bridge"]) == ("Windows", "threads", "subprocess")
    assert any("a worker only" in note and "no Windows build" in note for note in worker["notes"])
    assert code == 0 and report["ok"]
    # prefork is refused on Windows, with the reason, and doctor fails for it.
    monkeypatch.setenv("RESOLVE_FARM_WORKER_POOL", "prefork")
    assert main(["doctor", "--json"]) == 1
    refused = json.loads(capsys.readouterr().out)["worker"]
    assert not refused["ok"] and "prefork does not run on Windows" in refused["error"]


def test_the_helper_is_handed_resolves_scripting_folder_only_when_nothing_else_names_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bridge.session import helper_for
    from bridge.settings import BridgeSettings

    monkeypatch.setattr(install, "system", lambda: "win32")
    monkeypatch.setenv("PROGRAMDATA", str(tmp_path / "ProgramData"))
    monkeypatch.delenv("RESOLVE_SCRIPT_API", raising=False)
    default = str(tmp_path / "ProgramData" / "Blackmagic Design" / "DaVinci Resolve" / "Support" / "Developer"
                  / "Scripting")  # fmt: skip
    assert helper_for(BridgeSettings(mode="subprocess")).env["RESOLVE_SCRIPT_API"] == default
    configured = BridgeSettings(mode="subprocess", script_api=tmp_path / "mine")
    assert helper_for(configured).env["RESOLVE_SCRIPT_API"] == str(tmp_path / "mine")
    # Set in the worker's environment (which the helper inherits), it is not overridden by the default.
    monkeypatch.setenv("RESOLVE_SCRIPT_API", str(tmp_path / "env"))
    assert "RESOLVE_SCRIPT_API" not in helper_for(BridgeSettings(mode="subprocess")).env
