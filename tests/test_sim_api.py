"""The simulator against Resolve's documented API: names, signatures and behaviour."""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import itertools
import json
import os
from pathlib import Path

import pytest

from bridge.sim import API_CLASSES


def _stub_signatures() -> dict[str, dict[str, list[list[str]]]]:
    """{class: {method: [param names of each overload]}} from fusionscript-stubs."""
    dist = importlib.metadata.distribution("fusionscript-stubs")
    path = Path(str(dist.locate_file("fusionscript-stubs/fusionscript.pyi")))
    tree = ast.parse(path.read_text(encoding="utf-8"))
    classes: dict[str, dict[str, list[list[str]]]] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            methods = classes.setdefault(node.name, {})
            for fn in node.body:
                if isinstance(fn, ast.FunctionDef):
                    names = [a.arg for a in fn.args.posonlyargs + fn.args.args if a.arg != "self"]
                    if fn.args.vararg:
                        names.append("*" + fn.args.vararg.arg)
                    names += [a.arg for a in fn.args.kwonlyargs]
                    methods.setdefault(fn.name, []).append(names)
    return classes


def _sim_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(getattr(cls, name))
        for name in dir(cls)
        if name[:1].isupper() and callable(getattr(cls, name))
    }


def test_every_simulated_method_matches_the_stub() -> None:
    stubs = _stub_signatures()
    checked = 0
    for cls in API_CLASSES:
        assert cls.__name__ in stubs, f"{cls.__name__} is not a class of Resolve's API"
        for name, sig in _sim_methods(cls).items():
            overloads = stubs[cls.__name__].get(name)
            assert overloads is not None, f"{cls.__name__}.{name} is not in Resolve's API"
            params = [p for p in sig.parameters.values() if p.name != "self"]
            named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
            if any(p.kind is p.VAR_POSITIONAL for p in params):
                # One variadic method stands for the documented overloads.
                assert len(overloads) > 1 or any(n.startswith("*") for o in overloads for n in o), (
                    f"{cls.__name__}.{name} is variadic but the API has one form"
                )
                documented = {n for o in overloads for n in o}
                assert set(named) <= documented, f"{cls.__name__}.{name}: {named} not in {overloads}"
            else:
                forms = [[n for n in o if not n.startswith("*")] for o in overloads]
                assert named in forms, f"{cls.__name__}.{name}{named} matches none of {overloads}"
            checked += 1
    assert checked > 150  # the walk really covered the simulated API


def test_product_and_version(resolve) -> None:
    assert resolve.GetProductName() == "DaVinci Resolve Studio"
    assert resolve.GetVersionString().startswith("19.")
    assert resolve.GetVersion()[0] == 19
    assert resolve.OpenPage("deliver") and resolve.GetCurrentPage() == "deliver"
    assert resolve.OpenPage("nonsense") is False


def test_project_manager_folders_and_projects(resolve, tmp_path: Path) -> None:
    pm = resolve.GetProjectManager()
    assert pm.GetProjectListInCurrentFolder() == ["Demo"]
    assert pm.CreateFolder("Clients") and not pm.CreateFolder("Clients")
    assert pm.OpenFolder("Clients") and pm.GetCurrentFolder() == "Clients"
    project = pm.CreateProject("Ad_2026")
    assert project is not None and project.GetName() == "Ad_2026"
    assert pm.CreateProject("Ad_2026") is None  # names are unique in a folder
    assert pm.GetProjectListInCurrentFolder() == ["Ad_2026"]
    assert pm.GotoParentFolder() and pm.GetFolderListInCurrentFolder() == ["Clients"]
    assert pm.LoadProject("Ad_2026") is None  # not in this folder
    demo = pm.LoadProject("Demo")
    assert demo.GetName() == "Demo" and pm.GetCurrentProject().GetName() == "Demo"
    assert pm.SaveProject() is True
    assert pm.DeleteProject("Demo") is False  # the open project cannot be deleted
    assert pm.DeleteFolder("Clients") is False  # not empty


def test_export_and_import_drp(resolve, tmp_path: Path) -> None:
    pm = resolve.GetProjectManager()
    drp = tmp_path / "Demo.drp"
    assert pm.ExportProject("Demo", str(drp))
    assert json.loads(drp.read_text())["project"]["name"] == "Demo"
    assert pm.ImportProject(str(drp)) is False  # "Demo" exists already
    assert pm.ImportProject(str(drp), "Demo copy")
    copy = pm.LoadProject("Demo copy")
    assert copy.GetTimelineCount() == 4
    (tmp_path / "bad.drp").write_text("not a project")
    assert pm.ImportProject(str(tmp_path / "bad.drp")) is False


def test_databases(resolve) -> None:
    pm = resolve.GetProjectManager()
    assert pm.GetCurrentDatabase() == {"DbType": "Disk", "DbName": "Local Database"}
    names = [d["DbName"] for d in pm.GetDatabaseList()]
    assert names == ["Local Database", "Farm"]
    assert pm.SetCurrentDatabase({"DbType": "PostgreSQL", "DbName": "Farm", "IpAddress": "127.0.0.1"})
    assert pm.GetProjectListInCurrentFolder() == []
    assert pm.SetCurrentDatabase({"DbType": "Disk", "DbName": "Nope"}) is False
    assert pm.SetCurrentDatabase({"DbType": "Disk", "DbName": "Local Database"})


def test_timelines(demo) -> None:
    assert demo.GetTimelineCount() == 4
    assert demo.GetTimelineByIndex(0) is None and demo.GetTimelineByIndex(5) is None  # 1-based
    main = demo.GetTimelineByIndex(1)
    assert main.GetName() == "Main"
    assert (main.GetStartFrame(), main.GetEndFrame()) == (86400, 86400 + 120 * 24)
    assert main.GetStartTimecode() == "01:00:00:00"
    assert main.GetSetting("timelineFrameRate") == "24"
    assert (main.GetSetting("timelineResolutionWidth"), main.GetSetting("timelineResolutionHeight")) == ("1920", "1080")
    assert main.GetTrackCount("video") == 2 and main.GetTrackCount("audio") == 1
    items = main.GetItemListInTrack("video", 1)
    assert len(items) >= 5
    assert items[0].GetStart() == 86400 and items[-1].GetEnd() == main.GetEndFrame()
    assert all(a.GetEnd() == b.GetStart() for a, b in itertools.pairwise(items))
    assert items[0].GetClipColor() and items[0].GetName().endswith(".mov")
    assert demo.GetCurrentTimeline().GetName() == "Main"
    assert demo.SetCurrentTimeline(demo.GetTimelineByIndex(2)) and demo.GetCurrentTimeline().GetName() == "Teaser"


def test_markers(demo) -> None:
    tl = demo.GetTimelineByIndex(2)
    assert tl.AddMarker(10, "Red", "cut here", "note", 1, "id-1")
    assert tl.AddMarker(10, "Blue", "again", "", 1) is False  # one marker per frame
    assert tl.AddMarker(20, "NotAColor", "x", "", 1) is False
    assert tl.AddMarker(30, "Blue", "b", "", 5)
    assert list(tl.GetMarkers()) == [10, 30]
    assert tl.GetMarkers()[10]["customData"] == "id-1"
    assert tl.DeleteMarkersByColor("Red") and list(tl.GetMarkers()) == [30]
    assert tl.DeleteMarkerAtFrame(30) and tl.GetMarkers() == {}


def test_media_pool(demo) -> None:
    pool = demo.GetMediaPool()
    root = pool.GetRootFolder()
    assert root.GetName() == "Master"
    footage = root.GetSubFolderList()[0]
    assert footage.GetName() == "Footage"
    clip = footage.GetClipList()[0]
    assert clip.GetClipProperty("Clip Name") == clip.GetName()
    assert clip.SetClipColor("Teal") and clip.GetClipColor() == "Teal"
    assert clip.SetClipColor("Mauve") is False
    assert clip.SetMetadata("Description", "hero shot") and clip.GetMetadata("Description") == "hero shot"
    assert clip.SetMetadata({"Scene": "12", "Take": "3"}) and clip.GetMetadata()["Take"] == "3"
    assert clip.SetClipProperty("File Path", "/elsewhere") is False  # read-only
    bin_ = pool.AddSubFolder(root, "Selects")
    assert bin_.GetName() == "Selects" and pool.MoveClips([clip], bin_)
    assert [c.GetName() for c in bin_.GetClipList()] == [clip.GetName()]


def test_edits_are_shared_between_hosts(sim_env, tmp_path: Path) -> None:
    """Two simulated hosts on one library see each other's edits."""
    from bridge.sim import SimConfig, create

    host_a = create(SimConfig.from_env())
    host_b = create(SimConfig.from_env({**sim_env, "RESOLVE_SIM_FPS": "999"}))
    assert host_a is not host_b
    tl_a = host_a.GetProjectManager().LoadProject("Demo").GetTimelineByIndex(1)
    tl_b = host_b.GetProjectManager().LoadProject("Demo").GetTimelineByIndex(1)
    assert tl_a.AddMarker(5, "Green", "from A", "", 1)
    assert tl_b.GetMarkers()[5]["name"] == "from A"
    assert tl_b.SetName("Main v2") and tl_a.GetName() == "Main v2"


# --- the render page ---------------------------------------------------------------------


def test_formats_and_codecs(demo) -> None:
    formats = demo.GetRenderFormats()
    assert formats["QuickTime"] == "mov" and formats["MP4"] == "mp4" and formats["MXF OP1A"] == "mxf_op1a"
    assert demo.GetRenderCodecs("mov")["Apple ProRes 422 HQ"] == "ProRes422HQ"
    assert demo.GetRenderCodecs("mxf_op1a")["DNxHR HQ"] == "DNxHRHQ"
    assert demo.GetRenderCodecs("nope") == {}
    assert demo.GetCurrentRenderFormatAndCodec() == {"format": "mov", "codec": "ProRes422HQ"}
    assert demo.SetCurrentRenderFormatAndCodec("mp4", "H264")
    assert demo.SetCurrentRenderFormatAndCodec("mp4", "ProRes422HQ") is False
    assert demo.GetCurrentRenderMode() == 1 and demo.SetCurrentRenderMode(0) and demo.SetCurrentRenderMode(7) is False


GOOD_SETTINGS = {
    "SelectAllFrames": False,
    "MarkIn": 86400,
    "MarkOut": 86410,
    "TargetDir": "/tmp/x",
    "CustomName": "n",
    "UniqueFilenameStyle": 1,
    "ExportVideo": True,
    "ExportAudio": False,
    "FormatWidth": 1920,
    "FormatHeight": 1080,
    "FrameRate": 24.0,
    "PixelAspectRatio": "square",
    "VideoQuality": "Best",
    "AudioCodec": "aac",
    "AudioBitDepth": 24,
    "AudioSampleRate": 48000,
    "ColorSpaceTag": "Same as Project",
    "GammaTag": "Same as Project",
    "ExportAlpha": False,
    "AlphaMode": 0,
    "NetworkOptimization": True,
    "ClipStartFrame": 0,
    "TimelineStartTimecode": "01:00:00:00",
    "ReplaceExistingFilesInPlace": True,
    "ExportSubtitle": False,
    "SubtitleFormat": "BurnIn",
}
BAD_VALUES = {
    "SelectAllFrames": "yes",
    "MarkIn": -1,
    "MarkOut": "end",
    "TargetDir": 5,
    "CustomName": "a/b",
    "UniqueFilenameStyle": 2,
    "ExportVideo": 1,
    "ExportAudio": None,
    "FormatWidth": 0,
    "FormatHeight": -5,
    "FrameRate": 0,
    "PixelAspectRatio": "wide",
    "VideoQuality": "Superb",
    "AudioCodec": "mp3",
    "AudioBitDepth": 12,
    "AudioSampleRate": 22050,
    "ColorSpaceTag": 3,
    "GammaTag": [],
    "ExportAlpha": "no",
    "EncodingProfile": 10,
    "MultiPassEncode": "on",
    "AlphaMode": 3,
    "NetworkOptimization": 0,
    "ClipStartFrame": -2,
    "TimelineStartTimecode": "1:00",
    "ReplaceExistingFilesInPlace": "y",
    "ExportSubtitle": 0,
    "SubtitleFormat": "SRT",
}


def test_set_render_settings_checks_every_stub_key(demo) -> None:
    stub_keys = set(_render_settings_keys())
    assert set(BAD_VALUES) == stub_keys  # every documented key has a refusal case here
    assert demo.SetRenderSettings(GOOD_SETTINGS)
    for key, bad in BAD_VALUES.items():
        assert demo.SetRenderSettings({key: bad}) is False, key
    assert demo.SetRenderSettings({"NoSuchKey": 1}) is False
    assert demo.SetRenderSettings({"EncodingProfile": "Main10"}) is False  # only for H.264/H.265
    assert demo.SetCurrentRenderFormatAndCodec("mp4", "H264") and demo.SetRenderSettings({"EncodingProfile": "Main10"})


def _render_settings_keys() -> list[str]:
    dist = importlib.metadata.distribution("fusionscript-stubs")
    tree = ast.parse(Path(str(dist.locate_file("fusionscript-stubs/fusionscript.pyi"))).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RenderSettings")
    return [n.target.id for n in cls.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def test_render_jobs_and_presets(demo, tmp_path: Path) -> None:
    assert demo.AddRenderJob() == ""  # no TargetDir yet
    assert demo.SetRenderSettings({"TargetDir": str(tmp_path), "MarkIn": 86400, "MarkOut": 86409})
    first = demo.AddRenderJob()
    assert demo.SetRenderSettings({"MarkIn": 86410, "MarkOut": 86419, "CustomName": "second"})
    second = demo.AddRenderJob()
    jobs = demo.GetRenderJobList()
    assert [j["JobId"] for j in jobs] == [first, second]
    assert jobs[1]["OutputFilename"] == "second.mov" and jobs[0]["MarkOut"] == 86409
    assert demo.GetRenderJobStatus(first)["JobStatus"] == "Ready"
    assert demo.DeleteRenderJob(first) and [j["JobId"] for j in demo.GetRenderJobList()] == [second]
    assert demo.DeleteAllRenderJobs() and demo.GetRenderJobList() == []
    assert demo.SetRenderSettings({"MarkIn": 86400, "MarkOut": 999999})
    assert demo.AddRenderJob() == ""  # outside the timeline
    presets = demo.GetRenderPresetList()
    assert "H.264 Master" in presets
    assert demo.LoadRenderPreset("H.264 Master")
    assert demo.GetCurrentRenderFormatAndCodec() == {"format": "mp4", "codec": "H264"}
    assert demo.LoadRenderPreset("No such preset") is False
    assert demo.SaveAsNewRenderPreset("Farm H264") and "Farm H264" in demo.GetRenderPresetList()
    assert demo.SaveAsNewRenderPreset("Farm H264") is False


def test_media_storage(resolve, demo, tmp_path: Path) -> None:
    storage = resolve.GetMediaStorage()
    tmp_path = tmp_path / "media"
    (tmp_path / "sub").mkdir(parents=True)
    (tmp_path / "clip.mov").write_bytes(b"not really a movie")
    assert storage.GetSubFolderList(str(tmp_path)) == [str(tmp_path / "sub")]
    assert str(tmp_path / "clip.mov") in storage.GetFileList(str(tmp_path))
    added = storage.AddItemListToMediaPool(str(tmp_path / "clip.mov"))
    assert [c.GetName() for c in added] == ["clip.mov"]
    assert added[0].GetClipProperty("Offline") == "Yes"


def test_a_none_quirk_makes_a_call_return_none_like_a_failing_resolve(tmp_path, monkeypatch) -> None:
    from bridge.sim import scriptapp

    monkeypatch.setenv("RESOLVE_SIM_LIBRARY", str(tmp_path / "library.json"))
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "none:Timeline.GetTrackCount")
    timeline = scriptapp("Resolve").GetProjectManager().LoadProject("Demo").GetTimelineByIndex(1)
    assert timeline.GetTrackCount("video") is None and timeline.GetName() == "Main"


@pytest.mark.parametrize("quirk,deaf", [("hang", False), ("hang-hard", True)])
def test_a_hard_hang_is_deaf_to_signals_and_ends_only_by_kill(tmp_path, quirk: str, deaf: bool) -> None:
    """`hang:` waits where a Python signal handler still runs (a soft time limit ends it); `hang-hard:` is a call
    stuck in C: the alarm's handler never runs, and only SIGKILL ends the process."""
    import subprocess
    import sys

    script = (
        "import signal, sys\n"
        "from bridge.sim import scriptapp\n"
        "def fired(*_):\n    print('handler ran', flush=True); sys.exit(3)\n"
        "signal.signal(signal.SIGALRM, fired)\n"
        "project = scriptapp('Resolve').GetProjectManager().LoadProject('Demo')\n"
        "print('calling', flush=True)\n"
        "signal.alarm(1)\n"
        "project.GetTimelineCount()\n"
    )
    env = {
        **os.environ,
        "RESOLVE_SIM_LIBRARY": str(tmp_path / "lib.json"),
        "RESOLVE_SIM_QUIRKS": f"{quirk}:Project.GetTimelineCount",
    }
    child = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline().strip() == "calling"
    try:
        code = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        code = None
    if not deaf:
        assert code == 3 and child.stdout.read().strip() == "handler ran"
        return
    assert code is None  # the alarm fired four seconds ago: its handler never ran
    child.kill()
    assert child.wait(timeout=10) == -9 and child.stdout.read() == ""
