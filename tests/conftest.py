"""Shared fixtures: an isolated simulator library per test, and the compiled native stand-in."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).parent))

from fixtures import build  # noqa: E402
from otlp_stub import Collector  # noqa: E402


@pytest.fixture
def sim_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Environment for a simulator with its own library in tmp_path, fast and small."""
    env = {
        "RESOLVE_SIM_LIBRARY": str(tmp_path / "sim" / "library.json"),
        "RESOLVE_SIM_FPS": "2000",
        "RESOLVE_SIM_QUIRKS": "",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def resolve(sim_env: dict[str, str]):
    """A simulated Resolve, as scriptapp("Resolve") returns it."""
    from bridge.sim import scriptapp

    app = scriptapp("Resolve")
    yield app
    app._state.renderer.stop()


@pytest.fixture
def demo(resolve):
    """The Demo project loaded on a simulated host."""
    return resolve.GetProjectManager().LoadProject("Demo")


@pytest.fixture(scope="session")
def native_lib(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The compiled fusionscript stand-in (skipped only where no C compiler exists)."""
    if build.compiler() is None:
        pytest.skip("no C compiler on this machine: the native path cannot be exercised")
    return build.fusionscript(tmp_path_factory.mktemp("native"))


@pytest.fixture(scope="module")
def collector():
    """A local OTLP collector for a module's farm: where its workers (and processes a test starts) send spans."""
    stub = Collector()
    stub.start()
    yield stub
    stub.stop()
