"""Watching the farm: Flower's REST API with and without auth, and the Prometheus metrics moving."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import pytest
from farm_helpers import run, running_farm
from pydantic import SecretStr

from orchestrator.local.metrics_server import serve
from orchestrator.local.watch import Exposed, flower_command, start_flower


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name) and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("watch")
    with running_farm(home, {"w-1": {}, "w-2": {}}, RESOLVE_FARM_FLOWER_USER="ops",
                      RESOLVE_FARM_FLOWER_PASSWORD="fl0wer-pw") as (_local, farm):  # fmt: skip
        settings = farm.settings.model_copy(update={"flower_user": "ops"})
        port = _free_port()
        flower = start_flower(settings, farm.url, "127.0.0.1", port, home / "logs" / "flower.log")
        metrics = serve(farm, "127.0.0.1", 0)
        try:
            yield farm, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{metrics.server_port}/metrics", home
        finally:
            flower.terminate()
            flower.wait(timeout=10)
            metrics.shutdown()


def test_metrics_move_during_a_job(watched) -> None:
    farm, _, metrics_url, _ = watched
    before = httpx2.get(metrics_url).text
    assert _metric(before, "resolve_farm_nodes", status="up") == 3  # two Resolve nodes and the post worker
    assert _metric(before, "resolve_farm_node_up", node="w-1") == 1
    record = run(farm, {"project": "Demo", "timeline": "Social", "split": 2, "output_name": "metered"})
    assert record.state == "succeeded"
    after = httpx2.get(metrics_url).text
    frames = sum(_metric(after, "resolve_farm_frames_rendered_total", node=n) for n in ("w-1", "w-2"))
    frames_before = sum(_metric(before, "resolve_farm_frames_rendered_total", node=n) for n in ("w-1", "w-2"))
    assert frames - frames_before == 720
    assert (
        _metric(after, "resolve_farm_jobs", state="succeeded")
        == _metric(before, "resolve_farm_jobs", state="succeeded") + 1
    )
    assert (
        _metric(after, "resolve_farm_stitch_seconds_count") == _metric(before, "resolve_farm_stitch_seconds_count") + 1
    )
    assert any(_metric(after, "resolve_farm_render_fps", node=n) > 0 for n in ("w-1", "w-2"))
    assert "# TYPE resolve_farm_queue_depth gauge" in after, after
    # Nothing failed on this farm: the family is declared, with no sample (tests/test_engine.py counts real ones).
    assert (
        "# TYPE resolve_farm_task_failures_total counter" in after and "resolve_farm_task_failures_total{" not in after
    )


def test_flower_api_needs_auth_and_shows_the_farm(watched) -> None:
    farm, flower_url, _, home = watched
    deadline = time.monotonic() + 60
    while True:
        try:
            anonymous = httpx2.get(f"{flower_url}/api/workers")
            break
        except httpx2.TransportError:
            assert time.monotonic() < deadline, (home / "logs" / "flower.log").read_text()
            time.sleep(0.3)
    assert anonymous.status_code == 401
    auth = ("ops", "fl0wer-pw")
    assert httpx2.get(f"{flower_url}/api/workers", auth=("ops", "wrong")).status_code == 401
    record = run(farm, {"project": "Demo", "timeline": "Teaser", "output_name": "flowered"})
    deadline = time.monotonic() + 30
    while True:
        workers = httpx2.get(f"{flower_url}/api/workers", auth=auth, params={"refresh": "true"}, timeout=30).json()
        tasks = httpx2.get(f"{flower_url}/api/tasks", auth=auth, timeout=30).json()
        mine = [t for t in tasks.values() if record.id in (t.get("args") or "")]
        shown = [t for t in mine if t["name"] == "tasks.render_segment" and t["state"] == "SUCCESS"]
        if len(workers) >= 3 and any("'range': '" in (t.get("result") or "") for t in shown):
            break
        assert time.monotonic() < deadline, (workers.keys(), list(tasks.values())[:3])
        time.sleep(0.5)
    assert {w.split("@")[0] for w in workers} >= {"w-1", "w-2", "post"}
    # A pulled piece is sent before it takes its frames: its message names it, its result shows its range.
    pieces = [t for t in farm.store.get(record.id).tasks if t.kind == "segment" and t.start is not None]
    ranges = {f"'range': '{t.start}..{t.end}'" for t in pieces}
    assert any(f"job {record.id} | Demo/Teaser {t.name} | the next frames left | v1.render" in [m["args"] for m in mine]
               for t in pieces)  # fmt: skip
    assert any(r in (t.get("result") or "") for t in shown for r in ranges), [t["result"] for t in shown]
    # The audio pass goes to the slowest node known (its own queue), or to any when none is known yet.
    assert any(t["args"].startswith(f"job {record.id} | Demo/Teaser audio | frames 86400..86759 | v1.") for t in mine)
    queues = httpx2.get(f"{flower_url}/api/queues/length", auth=auth, timeout=30).json()
    names = {q["name"] for q in queues["active_queues"]}
    assert {"v1.render", "v1.edit", "v1.post", "v1.node.w-1", "v1.node.w-2"} <= names, names
    assert "fl0wer-pw" not in (home / "logs" / "flower.log").read_text()


def test_flower_refuses_an_open_address_without_auth(tmp_path: Path) -> None:
    from orchestrator.settings import FarmSettings

    settings = FarmSettings(home=tmp_path, broker_url="redis://127.0.0.1:1/0", flower_user=None, flower_password=None)
    with pytest.raises(Exposed, match="without auth"):
        flower_command(settings, "redis://127.0.0.1:1/0", "0.0.0.0", 5555)
    cmd, env = flower_command(
        settings.model_copy(update={"flower_user": "a", "flower_password": SecretStr("b")}),
        "redis://127.0.0.1:1/0",
        "0.0.0.0",
        5555,
    )
    assert env["FLOWER_BASIC_AUTH"] == "a:b" and not any(part.split("=")[-1] == "b" for part in cmd)
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "flower", "--address", "0.0.0.0"],
                          env={**{k: v for k, v in os.environ.items() if not k.startswith("RESOLVE_FARM_FLOWER")},
                               "RESOLVE_FARM_HOME": str(tmp_path), "RESOLVE_FARM_BROKER_URL": "redis://127.0.0.1:1/0"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "without auth" in done.stderr
