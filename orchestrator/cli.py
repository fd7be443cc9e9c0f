"""The `resolve-farm` command.

Note: `doctor` and `demo` are host-local commands: they talk to this host's Resolve
through the bridge (imported lazily, here only), not to the farm through Celery.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

BRIDGE_MODES = ("auto", "native", "subprocess", "sim")


def farm_home() -> Path:
    """RESOLVE_FARM_HOME, or a folder in the user's data dir."""
    explicit = os.environ.get("RESOLVE_FARM_HOME")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "resolve-farm"


def _bridge_settings(args: argparse.Namespace) -> Any:
    from bridge.settings import BridgeSettings
    from bridge.sim.config import SimConfig

    overrides: dict[str, Any] = {"mode": args.bridge, "host": args.host}
    if args.bridge == "sim" and not os.environ.get("RESOLVE_SIM_LIBRARY"):
        overrides["sim"] = SimConfig.from_env(
            {**os.environ, "RESOLVE_SIM_LIBRARY": str(farm_home() / "sim" / "library.json")}
        )
    return BridgeSettings.from_env(**overrides)


def cmd_doctor(args: argparse.Namespace) -> int:
    from bridge.doctor import report

    result = report(_bridge_settings(args))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_doctor(result, Console(soft_wrap=True))
    return 0 if result["ok"] else 1


def _print_doctor(result: dict[str, Any], console: Console) -> None:
    def line(ok: bool | None, text: str) -> None:
        mark = "[green]ok [/]" if ok else ("[red]no [/]" if ok is False else "[dim]-- [/]")
        console.print(f"  {mark} {text}", highlight=False)

    py, lib, conn = result["python"], result["library"], result["connection"]
    console.print(f"[bold]resolve-farm doctor[/] (bridge: {result['mode']})")
    line(True, f"Python {py['version']} ({py['implementation']}, {py['abi']}, {py['machine']}) at {py['executable']}")
    if lib.get("found"):
        line(True, f"scripting library found: {lib['found']}")
        line(lib.get("loaded"), "library loads (ctypes)" + (f": {lib['error']}" if lib.get("error") else ""))
        if lib.get("loaded"):
            line(True, "PyInit_fusionscript resolved")
            init = lib.get("initialised")
            if init is not None:
                line(
                    init.get("ok"),
                    "initialised in-process and connected" + ("" if init.get("ok") else f": {init.get('error')}"),
                )
    else:
        line(
            None if result["mode"] == "sim" else False,
            f"scripting library not found (looked in: {', '.join(lib['looked_in']) or '-'})",
        )
    if conn.get("ok"):
        studio = "Studio" if conn.get("studio") else "not Studio"
        line(True, f"connected via {conn['mode']}: {conn['product']} {conn['version']} ({studio})")
        if conn.get("library"):
            line(True, f"simulator library: {conn['library']}")
    else:
        line(False, f"no connection via {conn.get('mode')}: {conn.get('error')}")
    if result["auto"]:
        for attempt in result["auto"].get("attempts", []):
            line(
                attempt["result"] == "ok",
                f"auto tried {attempt['mode']}: {attempt['result']}"
                + (f" ({attempt.get('error')})" if attempt.get("error") else ""),
            )
        line(bool(result["auto"].get("chosen")), f"auto chose: {result['auto'].get('chosen') or 'nothing'}")
    for problem in result["problems"]:
        console.print(f"  [yellow]fix[/] {problem['what']}: {problem['fix'] or 'see above'}", highlight=False)
    console.print("[green]usable bridge: yes[/]" if result["ok"] else "[red]usable bridge: no[/]")


def cmd_demo(args: argparse.Namespace) -> int:
    """Render the demo timeline on this host's simulator and verify every frame."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from bridge import connect
    from bridge.sim import framecode

    console = Console(soft_wrap=True)
    settings = _bridge_settings(argparse.Namespace(bridge="sim", host=None))
    out_dir = Path(args.output or farm_home() / "renders")
    with connect(settings) as session:
        session.open_project(args.project)
        info = session.timeline_info(args.timeline)
        first, last = info["start_frame"], info["end_frame"]
        what = f"{args.project}/{args.timeline}: frames {first}..{last}"
        console.print(f"rendering {what} ({info['frames']} at {info['fps']:g} fps)")
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} frames"),
            TimeRemainingColumn(),
            console=console,
        ) as bar:
            task = bar.add_task(f"{args.timeline} (sim)", total=info["frames"])
            result = session.render(
                args.timeline,
                first,
                last,
                str(out_dir),
                f"{args.project}_{args.timeline}",
                progress=lambda done, total, _: bar.update(task, completed=done),
            )
    frames = framecode.read_file(result.outputs[0])
    exact = frames == list(range(first, last + 1))
    console.print(
        f"{'verified' if exact else 'WRONG'}: {len(frames)} frames, {first}..{last} in order -> {result.outputs[0]}"
    )
    console.print(f"rendered in {result.seconds:.1f}s ({info['frames'] / result.seconds:.0f} frames/s)")
    return 0 if exact else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resolve-farm", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    doctor = sub.add_parser("doctor", help="diagnose this host's bridge to Resolve")
    doctor.add_argument("--bridge", choices=BRIDGE_MODES, default=os.environ.get("RESOLVE_FARM_BRIDGE", "auto"))
    doctor.add_argument("--host", help="a Resolve on another machine (network scripting)")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(func=cmd_doctor)

    demo = sub.add_parser("demo", help="render the demo timeline on this host's simulator and verify it")
    demo.add_argument("--project", default="Demo")
    demo.add_argument("--timeline", default="Main")
    demo.add_argument("--output", help="output folder (default: renders/ under RESOLVE_FARM_HOME)")
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
