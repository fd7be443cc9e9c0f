"""The simulator's shared library: snapshot + journal, torn and stale journals, many hosts at once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.sim.library import Library, get_in


def _journal(lib: Library) -> list[bytes]:
    return Path(str(lib.path) + ".journal").read_bytes().splitlines(keepends=True)


def _first_item_address(data: dict) -> tuple:
    project = next(iter(data["databases"]["Local Database"]["projects"]))
    return ("databases", "Local Database", "projects", project, "timelines", 0, "tracks", "video", 0, "items", 0)


def _set_color(color: str):
    def change(item: dict) -> bool:
        item["color"] = color
        return True

    return change


def test_an_object_change_appends_one_journal_line_and_leaves_the_snapshot(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.json")
    snapshot = os.stat(lib.path)
    before = len(_journal(lib))
    assert lib.update_at(_first_item_address, _set_color("Teal")) is True
    assert len(_journal(lib)) == before + 1
    after = os.stat(lib.path)
    assert (after.st_ino, after.st_mtime_ns) == (snapshot.st_ino, snapshot.st_mtime_ns)
    # Another host (a fresh Library on the same files) sees the change.
    assert get_in(Library(lib.path).read(), _first_item_address(lib.read()))["color"] == "Teal"


def test_a_failed_change_leaves_everything_untouched(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.json")
    journal = _journal(lib)

    def fail(item: dict) -> None:
        item["color"] = "Pink"
        raise ValueError("refused")

    with pytest.raises(ValueError):
        lib.update_at(_first_item_address, fail)
    assert _journal(lib) == journal
    assert get_in(lib.read(), _first_item_address(lib.read()))["color"] != "Pink"
    with pytest.raises(ValueError, match="use update"):
        lib.update_at(lambda data: (), lambda data: None)


def test_a_torn_line_is_ignored_by_readers_and_cut_off_by_the_next_writer(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.json")
    lib.update_at(_first_item_address, _set_color("Teal"))
    journal = Path(str(lib.path) + ".journal")
    with open(journal, "ab") as f:  # a writer killed halfway through its line
        f.write(b'[["databases","Local Database","projects","x"],{"col')
    other = Library(lib.path)
    assert get_in(other.read(), _first_item_address(other.read()))["color"] == "Teal"
    other.update_at(_first_item_address, _set_color("Navy"))
    lines = _journal(other)
    assert all(line.endswith(b"\n") for line in lines) and all(json.loads(line) for line in lines)
    assert get_in(Library(lib.path).read(), _first_item_address(lib.read()))["color"] == "Navy"
    assert get_in(lib.read(), _first_item_address(lib.read()))["color"] == "Navy"


def test_a_stale_journal_is_read_as_empty_and_replaced_by_the_next_writer(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.json")
    lib.update_at(_first_item_address, _set_color("Teal"))
    stale = Path(str(lib.path) + ".journal").read_bytes()
    lib.update(lambda data: data["render_presets"].__setitem__("mine", {"format": "mov"}))  # a new snapshot
    # A writer stopped between its two renames leaves the new snapshot with the old journal.
    Path(str(lib.path) + ".journal").write_bytes(stale + stale.splitlines(keepends=True)[-1])
    other = Library(lib.path)
    data = other.read()
    assert get_in(data, _first_item_address(data))["color"] == "Teal" and "mine" in data["render_presets"]
    other.update_at(_first_item_address, _set_color("Lime"))
    header = json.loads(_journal(other)[0])
    assert header["generation"] == json.loads(lib.path.read_text())["generation"]
    assert get_in(Library(lib.path).read(), _first_item_address(data))["color"] == "Lime"


def test_the_journal_is_folded_into_a_new_snapshot_once_it_outgrows_it(tmp_path: Path) -> None:
    lib = Library(tmp_path / "library.json")
    lib.compact_at = 0  # fold as soon as the journal is larger than the snapshot
    first = json.loads(lib.path.read_text())["generation"]
    colors = ["Teal", "Navy", "Lime", "Pink"]
    for n in range(200):
        lib.update_at(_first_item_address, _set_color(colors[n % 4]))
        assert os.path.getsize(str(lib.path) + ".journal") <= 2 * os.path.getsize(lib.path) + 1024
    assert json.loads(lib.path.read_text())["generation"] != first
    fresh = Library(lib.path).read()
    assert get_in(fresh, _first_item_address(fresh))["color"] == colors[199 % 4]
    assert fresh == lib.read()


def test_a_library_without_a_journal_is_read_and_given_one(tmp_path: Path) -> None:
    """A library written before the journal existed: one file, no generation."""
    lib = Library(tmp_path / "library.json")
    data = json.loads(lib.path.read_text())
    del data["generation"]
    lib.path.write_text(json.dumps(data))
    Path(str(lib.path) + ".journal").unlink()
    old = Library(lib.path)
    assert old.read()["databases"].keys() == data["databases"].keys()
    old.update_at(_first_item_address, _set_color("Teal"))
    assert json.loads(_journal(old)[0])["generation"] == json.loads(lib.path.read_text())["generation"]
    assert get_in(Library(lib.path).read(), _first_item_address(data))["color"] == "Teal"


HOST = """
import sys, time
from bridge.sim import scriptapp
from bridge.sim.library import Library
Library.compact_at = 0  # fold often, so hosts race the folding too
host, hosts, start = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
project = scriptapp("Resolve").GetProjectManager().LoadProject("Demo")
tl = project.GetTimelineByIndex(1)
items = tl.GetItemListInTrack("video", 1)
time.sleep(max(0.0, start - time.time()))  # all hosts start editing at once
for rounds in range(5):
    for n, item in enumerate(items):
        if n % hosts == host:
            assert item.SetClipColor(["Teal", "Navy", "Lime"][host])
            assert item.SetProperty("ZoomX", 1.0 + host + rounds)
        assert tl.AddMarker(10_000 * host + 100 * rounds + n, "Blue", f"h{host}", "", 1)
"""


def test_hosts_editing_items_at_once_lose_no_edit(sim_env, tmp_path: Path) -> None:
    import time

    env = {**os.environ, **sim_env}
    start = str(time.time() + 3)
    procs = [subprocess.Popen([sys.executable, "-c", HOST, str(h), "3", start], env=env) for h in range(3)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    from bridge.sim import scriptapp

    tl = scriptapp("Resolve").GetProjectManager().LoadProject("Demo").GetTimelineByIndex(1)
    items = tl.GetItemListInTrack("video", 1)
    for n, item in enumerate(items):
        assert (item.GetClipColor(), item.GetProperty("ZoomX")) == (["Teal", "Navy", "Lime"][n % 3], 5.0 + n % 3)
    wanted = sorted(10_000 * h + 100 * r + n for h in range(3) for r in range(5) for n in range(len(items)))
    assert sorted(tl.GetMarkers()) == wanted


def test_a_snapshot_replaced_unseen_by_stat_is_noticed_through_the_journal(tmp_path: Path) -> None:
    """An inode reused at the same size and time hides a new snapshot from stat; the generation does not."""
    reader, writer = Library(tmp_path / "library.json"), Library(tmp_path / "library.json")
    reader.read()
    writer.update(lambda data: data["render_presets"].__setitem__("mine", {"format": "mov"}))
    reader._snapshot_key = writer._snapshot_key  # what a reused inode would show
    assert "mine" in reader.read()["render_presets"]


def test_ten_thousand_items_are_edited_through_the_bridge(sim_env) -> None:
    """A batch edit touching 10,000 timeline items, through `ops.apply_edits`, all applied and saved."""
    from bridge import ops
    from bridge.sim import scriptapp
    from bridge.sim.bulk import many_items_project

    resolve = scriptapp("Resolve")
    assert many_items_project(resolve, "Load", "Ten thousand", 10_000) == 10_000
    cdl = {"slope": [1.1, 1.0, 0.9], "offset": [0.0, 0.0, 0.01], "power": [1.0, 1.0, 1.0], "saturation": 0.9}
    results = ops.apply_edits(
        resolve,
        "Ten thousand",
        [{"op": "set_clip_color", "color": "Teal"}, {"op": "set_cdl", **cdl}],
    )
    assert len(results) == 20_000 and all(r["ok"] for r in results), [r for r in results if not r["ok"]][:3]
    assert ops.save_project(resolve)
    fresh = Library(Path(sim_env["RESOLVE_SIM_LIBRARY"])).read()
    proj = next(p for p in fresh["databases"]["Local Database"]["projects"].values() if p["name"] == "Load")
    items = next(t for t in proj["timelines"] if t["name"] == "Ten thousand")["tracks"]["video"][0]["items"]
    assert len(items) == 10_000
    assert all(it["color"] == "Teal" and it["cdl"]["1"]["Saturation"] == 0.9 for it in items)
