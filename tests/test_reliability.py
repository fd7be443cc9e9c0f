"""Faults inflicted on a running farm, and hostile input: the job ends right or is refused cleanly."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import run, running_farm, settle
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator import jobs, routing
from orchestrator.kinds.edit import EditSpec
from orchestrator.kinds.render import RenderSpec
from orchestrator.local.demo import verify
from orchestrator.piecelog import PieceLog

NODES: dict[str, dict[str, Any]] = {"r-1": {}, "r-2": {}}


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("reliability")
    slow = {"env": {"RESOLVE_SIM_THROTTLE": str(home / "throttle")}}  # no file: full speed
    with running_farm(home, {name: slow for name in NODES}, RESOLVE_SIM_FPS="120") as pair:
        yield pair


def _running_segment(farm, job_id: str, frames: int = 20, kind: str = "segment") -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        running = [
            t
            for t in farm.store.get(job_id).tasks
            if t.kind == kind and t.state == "running" and t.frames_done > frames
        ]
        if running:
            return running[0]
        time.sleep(0.05)
    raise AssertionError("no segment started")


def test_a_stopped_worker_gives_its_running_segment_back(farm) -> None:
    """A service stop (SIGTERM, Celery's warm shutdown) mid-segment: the render stops at the next progress
    report, the segment goes back to the queue uncounted (not a failure of the node), the worker exits without
    waiting for it, and the other node renders it."""
    local, farm = farm
    throttle = farm.settings.home / "throttle"
    throttle.write_text("20")  # every frame 20x dearer: the segment cannot finish before the stop reaches it
    try:
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Social", "split": 2, "output_name": "warm"})
        piece = _running_segment(farm, record.id, frames=0)
        code = local.stop_worker(piece.node, signal.SIGTERM, timeout=60)
        assert code == 0
        back = farm.store.get(record.id).task(piece.name)
        assert back.node != piece.node and back.attempts <= 1 and not back.failed_on, back  # given back, uncounted
    finally:
        throttle.unlink()
    final = jobs.wait(farm, record.id, timeout=90)
    assert final.state == "succeeded", final.errors
    again = final.task(piece.name)
    assert again.node != piece.node and again.attempts == 1 and not again.failed_on
    assert not final.blocked_nodes and verify(final.outputs[0], final.plan)["exact"]
    assert any("given back: the worker on" in line for line in PieceLog(farm.redis, 60).read(record.id, piece.name))
    local.add_worker(piece.node)
    local.wait_ready([piece.node])


def test_the_same_segment_delivered_twice_is_rendered_once(farm) -> None:
    """A second copy of a running segment's message meets the lock, looks again later, then finds it done."""
    _, farm = farm
    spec = {"project": "Demo", "timeline": "Social", "split": "none", "audio": False, "output_name": "twice"}
    record = jobs.submit_render(farm, spec)
    segment = _running_segment(farm, record.id, kind="render")  # the copy arrives while the original renders...
    idle = next(n for n in NODES if n != segment.node)  # ...on the other host, which is free to take it
    # A duplicate delivery: the same message (id and arguments) a second time.
    farm.app.send_task(segment.task, args=(record.id, segment.name, record.generation),
                       queue=routing.node_queue(idle), task_id=segment.celery_id)  # fmt: skip
    final = jobs.wait(farm, record.id, timeout=90)
    assert final.state == "succeeded"
    assert final.task(segment.name).attempts == 1  # rendered once
    assert verify(final.outputs[0], final.plan)["exact"]
    log = PieceLog(farm.redis, 60)
    deadline = time.monotonic() + 30
    while not any("not run: skip" in line for line in log.read(record.id, segment.name)):  # the copy's last look
        assert time.monotonic() < deadline, "\n".join(log.read(record.id, segment.name))
        time.sleep(0.1)
    lines = log.read(record.id, segment.name)
    locked = next(i for i, line in enumerate(lines) if "found the piece locked by" in line)
    done = next(i for i, line in enumerate(lines) if "not run: skip" in line)
    assert locked < done  # both paths, in that order: the lock first, then the record saying it is done
    assert "done already" in lines[done] or "the job is succeeded" in lines[done]


def test_unwritable_output_fails_clearly_naming_the_path(farm) -> None:
    _, farm = farm
    root = farm.settings.storage_roots[0]
    (root / "blocked").write_text("a file where a folder should be")
    final = run(farm, {"project": "Demo", "timeline": "Teaser", "output_dir": "blocked/out", "output_name": "nowhere"})
    assert final.state == "failed"
    assert str(root / "blocked") in final.errors[0]
    assert not list(root.glob("blocked*/**/*.mov"))


def test_a_pickled_message_is_refused_and_never_run(farm, tmp_path: Path) -> None:
    local, farm = farm
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # what unpickling would run
            return (open, (str(marker), "w"))

    payload = pickle.dumps(((Exploit(),), {}, {}))
    with farm.app.producer_or_acquire() as producer:
        producer.publish(payload, routing_key=routing.RENDER, exchange="", serializer=None,
                         content_type="application/x-python-serialize", content_encoding="binary",
                         headers={"task": "tasks.render_segment", "id": "pickled-1", "lang": "py"})  # fmt: skip
    deadline = time.monotonic() + 20
    logs = list(local.workers.values())
    while time.monotonic() < deadline:
        text = "".join(w.log.read_text(errors="replace") for w in logs)
        if "pickled-1" in text or "disallowed" in text.lower() or "refusing" in text.lower():
            break
        time.sleep(0.2)
    text = "".join(w.log.read_text(errors="replace") for w in logs)
    assert "ContentDisallowed" in text or "disallowed" in text.lower() or "Refusing" in text, text[-2000:]
    assert not marker.exists()  # no code from the message ran
    settle(farm)  # and the farm goes on
    assert run(farm, {"project": "Demo", "timeline": "Teaser", "output_name": "after_pickle"}).state == "succeeded"


def test_a_batch_edit_touching_ten_thousand_items(farm, capsys: pytest.CaptureFixture[str]) -> None:
    """One edit job over a 10,000-item timeline: every item changed, every result recorded, the record consistent."""
    from bridge.sim import SimConfig, create
    from bridge.sim.bulk import many_items_project
    from bridge.sim.library import Library

    _, farm = farm
    assert many_items_project(create(SimConfig.from_env()), "Load", "Ten thousand", 10_000) == 10_000
    jobs.inspect(farm, "r-1", timeout=30)  # the node publishes the new project in its catalog
    operations = [{"op": "set_clip_color", "color": "Teal"},
                  {"op": "set_cdl", "slope": [1.1, 1.0, 0.9], "saturation": 0.9}]  # fmt: skip
    spec = {"targets": [{"project": "Load", "timeline": "Ten thousand"}], "operations": operations}
    record = run(farm, spec, kind="edit", timeout=300)
    assert record.state == "succeeded" and not record.errors, record.errors
    (task,) = record.tasks
    assert task.state == "done" and len(task.results) == 20_000 and all(r["ok"] for r in task.results)
    assert farm.store.get(record.id).model_dump() == record.model_dump()  # stored whole, reads back the same
    light = {"tasks": {"__all__": {"results"}}}
    listed = next(r for r in farm.store.list(kind="edit", limit=50) if r.id == record.id)
    assert listed.tasks[0].results == [] and listed.model_dump(exclude=light) == record.model_dump(exclude=light)
    library = Library(Path(os.environ["RESOLVE_SIM_LIBRARY"])).read()
    project = next(p for p in library["databases"]["Local Database"]["projects"].values() if p["name"] == "Load")
    items = next(t for t in project["timelines"] if t["name"] == "Ten thousand")["tracks"]["video"][0]["items"]
    assert len(items) == 10_000
    assert all(it["color"] == "Teal" and it["cdl"]["1"]["Slope"] == [1.1, 1.0, 0.9] for it in items)
    assert project["saved"]
    # An agent gets counts per operation and a sample, not 20,000 lines; the CLI likewise.
    from mcp import Client

    from mcp_server.server import build_server

    async def get_job() -> Any:
        async with Client(build_server(farm)) as client:
            return await client.call_tool("get_job", {"job_id": record.id})

    view = asyncio.run(get_job()).structured_content["tasks"][0]
    assert view["results_summary"] == [{"op": 0, "kind": "set_clip_color", "ok": 10_000, "refused": 0},
                                       {"op": 1, "kind": "set_cdl", "ok": 10_000, "refused": 0}]  # fmt: skip
    assert len(view["results"]) == 50 and view["results_omitted"] == 19_950
    from orchestrator.cli.views import print_result

    print_result(record)
    printed = capsys.readouterr().out
    assert "set_clip_color: 10000 item(s) changed, 0 refused" in printed and "20000 more item(s)" in printed
    assert len(printed.splitlines()) < 10


# --- hostile and malformed input --------------------------------------------------------------

TEXT = st.one_of(st.text(max_size=40), st.text(min_size=300, max_size=3000), st.sampled_from(
    ["..", "../../etc", "/etc/passwd", "a/../../b", "x\x00y", "Demo", "Main", "C:\\Windows", "~root", "ünïcødé 🎬"]))  # fmt: skip
NUMBER = st.one_of(st.integers(-(2**63), 2**63), st.floats(allow_nan=True), st.sampled_from([86400, 89279, -1, 0]))
VALUE = st.one_of(
    TEXT, NUMBER, st.booleans(), st.none(), st.lists(TEXT, max_size=3), st.dictionaries(TEXT, TEXT, max_size=3)
)
RENDER_KEYS = ["project", "timeline", "format", "codec", "preset", "settings", "frames", "output_dir", "output_name",
               "split", "audio", "priority", "node", "tags", "max_attempts", "database", "drp", "unknown_field"]  # fmt: skip
SPECS = st.dictionaries(
    st.sampled_from(RENDER_KEYS), st.one_of(VALUE, st.fixed_dictionaries({"start": NUMBER, "end": NUMBER})), max_size=8
)


def _names_fields_and_reasons(exc: ValidationError, data: dict[str, Any], fields: dict[str, Any]) -> None:
    """Every refusal names a field of the spec (one given, or one required and missing) and says why."""
    assert exc.errors()
    for error in exc.errors():
        field, reason = error["loc"][0] if error["loc"] else None, error["msg"]
        assert reason and field is not None, error
        if field not in fields:  # only a key the user sent can be unknown
            assert field in data and error["type"] == "extra_forbidden", error
        elif field not in data:  # a missing field must be a required one
            assert error["type"] == "missing" and fields[field].is_required(), error


@settings(max_examples=300, deadline=None)
@given(SPECS)
def test_render_spec_never_does_anything_but_validate_or_refuse(data: dict[str, Any]) -> None:
    try:
        spec = RenderSpec.model_validate(data)
    except ValidationError as exc:
        _names_fields_and_reasons(exc, data, RenderSpec.model_fields)
        return
    assert "unknown_field" not in data  # a key the farm does not know is never accepted
    assert spec.project and spec.timeline
    assert spec.output_name is None or (
        "/" not in spec.output_name and "\\" not in spec.output_name and ".." not in spec.output_name[:2]
    )


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["targets", "operations", "dry_run", "priority", "node", "tags", "other"]), VALUE, max_size=5
    )
)
def test_edit_spec_never_does_anything_but_validate_or_refuse(data: dict[str, Any]) -> None:
    try:
        EditSpec.model_validate(data)
    except ValidationError as exc:
        _names_fields_and_reasons(exc, data, EditSpec.model_fields)
        return
    assert "other" not in data  # a key the farm does not know is never accepted


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(SPECS)
def test_submit_refuses_cleanly_and_queues_nothing_for_refused_input(farm, data: dict[str, Any]) -> None:
    _, farm = farm
    data = {"project": "Demo", "timeline": "Teaser", **data}
    before = {r.id for r in farm.store.list(limit=100_000)}
    try:
        record = jobs.submit_render(farm, data)
    except ValidationError as exc:
        _names_fields_and_reasons(exc, data, RenderSpec.model_fields)
        assert {r.id for r in farm.store.list(limit=100_000)} == before  # nothing stored
        return
    except jobs.SubmitRefused as exc:
        assert exc.field.split(".")[0] in RenderSpec.model_fields and exc.reason, exc  # names a field and a reason
        assert {r.id for r in farm.store.list(limit=100_000)} == before  # nothing stored
        return
    jobs.cancel(farm, record.id, wait=0)  # a valid one: not what this test is about
    output = Path(record.plan.output)
    assert any(os.path.commonpath([output, root]) == str(root) for root in farm.settings.storage_roots)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sampled_from(["render_timeline", "batch_edit", "get_job", "list_jobs", "cancel_job", "retry_job",
                        "wait_for_job", "inspect_resolve", "nope"]),
       st.dictionaries(st.sampled_from(["project", "timeline", "job_id", "targets", "operations", "start_frame", "end_frame",
                                        "split", "priority", "timeout_seconds", "node", "state", "limit", "zzz"]), VALUE, max_size=5))  # fmt: skip
def test_no_tool_input_crashes_the_mcp_server(farm, tool: str, arguments: dict[str, Any]) -> None:
    import asyncio

    from mcp import Client

    from mcp_server.server import build_server

    _, farm = farm
    if tool == "wait_for_job":
        arguments["timeout_seconds"] = 0
    if tool == "inspect_resolve":
        arguments["timeout_seconds"] = 1

    async def main() -> tuple[Any, Any]:
        async with Client(build_server(farm)) as client:
            result = await client.call_tool(tool, arguments)
            alive = await client.call_tool("list_nodes", {})
            return result, alive

    result, alive = asyncio.run(main())
    assert not alive.is_error  # the server still answers
    if result.is_error:
        assert "Traceback" not in result.content[0].text
    for record in farm.store.list(limit=100_000):
        if not record.finished:
            jobs.cancel(farm, record.id, wait=0)  # keep the farm quiet for the next example
    assert result.content and result.content[0].text  # every answer, refusal or not, says something
