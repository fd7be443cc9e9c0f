"""Watching the farm: Flower with basic auth, and the Prometheus metrics endpoint."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

from orchestrator.settings import FarmSettings


class Exposed(ValueError):
    """Serving this on this address would expose the farm without auth."""


def loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def flower_command(settings: FarmSettings, url: str, address: str, port: int) -> tuple[list[str], dict[str, str]]:
    """The command and environment that start Flower for the farm's app.

    Note: the credentials travel in FLOWER_BASIC_AUTH (the environment), never on the command
    line, where any user of the host could read them.
    """
    auth = settings.flower_user and settings.flower_password
    if not auth and not loopback(address):
        raise Exposed(
            f"refusing to serve Flower on {address} without auth: set RESOLVE_FARM_FLOWER_USER and "
            "RESOLVE_FARM_FLOWER_PASSWORD, or bind to 127.0.0.1"
        )
    env = {**os.environ, "RESOLVE_FARM_BROKER_URL": url}
    env.pop("FLOWER_BASIC_AUTH", None)
    if settings.flower_user and settings.flower_password:
        env["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{settings.flower_password.get_secret_value()}"
    cmd = [
        sys.executable, "-m", "celery", "-A", "orchestrator.app", "flower",
        f"--address={address}", f"--port={port}", "--persistent=False", "--purge_offline_workers=300",
        "--enable_events=True", "--natural_time=False",
        # Readable arguments (job, segment, frame range, queue) right in the task list.
        "--tasks_columns=name,args,state,received,started,runtime,worker",
    ]  # fmt: skip
    return cmd, env


def start_flower(settings: FarmSettings, url: str, address: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    cmd, env = flower_command(settings, url, address, port)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
