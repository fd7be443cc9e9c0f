"""What frames cost the simulator beyond its speed: content that follows its clip into any timeline, the grade
the API shows, an unseen part by position, a node's seeded jitter and its slow-downs (`bridge.sim.cost`).

Asserted on the work a render is paced by (`RenderStatus.work_due`, seconds at the node's speed), never
on wall-clock times.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bridge.sim.config import SimConfig
from bridge.sim.cost import STRETCH, CostModel, RenderCost
from bridge.sim.library import demo_project

HEAVY = "A003_C003.mov"


def timelines() -> tuple[dict, dict, dict]:
    project = demo_project()
    by_name = {t["name"]: t for t in project["timelines"]}
    return by_name["Main"], by_name["Main recut"], project["clips"]


def frames_of(timeline: dict, clip_name: str, clips: dict) -> list[int]:
    """Timeline frames where `clip_name` is on top (V1, no title over it)."""
    titles = [(i["start"], i["end"]) for i in timeline["tracks"]["video"][1]["items"]]
    found = []
    for item in timeline["tracks"]["video"][0]["items"]:
        if clips[item["clip"]]["name"] == clip_name:
            found += [f for f in range(item["start"], item["end"]) if not any(a <= f < b for a, b in titles)]
    return found


def test_a_clips_cost_follows_it_into_a_second_cut_of_the_timeline() -> None:
    main, second, clips = timelines()
    model = CostModel(clip_costs=((HEAVY, 4.0),))
    in_main, in_second = frames_of(main, HEAVY, clips), frames_of(second, HEAVY, clips)
    assert in_main and in_second and set(in_main) != set(in_second)  # it sits elsewhere in the second cut
    for timeline, heavy in ((main, in_main), (second, in_second)):
        cost = RenderCost.of(model, timeline, clips, "n1", "job")
        assert {cost.content(f) for f in heavy} == {4.0}
        others = [f for f in range(timeline["start_frame"], timeline["start_frame"] + 500) if f not in heavy]
        assert {cost.content(f) for f in others} == {1.0}


def test_a_grade_the_api_shows_makes_an_items_frames_dearer(demo, tmp_path: Path) -> None:
    timeline = demo.GetCurrentTimeline()
    item = timeline.GetItemListInTrack("video", 1)[2]  # (no title over it on V2)
    lut = tmp_path / "show.cube"
    lut.write_text("LUT_3D_SIZE 2\n")
    assert item.SetLUT(1, str(lut)) and item.SetCDL({"NodeIndex": "1", "Slope": "1 1 1", "Offset": "0 0 0",
                                                             "Power": "1 1 1", "Saturation": "1"})  # fmt: skip
    assert demo.SetRenderSettings({"TargetDir": str(tmp_path), "SelectAllFrames": True})
    job_id = demo.AddRenderJob()
    job = next(j for j in demo._render().jobs if j.job_id == job_id)
    start = item.GetStart()
    assert job.cost is not None and job.cost.content(start) == pytest.approx(1.0 + 0.5 + 0.25)
    assert job.cost.content(item.GetEnd()) == 1.0  # the next item has no grade


def test_jitter_is_seeded_bounded_drawn_per_stretch_and_anew_for_each_render() -> None:
    main, _, clips = timelines()
    model = CostModel(jitter=0.2, seed=7)
    first = RenderCost.of(model, main, clips, "n1", "job-1")
    again = RenderCost.of(model, main, clips, "n1", "job-1")
    other = RenderCost.of(model, main, clips, "n1", "job-2")
    start = main["start_frame"]
    drawn = [first.frame(start + i, i) for i in range(0, 20 * STRETCH)]
    assert drawn == [again.frame(start + i, i) for i in range(0, 20 * STRETCH)]  # a run can be repeated
    assert all(0.8 <= d <= 1.2 for d in drawn) and len(set(drawn)) > 10
    assert len(set(drawn[:STRETCH])) == 1  # one draw per stretch
    assert drawn != [other.frame(start + i, i) for i in range(0, 20 * STRETCH)]
    assert RenderCost.of(CostModel(), main, clips, "n1", "job-1").frame(start, 0) == 1.0


def test_the_unseen_part_is_the_same_on_every_node_for_a_position() -> None:
    main, _, clips = timelines()
    model = CostModel(position_noise=0.1)
    on_a, on_b = (RenderCost.of(model, main, clips, host, job) for host, job in (("a", "1"), ("b", "2")))
    start = main["start_frame"]
    a = [on_a.frame(start + f, f) for f in range(0, 2880, 7)]
    assert a == [on_b.frame(start + f, f + 100) for f in range(0, 2880, 7)]
    assert all(0.9 <= x <= 1.1 for x in a) and len(set(a)) > 10


def test_a_throttled_node_renders_slower_while_its_file_says_so(tmp_path: Path) -> None:
    main, _, clips = timelines()
    switch = tmp_path / "throttle"
    cost = RenderCost.of(CostModel(throttle=switch), main, clips, "n1", "job")
    assert cost.throttled() == 1.0
    switch.write_text("2")
    cost._throttle = (time.monotonic() - 1.0, 1.0)  # (its last look was a while ago)
    assert cost.frame(main["start_frame"], 0) == 2.0


def test_a_render_is_paced_by_what_its_frames_cost(resolve, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RESOLVE_SIM_CLIP_COSTS", f"{HEAVY}:4")
    from bridge.sim import scriptapp

    app = scriptapp("Resolve")
    project = app.GetProjectManager().LoadProject("Demo")
    main = project.GetCurrentTimeline()
    heavy = next(i for i in main.GetItemListInTrack("video", 1) if i.GetName() == HEAVY)
    first, last = heavy.GetStart(), heavy.GetStart() + 9
    assert project.SetRenderSettings({"TargetDir": str(tmp_path), "SelectAllFrames": False, "MarkIn": first,
                                      "MarkOut": last, "CustomName": "heavy"})  # fmt: skip
    job = project.AddRenderJob()
    assert project.StartRendering(job)
    deadline = time.monotonic() + 60
    while project.IsRenderingInProgress() and time.monotonic() < deadline:
        time.sleep(0.05)
    status = next(j for j in project._render().jobs if j.job_id == job).status
    assert status.state == "Complete" and status.work_due == pytest.approx(10 * 4 / app._state.config.fps)


@pytest.mark.parametrize(
    ("name", "value"),
    [("RESOLVE_SIM_CLIP_COSTS", "A001.mov:-1"), ("RESOLVE_SIM_CLIP_COSTS", "A001.mov"),
     ("RESOLVE_SIM_JITTER", "1.5"), ("RESOLVE_SIM_POSITION_NOISE", "x"), ("RESOLVE_SIM_SEED", "one")],
)  # fmt: skip
def test_a_bad_cost_setting_is_refused_naming_it(name: str, value: str) -> None:
    with pytest.raises(ValueError, match=name):
        SimConfig.from_env({name: value})


def test_the_cost_settings_reach_another_process_as_they_were(tmp_path: Path) -> None:
    model = CostModel(clip_costs=((HEAVY, 4.0),), position_noise=0.1, jitter=0.2, seed=3, throttle=tmp_path / "t")
    assert CostModel.from_env(model.to_env()) == model
