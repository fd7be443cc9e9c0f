"""The edit vocabulary: refused before anything is touched, applied per item, dry runs change nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bridge.edits import validate_operations
from bridge.session import connect
from bridge.settings import BridgeSettings


@pytest.fixture
def session(sim_env):
    with connect(BridgeSettings.from_env(mode="sim")) as s:
        s.open_project("Demo")
        yield s


def _library_bytes(sim_env) -> bytes:
    """The library's snapshot and journal: unchanged bytes mean nothing was written."""
    snapshot = Path(sim_env["RESOLVE_SIM_LIBRARY"])
    return snapshot.read_bytes() + Path(f"{snapshot}.journal").read_bytes()


@pytest.mark.parametrize(
    "operations,field",
    [
        ([{"op": "explode"}], "op"),
        ([{"op": "add_marker", "frame": -1}], "frame"),
        ([{"op": "add_marker", "frame": 1, "color": "Magenta"}], "color"),
        ([{"op": "add_marker", "frame": 1, "colour": "Red"}], "colour"),
        ([{"op": "set_clip_color", "color": "Red"}], "color"),  # Red is a marker colour, not a clip colour
        ([{"op": "rename_timeline", "name": "a/b"}], "name"),
        ([{"op": "rename_timeline", "name": ""}], "name"),
        ([{"op": "import_media", "paths": ["relative/clip.mov"]}], "paths"),
        ([{"op": "import_media", "paths": ["/media/a\x00b.mov"]}], "paths"),
        ([{"op": "apply_lut", "path": "/luts/look.png"}], "path"),
        ([{"op": "set_cdl", "slope": [1, 1]}], "slope"),
        ([{"op": "set_metadata", "metadata": {}}], "metadata"),
        ([], "list"),
        ("add a marker", "list"),
    ],
)
def test_bad_operations_are_refused_before_anything_is_touched(session, sim_env, operations, field) -> None:
    before = _library_bytes(sim_env)
    with pytest.raises(ValidationError) as err:
        session.apply_edits("Main", operations)
    assert field in str(err.value)
    assert _library_bytes(sim_env) == before


def test_a_bad_operation_among_good_ones_refuses_all(session, sim_env) -> None:
    before = _library_bytes(sim_env)
    with pytest.raises(ValidationError, match=r"1.rename_timeline.name"):
        session.apply_edits("Main", [{"op": "add_marker", "frame": 5}, {"op": "rename_timeline", "name": "x/y"}])
    assert _library_bytes(sim_env) == before


def test_every_operation_applies(session, sim_env, tmp_path: Path) -> None:
    from bridge.sim import scriptapp

    lut = tmp_path / "look.cube"
    lut.write_text("LUT_3D_SIZE 2\n")
    media = tmp_path / "new_clip.mov"
    media.write_bytes(b"")
    results = session.apply_edits(
        "Teaser",
        [
            {"op": "add_marker", "frame": 12, "color": "Red", "name": "fix sky", "note": "VFX", "custom_data": "t-1"},
            {"op": "add_marker", "frame": 40, "color": "Blue", "name": "keep"},
            {"op": "delete_markers", "color": "Blue"},
            {"op": "set_clip_color", "items": {"track_type": "video", "track": 1, "name": "A00[34]*"}, "color": "Pink"},
            {"op": "set_clip_property", "clips": {"name": "A001*"}, "property": "Comments", "value": "hero"},
            {
                "op": "set_metadata",
                "clips": {"bin": "Footage", "name": "A002*"},
                "metadata": {"Scene": "12", "Take": "3"},
            },
            {"op": "apply_lut", "items": {"track": 1}, "path": str(lut)},
            {
                "op": "set_cdl",
                "items": {"track": 2},
                "slope": [1.1, 1.0, 0.9],
                "offset": [0, 0, 0.01],
                "power": [1, 1, 1],
                "saturation": 0.8,
            },
            {"op": "import_media", "paths": [str(media)], "bin": "Incoming"},
            {"op": "append_clips", "clips": {"bin": "Incoming"}},
            {"op": "duplicate_timeline", "name": "Teaser alt"},
            {"op": "rename_timeline", "name": "Teaser v2"},
        ],
    )
    failed = [r for r in results if not r["ok"]]
    assert failed == []
    kinds = {r["kind"] for r in results}
    assert len(kinds) == 11  # every operation of the vocabulary ran
    project = scriptapp("Resolve").GetProjectManager().LoadProject("Demo")
    names = [project.GetTimelineByIndex(i).GetName() for i in range(1, project.GetTimelineCount() + 1)]
    assert names == ["Main", "Teaser v2", "Social", "Main recut", "Teaser alt"]
    teaser = project.GetTimelineByIndex(2)
    assert teaser.GetMarkers() == {
        12: {"color": "Red", "duration": 1, "note": "VFX", "name": "fix sky", "customData": "t-1"}
    }
    v1 = teaser.GetItemListInTrack("video", 1)
    pink = [i.GetName() for i in v1 if i.GetClipColor() == "Pink"]
    assert pink and all(n.startswith(("A003", "A004")) for n in pink)
    assert all(i.GetLUT(1) == str(lut) for i in v1 if i.GetName() != "new_clip.mov")
    assert v1[-1].GetName() == "new_clip.mov"  # appended after the last clip
    assert teaser.GetItemListInTrack("video", 2)[0]._get()["cdl"]["1"]["Saturation"] == 0.8
    footage = project.GetMediaPool().GetRootFolder().GetSubFolderList()[0].GetClipList()
    by_name = {c.GetName(): c for c in footage}
    assert by_name["A001_C001.mov"].GetClipProperty("Comments") == "hero"
    assert by_name["A002_C002.mov"].GetMetadata() == {"Scene": "12", "Take": "3"}


def test_dry_run_reports_and_changes_nothing(session, sim_env) -> None:
    before = _library_bytes(sim_env)
    results = session.apply_edits(
        "Main",
        [
            {"op": "set_clip_color", "items": {"track": 1}, "color": "Navy"},
            {"op": "rename_timeline", "name": "Master_v3"},
        ],
        dry_run=True,
    )
    assert _library_bytes(sim_env) == before
    assert all(r["dry_run"] and r["ok"] for r in results)
    assert len([r for r in results if r["kind"] == "set_clip_color"]) >= 5
    assert results[-1]["change"] == "rename to 'Master_v3'"


def test_per_item_failures_are_reported(session) -> None:
    results = session.apply_edits(
        "Main",
        [
            {"op": "add_marker", "frame": 7, "color": "Red"},
            {"op": "add_marker", "frame": 7, "color": "Blue"},  # another marker is there already
            {"op": "add_marker", "frame": 7, "color": "Red"},  # the very marker (a retry of a killed attempt)
            {"op": "apply_lut", "items": {"track": 1}, "path": "/no/such/look.cube"},
            {"op": "import_media", "paths": ["/no/such/clip.mov"]},
        ],
    )
    assert [r["ok"] for r in results[:3]] == [True, False, True]
    assert results[1]["error"] == "Resolve refused the change"
    lut = [r for r in results if r["kind"] == "apply_lut"]
    assert lut and all("does not exist" in r["error"] for r in lut)
    assert "does not exist" in results[-1]["error"]


def test_validate_operations_normalises() -> None:
    ops = validate_operations([{"op": "set_cdl", "items": {"name": "A*"}}])
    assert ops == [
        {
            "op": "set_cdl",
            "items": {"track_type": "video", "name": "A*"},
            "node": 1,
            "slope": [1.0, 1.0, 1.0],
            "offset": [0.0, 0.0, 0.0],
            "power": [1.0, 1.0, 1.0],
            "saturation": 1.0,
        }
    ]
