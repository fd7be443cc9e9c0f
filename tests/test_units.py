"""The control plane's pure parts: settings, specs, planning, paths, routing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator import routing
from orchestrator.kinds.edit import EditSpec
from orchestrator.kinds.render import RenderJob, RenderSpec, cut, pieces, segment_count
from orchestrator.models import Placement, TaskRecord
from orchestrator.paths import PathMap, PathRefused, confine, plain_name
from orchestrator.settings import FarmSettings


def test_settings_from_env_and_toml(monkeypatch, tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    config.write_text('node_name = "edit-bay-2"\nnode_tags = ["studio", "gpu"]\nmin_segment_frames = 96\n'
                      '[path_mapping."/mnt/renders"]\nwindows = "R:\\\\renders"\n')  # fmt: skip
    monkeypatch.setenv("RESOLVE_FARM_CONFIG", str(config))
    monkeypatch.setenv("RESOLVE_FARM_MIN_SEGMENT_FRAMES", "48")  # the environment wins over the file
    monkeypatch.setenv("RESOLVE_FARM_HOME", str(tmp_path))
    settings = FarmSettings()
    assert settings.node_name == "edit-bay-2" and settings.node_tags == ["gpu", "studio"]
    assert settings.min_segment_frames == 48
    assert settings.path_mapping == {"/mnt/renders": {"windows": "R:\\renders"}}
    assert settings.storage_roots == [tmp_path / "storage"]


@pytest.mark.parametrize(
    "env,message",
    [
        (
            {"RESOLVE_FARM_VISIBILITY_TIMEOUT": "600", "RESOLVE_FARM_RENDER_TIME_LIMIT": "3600"},
            r"visibility_timeout \(600s\) must exceed",
        ),
        ({"RESOLVE_FARM_BROKER_URL": "amqp://x"}, "broker_url"),
        ({"RESOLVE_FARM_NODE_TAGS": "studio,gp u"}, "node_tags"),
        ({"RESOLVE_FARM_STORAGE_ROOTS": "relative/root"}, "must be an absolute path"),
        ({"RESOLVE_FARM_HEARTBEAT_INTERVAL": "-1"}, "heartbeat_interval"),
        ({"RESOLVE_FARM_BRIDGE": "magic"}, "bridge"),
        ({"RESOLVE_FARM_NO_SUCH_SETTING": "1"}, None),
    ],
)
def test_bad_settings_name_the_setting(monkeypatch, env: dict[str, str], message: str | None) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    if message is None:
        FarmSettings()  # unknown variables are ignored; unknown TOML keys are refused (below)
        return
    with pytest.raises(ValidationError, match=message):
        FarmSettings()


def test_unknown_toml_key_is_refused(monkeypatch, tmp_path: Path) -> None:
    config = tmp_path / "farm.toml"
    config.write_text("segment_size = 10\n")
    monkeypatch.setenv("RESOLVE_FARM_CONFIG", str(config))
    with pytest.raises(ValidationError, match="segment_size"):
        FarmSettings()


def test_render_spec_defaults() -> None:
    spec = RenderSpec(project="Demo", timeline="Main")
    assert (spec.format_key, spec.codec_key, spec.split, spec.audio, spec.frames) == (
        "mov",
        "ProRes422HQ",
        "auto",
        True,
        None,
    )
    assert spec.intra
    assert not RenderSpec(project="Demo", timeline="Main", format="mp4", codec="H264").intra
    for clash in ({"codec": "H264"}, {"format": "mov"}):  # the error names the field it is about
        with pytest.raises(ValidationError, match="either a preset or format/codec") as refused:
            RenderSpec(project="Demo", timeline="Main", preset="H.264 Master", **clash)
        assert refused.value.errors()[0]["loc"] == ("preset",)
    with pytest.raises(ValidationError, match="cannot be split") as refused:
        RenderSpec(project="Demo", timeline="Main", preset="H.264 Master", split=3)
    assert refused.value.errors()[0]["loc"] == ("split",)
    with pytest.raises(ValidationError, match="not a Resolve render setting"):
        RenderSpec(project="Demo", timeline="Main", settings={"Brightness": 3})
    with pytest.raises(ValidationError, match="priority"):
        RenderSpec(project="Demo", timeline="Main", priority=11)
    with pytest.raises(ValidationError, match="Extra inputs"):
        RenderSpec(project="Demo", timeline="Main", colour="red")  # type: ignore[call-arg]


def test_edit_spec() -> None:
    spec = EditSpec(targets=[{"project": "Demo"}], operations=[{"op": "add_marker", "frame": 1}])  # type: ignore[list-item]
    assert spec.targets[0].timeline is None
    with pytest.raises(ValidationError, match="operation 0 has no 'op'"):
        EditSpec(targets=[{"project": "Demo"}], operations=[{"frame": 1}])  # type: ignore[list-item]


def test_cut_is_contiguous_and_even() -> None:
    ranges = cut(100, 1099, 3)
    assert ranges == [(100, 433), (434, 766), (767, 1099)]
    assert sum(b - a + 1 for a, b in ranges) == 1000
    assert cut(5, 5, 1) == [(5, 5)]


@pytest.mark.parametrize(
    "frames,nodes,split,codec,expected",
    [
        (2880, 3, "auto", None, 3),
        (2880, 3, "auto", "H264", 3),  # long-GOP in MP4: joins by stream copy, split like intra codecs
        (2880, 3, 4, "H264", 4),
        (2880, 3, "none", None, 1),
        (100, 8, "auto", None, 4),  # never shorter than the minimum (24)
        (20, 3, 5, None, 1),
        (2880, 0, "auto", None, 1),
    ],
)
def test_segment_count(frames: int, nodes: int, split: object, codec: str | None, expected: int) -> None:
    spec = RenderSpec(project="p", timeline="t", split=split, **({"format": "mp4", "codec": codec} if codec else {}))  # type: ignore[arg-type]
    assert segment_count(frames, nodes, spec, min_frames=24, per_node=1) == expected


def test_long_gop_outside_the_known_copy_joins_renders_unsplit_unless_asked() -> None:
    spec = RenderSpec(project="p", timeline="t", format="mxf_op1a", codec="H264")
    assert not spec.joins_by_copy and segment_count(2880, 3, spec, min_frames=24, per_node=1) == 1
    assert all(RenderSpec(project="p", timeline="t", format=f, codec=c).joins_by_copy
               for f in ("mov", "mp4") for c in ("H264", "H265"))  # fmt: skip


def test_pieces_names_sort_at_any_count_and_the_stitch_waits_for_all(tmp_path: Path) -> None:
    spec = RenderSpec(project="p", timeline="t", split=120)
    made = pieces(spec, 0, 119 * 24 + 23, 120, tmp_path, tmp_path / "out")
    segments = [p for p in made if p.kind == "segment"]
    names = [Path(str(s.output)).name for s in segments]
    assert len(names) == 120 and names == sorted(names) and names[0] == "seg_0001.mov"
    assert made[0].kind == "audio" and made[0].output == str(tmp_path / "audio.mov")
    stitch = made[-1]
    assert stitch.kind == "stitch" and stitch.placement.pool == "post" and stitch.final
    assert stitch.after == [p.name for p in made[:-1]]  # every segment and the audio
    single = pieces(RenderSpec(project="p", timeline="t", split="none"), 0, 99, 1, tmp_path, tmp_path / "o")
    assert [p.kind for p in single] == ["render", "stitch"] and single[1].after == ["render"]


def test_confine(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "jobs").mkdir(parents=True)
    (root / "escape").symlink_to(tmp_path)
    assert confine("jobs", [root]) == root / "jobs"
    assert confine(str(root / "jobs" / "new"), [root]) == root / "jobs" / "new"
    for bad, reason in [("../x", "'..'"), ("/etc", "outside"), ("escape/x", "outside"), ("a\x00b", "NUL")]:
        with pytest.raises(PathRefused, match=reason):
            confine(bad, [root], "output_dir")
    assert plain_name("Master_v3") == "Master_v3"
    for bad in ("", "..", "a/b", "a\\b", "C:x"):
        with pytest.raises(PathRefused):
            plain_name(bad)


def test_path_mapping() -> None:
    rules = PathMap({"/mnt/renders": {"windows": "R:\\renders", "darwin": "/Volumes/renders"},
                     "/mnt/renders/vfx": {"windows": "V:\\"}})  # fmt: skip
    assert rules.to_node("/mnt/renders/job/seg.mov", "windows") == "R:\\renders\\job\\seg.mov"
    assert rules.to_node("/mnt/renders/vfx/a.mov", "windows") == "V:\\a.mov"
    assert rules.to_node("/mnt/renders/job", "darwin") == "/Volumes/renders/job"
    assert rules.to_node("/mnt/renders/job", "linux") == "/mnt/renders/job"
    assert rules.to_node("/mnt/rendersX/job", "darwin") == "/mnt/rendersX/job"
    assert rules.from_node("R:\\renders\\job\\seg.mov", "windows") == "/mnt/renders/job/seg.mov"
    assert rules.from_node("/Volumes/renders/job", "darwin") == "/mnt/renders/job"
    assert rules.from_node("r:\\Renders\\job\\seg.mov", "windows") == "/mnt/renders/job/seg.mov"  # case-blind


def test_path_mapping_to_unc_shares() -> None:
    """A Windows host reaching the storage as a share (\\\\server\\share), as studios without drive letters do."""
    rules = PathMap(
        {"/mnt/renders": {"windows": "\\\\nas01\\renders"}, "/mnt/media": {"windows": "\\\\nas01\\media\\"}}
    )
    assert rules.to_node("/mnt/renders/Ad_2026/seg_0001.mov", "windows") == "\\\\nas01\\renders\\Ad_2026\\seg_0001.mov"
    assert rules.to_node("/mnt/media", "windows") == "\\\\nas01\\media\\"
    assert rules.from_node("\\\\nas01\\renders\\Ad_2026\\out.mov", "windows") == "/mnt/renders/Ad_2026/out.mov"
    assert rules.from_node("\\\\NAS01\\Renders\\out.mov", "windows") == "/mnt/renders/out.mov"
    assert rules.from_node("\\\\nas01\\media\\A001.mxf", "windows") == "/mnt/media/A001.mxf"
    assert rules.from_node("\\\\nas02\\renders\\out.mov", "windows") == "\\\\nas02\\renders\\out.mov"  # another server


def test_queues_carry_the_version_key() -> None:
    assert routing.RENDER == "v1.render" and routing.POST == "v1.post"
    assert routing.queue_for(Placement(pool="render", node="bay-2")) == "v1.node.bay-2"
    assert routing.queue_for(Placement(pool="edit", tags=("studio", "gpu"))) == "v1.tag.gpu"
    assert routing.queue_for(Placement(pool="edit")) == "v1.edit"
    assert routing.queue_for(Placement(pool="post", node="bay-2")) == "v1.post"
    assert routing.queue_for(Placement(pool="render"), node="bay-3") == "v1.node.bay-3"  # picked by the engine
    with pytest.raises(ValueError, match="unknown pool 'proxies'"):
        routing.queue_for(Placement(pool="proxies"))  # a new kind's pool is never silently another's
    assert routing.worker_queues("bay-2", ["gpu"], post=True) == [
        "v1.node.bay-2",  # read first: what was sent to this node alone is never starved by a busy pool
        "v1.tag.gpu",
        "v1.render",
        "v1.edit",
        "v1.post",
    ]
    assert routing.queue("render", version_key="2") == "v2.render"


def _plan() -> Any:
    from orchestrator.kinds.render import FrameSpan, RenderPlan

    return RenderPlan(frames=FrameSpan(start=0, end=199, count=200), segments=2, single_pass=False, stitch="copy",
                      work_dir="/w", output="/o", eligible_nodes=[], known_nodes=[])  # fmt: skip


def test_progress_and_eta() -> None:
    spec = RenderSpec(project="p", timeline="t")
    record = RenderJob(kind="render", spec=spec, plan=_plan(), state="running", started_at=100.0, tasks=[
        TaskRecord(name="a", kind="segment", frames_total=100, frames_done=50),
        TaskRecord(name="b", kind="segment", frames_total=100, frames_done=0),
        TaskRecord(name="audio", kind="audio"),
    ])  # fmt: skip
    record.refresh_progress(now=110.0)
    assert record.progress == pytest.approx(24.75) and record.eta_seconds == pytest.approx(30.0)
    public = record.public()
    assert {"id", "kind", "state", "progress", "tasks", "outputs", "errors"} <= set(public)
    assert {"name", "node", "state", "attempts", "frames_done", "frames_total"} <= set(public["tasks"][0])


def test_the_eta_counts_a_starting_piece_at_the_typical_speed_and_waits_for_the_longest_piece() -> None:
    spec = RenderSpec(project="p", timeline="t")
    record = RenderJob(kind="render", spec=spec, plan=_plan(), state="running", started_at=100.0, tasks=[
        TaskRecord(name="a", kind="segment", state="running", frames_total=100, frames_done=50,
                   first_frames=(100.0, 10)),  # 4 frames/s since its first frames
        TaskRecord(name="b", kind="segment", state="running", frames_total=300, frames_done=0, started_at=109.0),
        TaskRecord(name="a copy", kind="segment", state="running", frames_total=100, frames_done=90,
                   first_frames=(100.0, 0), params={"copy_of": "a"}),  # adds no frames of its own
    ])  # fmt: skip
    record.refresh_progress(now=110.0)
    # b has no frames yet: counted at a's 4 frames/s, it needs 75 s, longer than all the work
    # over both pieces' speed (350 frames / 8 frames/s).
    assert record.eta_seconds == pytest.approx(75.0)


def test_a_piece_speed_is_taken_at_its_last_report_not_when_another_piece_wrote_the_record() -> None:
    from orchestrator.models import piece_speed

    piece = TaskRecord(name="a", kind="segment", state="running", frames_total=100, frames_done=30,
                       first_frames=(100.0, 10), last_frames=(105.0, 30))  # fmt: skip
    assert piece_speed(piece, now=110.0) == pytest.approx(4.0)  # 20 frames in the 5 s between its reports


def test_a_piece_that_slowed_down_part_way_is_read_at_its_speed_now() -> None:
    from orchestrator import lifecycle
    from orchestrator.live import Report
    from orchestrator.models import JobRecord, Placement, piece_speed
    from tasks.progress import Reporter

    # Its worker marks where the window of its recent reports begins: once it spans 3 s and a tenth of the frames
    # twice over (here 10 frames a second for 6 s, then 5).
    reporter = Reporter(None, "j", "a", 1, 1)  # type: ignore[arg-type]
    sent = [(100.0 + t, 10 + (10 * t if t <= 6 else 60 + 5 * (t - 6))) for t in range(0, 13)]
    recent = [reporter._recent(sent[0], last, 200) for last in sent[1:]]
    assert recent[:5] == [None] * 5 and recent[5] == (103.0, 40) and recent[-1] == (106.0, 70)
    # Folded into the record, the speed is read over that window: 5 frames a second, not the 7.5 of the whole.
    piece = TaskRecord(name="a", kind="segment", task="t", placement=Placement(pool="render"), frames_total=200)
    record = JobRecord(kind="x", spec={}, plan={}, tasks=[piece])
    lifecycle.submit(record)
    assert lifecycle.claim(record, "a", "n", str(piece.celery_id), record.generation, (), ["n"]).verdict == "run"
    lifecycle.progress(record, "a", "n", 10, 200, now=100.0)
    lifecycle.progress(record, "a", "n", 100, 200, now=112.0, recent=(106.0, 70))
    assert piece_speed(record.task("a"), now=112.0) == pytest.approx(5.0)
    # A report of before the window was kept (seven fields) still reads.
    old = Report.loads('["n", 1, 1, 100, 200, [100.0, 10], [112.0, 100]]')
    assert old.recent is None and old.last == (112.0, 100)


def _reported_speed(rate: Callable[[float], float], seconds: float, total: int = 1600) -> float:
    """Frames per second a worker's reports show for a piece rendered at `rate(t)` for `seconds`: Resolve's
    count polled every 0.1 s in whole percent, reported every 0.5 s, read over the window the reports mark."""
    from tasks.progress import Reporter

    reporter = Reporter(None, "j", "a", 1, 1)  # type: ignore[arg-type]
    frames, first, recent, last = 0.0, None, None, (0.0, 0)
    for tick in range(1, int(seconds * 10) + 1):
        now = tick / 10
        frames += rate(now) / 10
        done = int(total * int(100 * frames / total) / 100)
        if done:
            reporter._rose(now, done)
        if done and tick % 5 == 0:
            first = first or (now, done)
            last = (now, done)
            recent = reporter._recent(first, last, total)
    assert first is not None
    begin = recent or first
    return (last[1] - begin[1]) / (last[0] - begin[0])


def test_a_slow_down_is_seen_within_seconds_and_jitter_is_not_taken_for_one() -> None:
    # The fastest node of bench/first.py's jitter row: 60 frames a second, 2x slower from 8 s on, read 3 s after.
    slowed = _reported_speed(lambda t: 60.0 if t < 8 else 30.0, 11.0)
    assert slowed == pytest.approx(30.0, rel=0.1)
    # Steady, but stretches of 48 frames a fifth faster and slower in turn: read over the whole window.
    for speed in (60.0, 30.0):
        jittered = _reported_speed(lambda t, v=speed: v * (1.2 if int(t * v / 48) % 2 else 0.8), 11.0, total=800)
        assert jittered == pytest.approx(speed, rel=0.1)


def test_a_long_item_report_is_summarised_with_the_refusals_first() -> None:
    from orchestrator.models import results_report

    def result(n: int, ok: bool) -> dict[str, Any]:
        return {"op": n % 2, "kind": ["set_clip_color", "set_cdl"][n % 2], "target": f"item {n}", "ok": ok,
                "change": "c", "error": "" if ok else "Resolve refused the change"}  # fmt: skip

    short = [result(n, True) for n in range(10)]
    assert results_report(short) == {"results": short}
    long = [result(n, n not in (7, 40, 99)) for n in range(100)]
    view = results_report(long)
    assert [r["target"] for r in view["results"][:3]] == ["item 7", "item 40", "item 99"]
    assert all(r["ok"] for r in view["results"][3:]) and len(view["results"]) == 50
    assert view["results_omitted"] == 50
    assert view["results_summary"] == [{"op": 0, "kind": "set_clip_color", "ok": 49, "refused": 1},
                                       {"op": 1, "kind": "set_cdl", "ok": 48, "refused": 2}]  # fmt: skip


@pytest.mark.parametrize(
    "state,name,kept",
    [("cancelled", "out.mov", False), ("succeeded", "out.mov", True), ("succeeded", "out_v2.mov", False)],
)
def test_a_stale_stitch_takes_its_file_back_only_from_a_job_that_did_not_succeed(
    tmp_path: Path, state: str, name: str, kept: bool
) -> None:
    """Cancelled while joining: the file goes. Stitched by another copy meanwhile: the file under the name stays;
    a version this copy wrote because the other copy's file had the name (`outputs.place`) goes."""
    from tasks.base import PieceResult, PieceRun
    from tasks.stitch import stitch

    final = tmp_path / name
    final.write_bytes(b"joined")
    record = RenderJob(kind="render", spec=RenderSpec(project="p", timeline="t"), plan=_plan(), state=state,
                       tasks=[TaskRecord(name="stitch", kind="stitch")], outputs=[str(tmp_path / "out.mov")])  # fmt: skip
    run = PieceRun(stitch, record, record.task("stitch"), "post:m")
    stitch.after_stale(run, PieceResult(output=str(final)), record)
    assert final.exists() is kept


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),  # off unless configured
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, False),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_on_only_when_the_otel_variables_ask(env: dict[str, str], on: bool) -> None:
    from orchestrator import telemetry

    assert telemetry.wanted(env) is on


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "zipkin"}, "OTEL_TRACES_EXPORTER"),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
         "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
    ],
)  # fmt: skip
def test_tracing_the_farm_cannot_do_is_refused_naming_the_variable(monkeypatch, capsys, env, variable) -> None:
    """The CLI (and the MCP server it starts) refuses at start; a worker before it forks its pool."""
    from orchestrator import telemetry
    from orchestrator.cli import main

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(telemetry, "_configured", None)  # as a fresh process
    assert main(["jobs"]) == 2
    assert f"refused: {variable}" in capsys.readouterr().err.replace("\n", " ")
    with pytest.raises(telemetry.TelemetryRefused, match=variable):
        telemetry.trace_worker(prefork=True, instance="sim-1")
    assert telemetry._configured is None  # nothing was set up


def test_a_face_refuses_arguments_it_cannot_serve() -> None:
    """A face's arguments each need a description, hold JSON values, and leave the names every submit tool and
    command takes (`after`, `wait_seconds`, ...) alone; positionals and options name its fields."""
    from pydantic import BaseModel, Field

    from orchestrator.kinds.face import Face

    class Plain(BaseModel):
        files: list[str] = Field(description="files")

    def face(arguments: type[BaseModel], **extra: Any) -> Face:
        return Face(command="c", tool="t", title="T", description="D", arguments=arguments, **extra)

    assert face(Plain).option("files") == "--files"
    assert face(Plain, options={"files": "--file"}).option("files") == "--file"

    class Undescribed(BaseModel):
        files: list[str]

    class Nested(BaseModel):
        inner: Plain = Field(description="a model")

    class Taken(BaseModel):
        after: list[str] = Field(description="clashes with every tool's after")

    for arguments, extra, said in [
        (Undescribed, {}, "each need a description"),
        (Nested, {}, "hold JSON values"),
        (Taken, {}, "taken by every submit tool"),
        (Plain, {"positional": ("nope",)}, "'nope' is not one of Plain's fields"),
        (Plain, {"positional": ("files",), "from_file": True}, "no other positional"),
    ]:
        with pytest.raises(TypeError, match=said):
            face(arguments, **extra)


def test_a_plugin_that_does_not_import_is_refused_naming_the_setting(monkeypatch, capsys) -> None:
    """Every command refuses a plugin module that does not import, naming `plugins` (no traceback); the farm's own
    kinds' commands still exist, so `render` reports it too rather than being an unknown command."""
    from orchestrator import cli

    monkeypatch.setenv("RESOLVE_FARM_PLUGINS", "no_such_plugin_module")
    monkeypatch.setenv("RESOLVE_FARM_BROKER_URL", "redis://127.0.0.1:1/0")
    for args in (["status", "abcd"], ["render", "Demo", "Main"]):
        assert cli.main(args) == 2, args
        said = " ".join(capsys.readouterr().err.split())
        assert "refused: plugins: 'no_such_plugin_module' does not import here" in said, (args, said)
