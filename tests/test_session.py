"""The session's operations over the simulator: projects, timelines, renders, cancellation."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import av
import pytest

from bridge.errors import OperationError, RenderCancelled, RenderFailed
from bridge.session import connect
from bridge.settings import BridgeSettings
from bridge.sim import framecode


@pytest.fixture
def session(sim_env):
    with connect(BridgeSettings.from_env(mode="sim", poll_interval=0.02)) as s:
        yield s


def test_describe_and_list(session) -> None:
    assert session.describe() == {
        "product": "DaVinci Resolve Studio",
        "version": "19.1.4.11",
        "studio": True,
        "mode": "sim",
    }
    assert session.list_projects() == {"database": {"DbType": "Disk", "DbName": "Local Database"}, "projects": ["Demo"]}
    opened = session.open_project("Demo")
    assert [t["name"] for t in opened["timelines"]] == ["Main", "Teaser", "Social", "Main recut"]
    main = session.timeline_info("Main")
    assert main == {
        "name": "Main",
        "start_frame": 86400,
        "end_frame": 89279,
        "frames": 2880,
        "fps": 24.0,
        "width": 1920,
        "height": 1080,
        "start_timecode": "01:00:00:00",
    }
    options = session.render_options()
    assert options["codecs"]["mov"]["Apple ProRes 422 HQ"] == "ProRes422HQ" and "H.264 Master" in options["presets"]


def test_open_project_errors(session) -> None:
    with pytest.raises(OperationError, match="project 'Nope' does not exist"):
        session.open_project("Nope")
    with pytest.raises(OperationError, match="database 'Elsewhere' is not available"):
        session.open_project("Demo", database={"DbType": "PostgreSQL", "DbName": "Elsewhere"})
    with pytest.raises(OperationError, match="does not exist on this host"):
        session.open_drp("/no/such/file.drp")
    session.open_project("Demo")
    with pytest.raises(OperationError, match="timeline 'Nope' does not exist in project 'Demo'"):
        session.timeline_info("Nope")


def test_a_drp_is_imported_once_per_content_and_reused(session, resolve, tmp_path: Path) -> None:
    drp = tmp_path / "Show.drp"
    assert resolve.GetProjectManager().ExportProject("Demo", str(drp))
    farm_db = {"DbType": "PostgreSQL", "DbName": "Farm", "IpAddress": "127.0.0.1"}
    digest = hashlib.sha256(drp.read_bytes()).hexdigest()
    first = session.open_drp(str(drp), database=farm_db)
    name = f"Show-{digest[:12]}"
    assert first["imported"] and first["digest"] == digest and first["database"] == "Farm"
    assert first["project"] == f"resolve-farm imports/{name}" and first["name"] == name
    assert len(first["timelines"]) == 4
    again = session.open_drp(str(drp), database=farm_db)  # same content: found and loaded, not imported
    assert not again["imported"] and again["project"] == first["project"]
    assert session.list_projects()["projects"] == [first["project"]]
    doc = json.loads(drp.read_text())
    doc["project"]["timelines"] = doc["project"]["timelines"][:1]
    drp.write_text(json.dumps(doc))  # the .drp changed under the same name: imported anew
    changed = session.open_drp(str(drp), database=farm_db)
    assert changed["imported"] and changed["project"] != first["project"] and len(changed["timelines"]) == 1
    assert session.list_projects()["projects"] == sorted([first["project"], changed["project"]])
    gone = session.delete_imports([name, changed["name"], "Never-000000000000"])
    assert gone == {"deleted": [name], "kept": [changed["name"]], "missing": ["Never-000000000000"]}  # open: kept
    assert session.list_projects()["projects"] == [changed["project"]]


def test_a_file_that_is_no_project_is_refused(session, tmp_path: Path) -> None:
    bad = tmp_path / "bad.drp"
    bad.write_text("not a project")
    with pytest.raises(OperationError, match="could not import"):
        session.open_drp(str(bad))


def test_projects_in_folders(session, resolve) -> None:
    pm = resolve.GetProjectManager()
    pm.CreateFolder("Clients")
    pm.OpenFolder("Clients")
    pm.CreateProject("Ad_2026")
    pm.GotoRootFolder()
    assert session.list_projects()["projects"] == ["Demo", "Clients/Ad_2026"]
    assert session.open_project("Clients/Ad_2026")["name"] == "Ad_2026"


def test_save_refuses_untitled(session, resolve) -> None:
    resolve.GetProjectManager().GetCurrentProject()  # Resolve starts on an untitled project
    with pytest.raises(OperationError, match="untitled project"):
        session.save_project()
    session.open_project("Demo")
    assert session.save_project()


def test_close_project_lets_a_held_shared_project_go(session, resolve, tmp_path: Path) -> None:
    drp = tmp_path / "Demo.drp"
    assert resolve.GetProjectManager().ExportProject("Demo", str(drp))
    farm_db = {"DbType": "PostgreSQL", "DbName": "Farm", "IpAddress": "127.0.0.1"}
    session.open_drp(str(drp), database=farm_db)  # imported into the shared library, once per content
    holds = Path(str(resolve._state.library.path) + ".holds")
    assert "Farm/" in holds.read_text()  # this host holds Demo of the shared library
    assert session.close_project() is True
    assert "Farm/" not in holds.read_text()
    assert session.close_project() is False  # nothing but the untitled project is open now


def test_render_with_progress(session, tmp_path: Path) -> None:
    session.open_project("Demo")
    calls: list[tuple[int, int]] = []
    result = session.render(
        "Main",
        87000,
        87119,
        str(tmp_path),
        "seg_0001",
        progress=lambda done, total, status: calls.append((done, total)),
    )
    assert result.outputs == [str(tmp_path / "seg_0001.mov")] and result.frames == 120
    assert calls[-1] == (120, 120) and all(t == 120 for _, t in calls)
    assert framecode.read_file(result.outputs[0]) == list(range(87000, 87120))


def test_render_with_preset_codec_and_settings(session, tmp_path: Path) -> None:
    session.open_project("Demo")
    result = session.render("Teaser", 86400, 86423, str(tmp_path), "h264", preset="H.264 Master")
    assert result.outputs[0].endswith("h264.mp4")
    result = session.render(
        "Teaser",
        86400,
        86423,
        str(tmp_path),
        "dnx",
        format="mxf_op1a",
        codec="DNxHRHQ",
        settings={"ExportAudio": False},
    )
    assert result.outputs[0].endswith("dnx.mxf")
    with pytest.raises(OperationError, match="refused format 'mxf_op1a' with codec 'H264'"):
        session.render("Teaser", 86400, 86401, str(tmp_path), "x", format="mxf_op1a", codec="H264")
    with pytest.raises(OperationError, match="refused render settings: AudioBitDepth"):
        session.render("Teaser", 86400, 86401, str(tmp_path), "x", settings={"AudioBitDepth": 7})
    with pytest.raises(OperationError, match="outside timeline"):
        session.render("Teaser", 86000, 86401, str(tmp_path), "x")


def test_a_plain_render_after_a_preset_starts_from_a_known_state(sim_env, monkeypatch, tmp_path: Path) -> None:
    """Issue 15: an explicit video render came out audio-only after an earlier preset on the same host."""
    monkeypatch.setenv("RESOLVE_SIM_SCALE", "0.25")  # big enough that a leaked picture size shows
    with connect(BridgeSettings.from_env(mode="sim", poll_interval=0.02)) as session:
        session.open_project("Demo")
        project = session.backend.resolve.GetProjectManager().GetCurrentProject()
        # A preset that leaves everything wrong for the next job: no video, 720p, 30 fps, AAC.
        assert project.LoadRenderPreset("Audio Only")
        assert project.SetRenderSettings(
            {"FormatWidth": 1280, "FormatHeight": 720, "FrameRate": 30, "AudioCodec": "aac"}
        )
        assert project.SaveAsNewRenderPreset("Leaky")
        first = session.render("Teaser", 86400, 86423, str(tmp_path), "preset", preset="Leaky")
        with av.open(first.outputs[0]) as c:
            assert not c.streams.video and c.streams.audio[0].codec_context.name == "aac"
        plain = session.render("Teaser", 86410, 86433, str(tmp_path), "plain", format="mov", codec="ProRes422HQ")
        # And one that turns the sound off: the plain job after it has its sound again.
        assert project.LoadRenderPreset("H.264 Master")
        assert project.SetRenderSettings({"ExportVideo": True, "ExportAudio": False})
        assert project.SaveAsNewRenderPreset("Silent")
        muted = session.render("Teaser", 86400, 86423, str(tmp_path), "muted", preset="Silent")
        with av.open(muted.outputs[0]) as c:
            assert c.streams.video and not c.streams.audio
        sound = session.render("Teaser", 86400, 86423, str(tmp_path), "sound", format="mov", codec="ProRes422HQ")
        with av.open(sound.outputs[0]) as c:
            assert c.streams.video and c.streams.audio[0].codec_context.name == "pcm_s16le"
    assert plain.outputs == [str(tmp_path / "plain.mov")]
    with av.open(plain.outputs[0]) as c:
        video, audio = c.streams.video[0], c.streams.audio[0]
        assert video.codec_context.name == "prores" and video.average_rate == 24
        assert (video.width, video.height) == (480, 270)  # the 1080p timeline at 1/4, not 720p's 320x180
        assert audio.codec_context.name == "pcm_s16le"
    assert framecode.read_file(plain.outputs[0]) == list(range(86410, 86434))


def test_cancel_stops_the_render(sim_env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOLVE_SIM_FPS", "50")
    cancel = threading.Event()
    with connect(BridgeSettings.from_env(mode="sim", poll_interval=0.02)) as session:
        session.open_project("Demo")

        def progress(done: int, total: int, status: dict) -> None:
            if done >= 10:
                cancel.set()

        with pytest.raises(RenderCancelled):
            session.render("Main", 86400, 87399, str(tmp_path), "long", progress=progress, cancel=cancel)
        assert session._call("render_options")  # the session is still usable
        assert session.backend.resolve.GetProjectManager().GetCurrentProject().IsRenderingInProgress() is False


class _TimeLimit(Exception):
    """What a soft time limit raises in the middle of a render, in miniature."""


def test_a_render_interrupted_mid_way_is_stopped_in_resolve(sim_env, monkeypatch, tmp_path: Path) -> None:
    """A soft time limit (or any error) mid-render must not leave Resolve rendering: the next attempt on this host
    would find it busy ("could not load project") and fail for nothing."""
    monkeypatch.setenv("RESOLVE_SIM_FPS", "50")
    with connect(BridgeSettings.from_env(mode="sim", poll_interval=0.02)) as session:
        session.open_project("Demo")

        def progress(done: int, total: int, status: dict) -> None:
            if done >= 10:
                raise _TimeLimit

        with pytest.raises(_TimeLimit):
            session.render("Main", 86400, 87399, str(tmp_path), "long", progress=progress)
        assert session.backend.resolve.GetProjectManager().GetCurrentProject().IsRenderingInProgress() is False
        assert session.open_project("Demo")["timelines"]  # the next attempt finds Resolve free


def test_failed_render_raises(sim_env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "fail-render:disk full")
    with connect(BridgeSettings.from_env(mode="sim", poll_interval=0.02)) as session:
        session.open_project("Demo")
        with pytest.raises(RenderFailed, match="disk full"):
            session.render("Teaser", 86400, 86410, str(tmp_path), "x")


def test_image_sequence_that_never_says_complete(sim_env, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "imageseq-stall")
    with connect(BridgeSettings.from_env(mode="sim", poll_interval=0.05)) as session:
        session.open_project("Demo")
        result = session.render("Teaser", 86400, 86409, str(tmp_path), "frames", format="tif", codec="RGB8")
    assert len(result.outputs) == 10 and result.outputs[0].endswith("frames_00086400.tif")


def test_a_timelines_content_names_its_media_and_grade_and_a_fingerprint_that_an_edit_changes(session) -> None:
    session.open_project("Demo")
    content = session.timeline_content("Teaser")
    v1, v2 = content["tracks"]
    assert content["name"] == "Teaser" and len(v1) == 3 and len(v2) == 1  # three clips, a title over them
    assert [(i["start"], i["end"], i["in"]) for i in v1] == [(86400, 86508, 0), (86508, 86628, 0), (86628, 86760, 0)]
    assert all(i["media"] and i["nodes"] == 1 and i["luts"] == [""] for i in v1)
    assert session.timeline_content("Teaser")["fingerprint"] == content["fingerprint"]  # the same when unchanged
    # The same clips elsewhere carry the same media ids: what a clip costs can follow it.
    recut = {i["media"] for track in session.timeline_content("Main recut")["tracks"] for i in track}
    assert {i["media"] for i in v1} <= recut
    lut = {"op": "apply_lut", "items": {"track": 1}, "path": "Film Looks/Rec709 Kodak 2383.cube"}
    session.apply_edits("Teaser", [lut])
    graded = session.timeline_content("Teaser")
    assert graded["fingerprint"] != content["fingerprint"]
    assert [i["luts"] for i in graded["tracks"][0]] == [["Film Looks/Rec709 Kodak 2383.cube"]] * 3
    session.apply_edits("Teaser", [{"op": "set_clip_color", "items": {"track": 1}, "color": "Teal"}])
    assert session.timeline_content("Teaser")["fingerprint"] == graded["fingerprint"]  # a label, not content


def test_a_disabled_item_is_not_content(session) -> None:
    from bridge.sim import scriptapp

    session.open_project("Demo")
    before = session.timeline_content("Teaser")
    project = scriptapp("Resolve").GetProjectManager().GetCurrentProject()
    teaser = next(
        project.GetTimelineByIndex(i) for i in range(1, 5) if project.GetTimelineByIndex(i).GetName() == "Teaser"
    )
    assert teaser.GetItemListInTrack("video", 1)[1].SetClipEnabled(False)
    after = session.timeline_content("Teaser")
    assert len(after["tracks"][0]) == 2 and after["fingerprint"] != before["fingerprint"]
