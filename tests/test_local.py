"""`resolve-farm up`, the embedded Redis and `resolve-farm demo`, run as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from farm_helpers import FAST, farm_env

from orchestrator.app import make_app
from orchestrator.local.redis_server import EmbeddedRedis
from orchestrator.settings import FarmSettings
from orchestrator.store import connect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_embedded_redis_keeps_queued_messages_across_a_restart(tmp_path: Path) -> None:
    with farm_env(tmp_path, RESOLVE_FARM_REDIS_PASSWORD="s3cret-pw"):
        settings = FarmSettings()
        server = EmbeddedRedis(settings)
        url = server.start()
        assert "s3cret-pw" in url and url.startswith("redis://:")
        app = make_app(settings, url)
        app.send_task("tasks.render_segment", args=("job", "segment 1/1"), queue="v1.render")
        client = connect(url)
        client.set("rf:job:survivor", "{}")
        assert client.llen("v1.render") == 1
        port = server.port
        server.stop()
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0  # really stopped
        again = EmbeddedRedis(settings)
        assert again.start() == url  # same port, same password
        client = connect(url)
        assert client.llen("v1.render") == 1 and client.get("rf:job:survivor") == "{}"
        assert "s3cret-pw" not in (tmp_path / "redis" / "state.json").read_text()
        again.stop()
        app.close()


def test_wrong_password_is_refused(tmp_path: Path) -> None:
    import pytest
    import redis

    with farm_env(tmp_path, RESOLVE_FARM_REDIS_PASSWORD="right"):
        server = EmbeddedRedis(FarmSettings())
        url = server.start()
        try:
            with pytest.raises(redis.exceptions.AuthenticationError):
                connect(url.replace("right", "wrong")).ping()
        finally:
            server.stop()


def test_up_runs_a_farm_until_interrupted(tmp_path: Path) -> None:
    env = {**os.environ, **FAST, "RESOLVE_FARM_HOME": str(tmp_path), "RESOLVE_SIM_LIBRARY": str(tmp_path / "lib.json")}
    flower_port, metrics_port = _free_port(), _free_port()
    up = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "up", "--nodes", "2", "--flower-port", str(flower_port),
                           "--metrics-port", str(metrics_port)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert up.stdout is not None
        started = json.loads(up.stdout.readline())
        assert started["nodes"] == ["sim-1", "sim-2"] and started["home"] == str(tmp_path)
        done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "render", "Demo", "Teaser", "--wait", "--json"],
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        record = json.loads(done.stdout)
        assert record["state"] == "succeeded" and Path(record["outputs"][0]).is_file()
        assert record["plan"]["segments"] == 2
        import httpx2

        scraped = httpx2.get(f"http://127.0.0.1:{metrics_port}/metrics").text
        assert 'resolve_farm_jobs{state="succeeded"} 1.0' in scraped
    finally:
        up.send_signal(signal.SIGINT)
        assert up.wait(timeout=60) == 0
    stderr = up.stderr.read() if up.stderr else ""
    assert "resolve-farm is up: 2 Resolve node(s)" in stderr and "stopped" in stderr
    assert f"Flower: http://127.0.0.1:{flower_port}" in stderr
    assert f"metrics: http://127.0.0.1:{metrics_port}/metrics" in stderr
    port = json.loads((tmp_path / "redis" / "state.json").read_text())["port"]
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # Redis stopped with the farm
    assert set(started["pids"]) == {"sim-1", "sim-2", "post"}
    for pid in started["pids"].values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_demo(tmp_path: Path) -> None:
    env = {**os.environ, "RESOLVE_FARM_HOME": str(tmp_path), "RESOLVE_SIM_LIBRARY": str(tmp_path / "lib.json"),
           "RESOLVE_SIM_FPS": "960", "RESOLVE_FARM_HEARTBEAT_INTERVAL": "0.5", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "3"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "demo", "--nodes", "2", "--timeline", "Teaser"],
                          env=env, capture_output=True, text=True, timeout=180)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    out = tmp_path / "storage" / "Demo_Teaser_farm.mov"
    assert "verified: 360 frames 86400..86759 in order, none missing or doubled" in done.stdout
    assert str(out) in done.stdout and out.is_file()
    assert "speed-up" in done.stdout


def test_secrets_stay_out_of_logs_and_records(tmp_path: Path) -> None:
    from farm_helpers import running_farm

    secret = "Sup3r-Secret-PW"
    with running_farm(tmp_path, {"pw-1": {}}, RESOLVE_FARM_REDIS_PASSWORD=secret) as (_local, farm):
        from farm_helpers import run

        record = run(farm, {"project": "Demo", "timeline": "Teaser", "output_name": "pw"})
        assert record.state == "succeeded"
        assert secret not in record.model_dump_json()
        assert secret not in json.dumps([n.public() for n in farm.nodes.all()])
        logs = list((tmp_path / "logs").glob("*.log"))
    assert logs and all(secret not in log.read_text(errors="replace") for log in logs)
    assert "redis://:**@" in (tmp_path / "logs" / "pw-1.log").read_text()


@pytest.mark.parametrize("flag", ["--flower-port", "--metrics-port"])
def test_up_with_a_port_taken_says_which_and_leaves_nothing_running(tmp_path: Path, flag: str) -> None:
    env = {**os.environ, **FAST, "RESOLVE_FARM_HOME": str(tmp_path), "RESOLVE_SIM_LIBRARY": str(tmp_path / "lib.json")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        free = _free_port()
        ports = {
            "--flower-port": str(free),
            "--metrics-port": str(free + 1 if free < 65535 else free - 1),
            flag: str(port),
        }
        done = subprocess.run([sys.executable, "-m", "orchestrator.cli", "up", "--nodes", "1",
                               "--flower-port", ports["--flower-port"], "--metrics-port", ports["--metrics-port"]],
                              env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert f"port {port}" in done.stderr and flag in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "redis" / "state.json").exists() and not (tmp_path / "logs").exists()  # nothing started


def test_the_embedded_redis_config_is_private_from_its_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config holds the password: created 0600, never at the umask's mode and chmodded after."""
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def spy(path: Any, flags: int, mode: int = 0o777, *args: Any, **kwargs: Any) -> int:
        opened.append((str(path), mode))
        return real_open(path, flags, mode, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy)
    old = os.umask(0)  # the widest umask: a plain write would make it world-readable
    try:
        with farm_env(tmp_path, RESOLVE_FARM_REDIS_PASSWORD="pw-0600"):
            server = EmbeddedRedis(FarmSettings())
            server.start()
            server.stop()
    finally:
        os.umask(old)
    conf = tmp_path / "redis" / "redis.conf"
    assert (str(conf), 0o600) in opened
    assert conf.stat().st_mode & 0o777 == 0o600 and "pw-0600" in conf.read_text()
