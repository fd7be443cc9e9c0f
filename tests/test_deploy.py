"""deploy/ is checked, not trusted: every file parses and names only commands and settings that exist."""

from __future__ import annotations

import configparser
import plistlib
import re
import shlex
from pathlib import Path

import pytest
import yaml

from orchestrator.cli import build_parser
from orchestrator.settings import FarmSettings

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
BRIDGE_VARIABLES = {"RESOLVE_SCRIPT_LIB", "RESOLVE_SCRIPT_API", "RESOLVE_PYTHON"}


def _parses(argv: list[str]) -> None:
    """The CLI accepts these arguments (argparse exits on an unknown command or flag)."""
    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # pragma: no cover - the failure message is the point
        pytest.fail(f"resolve-farm {' '.join(argv)} is not a valid command line ({exc})")


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value.strip()
    return values


def _check_settings(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    fields = set(FarmSettings.model_fields)
    for key, value in values.items():
        if key.startswith("RESOLVE_FARM_"):
            assert key.removeprefix("RESOLVE_FARM_").lower() in fields, f"{key} is not a setting"
            monkeypatch.setenv(key, value)
        elif key.startswith("RESOLVE_"):
            assert key in BRIDGE_VARIABLES, f"{key} is not a variable the bridge reads"
    FarmSettings()  # the example is a valid configuration, not just plausible names


def test_compose(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"redis", "flower", "mcp", "metrics", "post"}
    for name, service in services.items():
        assert service.get("restart") == "unless-stopped", name
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"
        if name != "redis":
            _parses(service["command"])
            assert service["env_file"] == "farm.env"
    redis = " ".join(services["redis"]["command"])
    assert "--requirepass" in redis and "--appendonly yes" in redis
    assert services["post"]["stop_signal"] == "SIGTERM"
    _check_settings(_env_file(DEPLOY / "farm.env.example"), monkeypatch)


def test_dockerfile_installs_the_packages() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    for package in ("bridge", "orchestrator", "tasks", "mcp_server"):
        assert f"COPY {package} ./{package}" in text
    assert 'ENTRYPOINT ["resolve-farm"]' in text


def test_systemd_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.read(DEPLOY / "systemd" / "resolve-farm-worker.service")
    service = unit["Service"]
    argv = shlex.split(service["ExecStart"])
    assert argv[0].endswith("/resolve-farm")
    _parses(argv[1:])
    assert service["Restart"] == "on-failure" and service["KillSignal"] == "SIGTERM"
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    _check_settings(_env_file(DEPLOY / "systemd" / "worker.env.example"), monkeypatch)


def test_launchd_plist(monkeypatch: pytest.MonkeyPatch) -> None:
    plist = plistlib.loads((DEPLOY / "launchd" / "com.resolve-farm.worker.plist").read_bytes())
    assert plist["ProgramArguments"][0].endswith("/resolve-farm")
    _parses(plist["ProgramArguments"][1:])
    assert plist["KeepAlive"] == {"SuccessfulExit": False} and plist["RunAtLoad"] is True
    _check_settings(plist["EnvironmentVariables"], monkeypatch)


def test_windows_service_script(monkeypatch: pytest.MonkeyPatch) -> None:
    text = (DEPLOY / "windows" / "install-worker-service.ps1").read_text()
    install = re.search(r"nssm install \$service \$FarmExe (.+)", text)
    assert install is not None
    _parses(shlex.split(install.group(1)))
    names = set(re.findall(r'"(RESOLVE_[A-Z_]+)=', text))
    assert names and all(
        n.removeprefix("RESOLVE_FARM_").lower() in FarmSettings.model_fields or n in BRIDGE_VARIABLES for n in names
    )
    assert "AppStopMethodConsole" in text and "AppExit Default Restart" in text


def test_runbook_names_real_commands() -> None:
    text = (DEPLOY / "README.md").read_text()
    shell = "\n".join(re.findall(r"```sh\n(.*?)```", text, flags=re.S))
    commands = re.findall(r"^resolve-farm ([a-z][^\n#]*)", shell, flags=re.M)
    assert len(commands) >= 5
    for line in commands:
        _parses(shlex.split(line.strip()))
    for topic in ("External scripting using", "Studio", "path mapping", "version key", "requirepass", "TLS", "doctor"):
        assert topic.lower() in text.lower(), topic
