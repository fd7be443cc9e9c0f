"""The simulator's proxy links: LinkProxyMedia, UnlinkProxyMedia and the proxy clip properties."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest


def _movie(path: Path, width: int, height: int, frames: int = 4) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for _ in range(frames):
            frame = av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def _clip(demo):
    return demo.GetMediaPool().GetRootFolder().GetSubFolderList()[0].GetClipList()[0]


def test_a_linked_proxy_shows_in_the_clip_properties_until_unlinked(demo, tmp_path: Path) -> None:
    clip = _clip(demo)
    assert clip.GetClipProperty("Proxy") == "None" and clip.GetClipProperty("Proxy Media Path") == ""
    assert clip.UnlinkProxyMedia() is False  # nothing linked yet
    proxy = _movie(tmp_path / "proxy.mov", 480, 270)
    assert clip.LinkProxyMedia(str(proxy)) is True
    assert clip.GetClipProperty("Proxy") == "480x270"
    assert clip.GetClipProperty()["Proxy Media Path"] == str(proxy)
    assert clip.SetClipProperty("Proxy Media Path", "/elsewhere.mov") is False  # read-only, as in Resolve
    assert clip.UnlinkProxyMedia() is True
    assert clip.GetClipProperty("Proxy") == "None" and clip.GetClipProperty("Proxy Media Path") == ""


def test_a_proxy_that_is_not_an_absolute_readable_movie_is_refused(demo, tmp_path: Path) -> None:
    clip = _clip(demo)
    not_media = tmp_path / "notes.mov"
    not_media.write_text("not a movie")
    for path in ("proxy.mov", str(tmp_path / "missing.mov"), str(not_media)):
        assert clip.LinkProxyMedia(path) is False, path
    assert clip.GetClipProperty("Proxy") == "None"


def test_the_bridge_lists_clips_and_links_proxies_reading_them_back(resolve, tmp_path: Path) -> None:
    from bridge import ops
    from bridge.errors import OperationError

    ops.open_project(resolve, "Demo")
    assert ops.list_bins(resolve) == ["Footage"]
    found = ops.list_clips(resolve, "Footage", ["a00[12]*"])
    assert [c["name"] for c in found["clips"]] == ["A001_C001.mov", "A002_C002.mov"]
    first = found["clips"][0]
    assert Path(first["path"]).is_file() and first["frames"] == 168 and first["proxy_path"] == ""
    proxy = _movie(tmp_path / "A001.mov", 128, 72)
    links = [{"clip_id": first["id"], "path": str(proxy)}, {"clip_id": found["clips"][1]["id"], "path": "relative.mov"}]
    done = ops.link_proxies(resolve, links)
    assert [r["ok"] for r in done] == [True, False] and "refused" in done[1]["error"]
    assert ops.list_clips(resolve, None, ["A001*"])["clips"][0]["proxy_path"] == str(proxy)
    with pytest.raises(OperationError, match="bin 'Rushes' does not exist"):
        ops.list_clips(resolve, "Rushes")


def test_a_proxy_linked_by_name_to_another_file_is_caught_reading_it_back(
    sim_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from bridge import ops
    from bridge.sim import scriptapp

    # Resolve matches proxies by name: asked for A001.mov beside an A001.mp4, it may link the other one.
    monkeypatch.setenv("RESOLVE_SIM_QUIRKS", "proxy-by-name")
    resolve = scriptapp("Resolve")
    try:
        ops.open_project(resolve, "Demo")
        clips = ops.list_clips(resolve, "Footage", ["a00[12]*"])["clips"]
        asked, clash = _movie(tmp_path / "A001.mov", 128, 72), _movie(tmp_path / "A001.mp4", 128, 72)
        alone = _movie(tmp_path / "A002.mov", 128, 72)
        done = ops.link_proxies(
            resolve, [{"clip_id": c["id"], "path": str(p)} for c, p in zip(clips, (asked, alone), strict=True)]
        )
        assert [r["ok"] for r in done] == [False, True]
        assert done[0]["error"] == f"Resolve shows another proxy: {str(clash)!r}"
    finally:
        resolve._state.renderer.stop()
