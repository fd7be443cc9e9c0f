"""The `resolve-farm` command: run the farm, submit and follow jobs, check a host.

Note: `doctor`, `worker` and `demo`'s verification are host-local: they reach this host's
Resolve through the bridge (imported lazily, here only); everything else talks to the farm
through Redis and Celery.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import redis
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

BRIDGE_MODES = ("auto", "native", "subprocess", "sim")
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


class Refused(Exception):
    """A request the farm refused: printed as such, exit code 2."""


def _settings(**overrides: Any) -> Any:
    from orchestrator.settings import FarmSettings

    try:
        return FarmSettings(**overrides)
    except ValidationError as exc:
        raise Refused(f"bad settings: {_errors(exc)}") from None


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())


def _farm() -> Any:
    from orchestrator.farm import Farm

    return Farm(_settings())


def farm_home() -> Path:
    from orchestrator.settings import default_home

    explicit = os.environ.get("RESOLVE_FARM_HOME")
    return Path(explicit) if explicit else default_home()


# --- host-local ------------------------------------------------------------------------


def _bridge_settings(mode: str, host: str | None) -> Any:
    from bridge.settings import BridgeSettings
    from bridge.sim.config import SimConfig

    overrides: dict[str, Any] = {"mode": mode, "host": host}
    if mode == "sim" and not os.environ.get("RESOLVE_SIM_LIBRARY"):
        library = str(farm_home() / "sim" / "library.json")
        overrides["sim"] = SimConfig.from_env({**os.environ, "RESOLVE_SIM_LIBRARY": library})
    return BridgeSettings.from_env(**overrides)


def cmd_doctor(args: argparse.Namespace) -> int:
    from bridge.doctor import report

    result = report(_bridge_settings(args.bridge, args.host))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        _print_doctor(result)
    return 0 if result["ok"] else 1


def _print_doctor(result: dict[str, Any]) -> None:
    def line(ok: bool | None, text: str) -> None:
        mark = "[green]ok [/]" if ok else ("[red]no [/]" if ok is False else "[dim]-- [/]")
        out.print(f"  {mark} {text}")

    py, lib, conn = result["python"], result["library"], result["connection"]
    out.print(f"[bold]resolve-farm doctor[/] (bridge: {result['mode']})")
    line(True, f"Python {py['version']} ({py['implementation']}, {py['abi']}, {py['machine']}) at {py['executable']}")
    if lib.get("found"):
        line(True, f"scripting library found: {lib['found']}")
        line(lib.get("loaded"), "library loads (ctypes)" + (f": {lib['error']}" if lib.get("error") else ""))
        if lib.get("loaded"):
            line(True, "PyInit_fusionscript resolved")
            init = lib.get("initialised")
            if init is not None:
                detail = "" if init.get("ok") else f": {init.get('error')}"
                line(init.get("ok"), "initialised in-process and connected" + detail)
    else:
        looked = ", ".join(lib["looked_in"]) or "-"
        line(None if result["mode"] == "sim" else False, f"scripting library not found (looked in: {looked})")
    if conn.get("ok"):
        studio = "Studio" if conn.get("studio") else "not Studio"
        line(True, f"connected via {conn['mode']}: {conn['product']} {conn['version']} ({studio})")
        if conn.get("library"):
            line(True, f"simulator library: {conn['library']}")
    else:
        line(False, f"no connection via {conn.get('mode')}: {conn.get('error')}")
    if result["auto"]:
        for attempt in result["auto"].get("attempts", []):
            detail = f" ({attempt.get('error')})" if attempt.get("error") else ""
            line(attempt["result"] == "ok", f"auto tried {attempt['mode']}: {attempt['result']}{detail}")
        line(bool(result["auto"].get("chosen")), f"auto chose: {result['auto'].get('chosen') or 'nothing'}")
    for problem in result["problems"]:
        out.print(f"  [yellow]fix[/] {problem['what']}: {problem['fix'] or 'see above'}")
    out.print("[green]usable bridge: yes[/]" if result["ok"] else "[red]usable bridge: no[/]")


def cmd_worker(args: argparse.Namespace) -> int:
    """Run this host's worker: Resolve tasks (concurrency 1), stitching, or both."""
    roles = ([] if args.no_resolve else ["resolve"]) + (["post"] if args.post else [])
    if not roles:
        raise Refused("a worker needs a role: drop --no-resolve or add --post")
    env = {"RESOLVE_FARM_ROLES": ",".join(roles), "RESOLVE_FARM_BRIDGE": args.bridge}
    if args.name:
        env["RESOLVE_FARM_NODE_NAME"] = args.name
    if args.tags is not None:
        env["RESOLVE_FARM_NODE_TAGS"] = args.tags
    os.environ.update(env)
    settings = _settings()
    from orchestrator.app import get_app
    from orchestrator.routing import worker_queues

    queues = args.queues or ",".join(
        worker_queues(settings.node_name, settings.node_tags, "resolve" in roles, "post" in roles)
    )
    argv = [
        "worker", "--hostname", f"{settings.node_name}@%h", "--queues", queues, "--pool", "prefork",
        "--concurrency", str(args.concurrency or (1 if "resolve" in roles else 2)), "--events",
        "--without-gossip", "--without-mingle", "--loglevel", args.loglevel,
    ]  # fmt: skip
    get_app().worker_main(argv)
    return 0


# --- the farm --------------------------------------------------------------------------


def cmd_up(args: argparse.Namespace) -> int:
    from orchestrator.farm import Farm
    from orchestrator.local import LocalFarm
    from orchestrator.metrics import serve as serve_metrics
    from orchestrator.watch import start_flower

    farm = LocalFarm(_settings())
    stop = {"now": False}
    flower: Any = None
    metrics: Any = None

    def ask_stop(signum: int, frame: Any) -> None:
        stop["now"] = True

    signal.signal(signal.SIGINT, ask_stop)
    signal.signal(signal.SIGTERM, ask_stop)
    try:
        url = farm.start_redis()
        names = [f"sim-{i}" for i in range(1, args.nodes + 1)]
        for name in names:
            farm.add_worker(name, bridge=args.bridge)
        farm.add_worker("post", post=True, resolve=False)
        farm.wait_ready([*names, "post"])
        settings = farm.settings.model_copy(update={"broker_url": url})
        flower = start_flower(settings, "127.0.0.1", args.flower_port, farm.home / "logs" / "flower.log")
        metrics = serve_metrics(Farm(settings), "127.0.0.1", args.metrics_port)
        where = "embedded, " + url.split("@")[-1] if farm.redis else "external"
        err.print(f"resolve-farm is up: {len(names)} Resolve node(s) ({args.bridge}) and a post worker; Redis {where}")
        err.print(f"Flower: http://127.0.0.1:{args.flower_port}")
        err.print(f"metrics: http://127.0.0.1:{metrics.server_port}/metrics")
        err.print(f"home: {farm.home}; logs in {farm.home / 'logs'}; Ctrl-C stops everything")
        pids = {name: w.process.pid for name, w in farm.workers.items()}
        started = {"broker_url": _safe_url(url), "home": str(farm.home), "nodes": names, "pids": pids}
        print(json.dumps(started), flush=True)
        while not stop["now"]:
            for name, worker in farm.workers.items():
                if worker.process.poll() is not None:
                    err.print(f"[red]worker {name} exited with code {worker.process.returncode}[/]")
                    stop["now"] = True
            time.sleep(0.2)
    finally:
        err.print("stopping the farm...")
        if flower is not None and flower.poll() is None:
            flower.terminate()
            flower.wait(timeout=10)
        if metrics is not None:
            metrics.shutdown()
        farm.stop()
        err.print("stopped")
    return 0


def _safe_url(url: str) -> str:
    """The URL without its password: secrets never reach logs or output."""
    if "@" in url and ":" in url.split("@")[0]:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


def _render_spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"project": args.project, "timeline": args.timeline, "audio": not args.no_audio}
    for key in ("format", "codec", "preset", "output_dir", "node", "priority", "max_attempts"):
        value = getattr(args, key)
        if value is not None:
            spec[key] = value
    if args.name:
        spec["output_name"] = args.name
    if args.start is not None or args.end is not None:
        spec["frames"] = {"start": args.start, "end": args.end}
    if args.split:
        spec["split"] = int(args.split) if args.split.isdigit() else args.split
    if args.tag:
        spec["tags"] = args.tag
    if args.database:
        spec["database"] = {"name": args.database}
    if args.drp:
        spec["drp"] = args.drp
    settings: dict[str, Any] = {}
    for item in args.setting or []:
        key, _, raw = item.partition("=")
        try:
            settings[key] = json.loads(raw)  # numbers and booleans: 1920, true
        except ValueError:
            settings[key] = raw  # anything else is a string: Best, Same as Project
    if settings:
        spec["settings"] = settings
    return spec


def _submit(kind: str, spec: dict[str, Any]) -> Any:
    from orchestrator import jobs

    farm = _farm()
    try:
        record = jobs.submit_render(farm, spec) if kind == "render" else jobs.submit_edit(farm, spec)
    except ValidationError as exc:
        raise Refused(_errors(exc)) from None
    except jobs.SubmitRefused as exc:
        raise Refused(str(exc)) from None
    return farm, record


def cmd_render(args: argparse.Namespace) -> int:
    farm, record = _submit("render", _render_spec(args))
    return _after_submit(farm, record, args)


def cmd_edit(args: argparse.Namespace) -> int:
    text = Path(args.file).read_text(encoding="utf-8")
    if args.file.endswith((".yaml", ".yml")):
        import yaml

        spec = yaml.safe_load(text)
    else:
        spec = json.loads(text)
    if not isinstance(spec, dict):
        raise Refused(f"{args.file}: the batch edit must be an object with targets and operations")
    if args.dry_run:
        spec["dry_run"] = True
    farm, record = _submit("edit", spec)
    return _after_submit(farm, record, args)


def _after_submit(farm: Any, record: Any, args: argparse.Namespace) -> int:
    if not args.wait:
        if args.json:
            print(json.dumps(record.public()))
        else:
            out.print(f"job {record.id} queued: {_plan_line(record)}")
        return 0
    if not args.json:
        err.print(f"job {record.id}: {_plan_line(record)}")
    final = _follow(farm, record.id)
    if args.json:
        print(json.dumps(final.public()))
    else:
        _print_result(final)
    return 0 if final.state == "succeeded" else 1


def _plan_line(record: Any) -> str:
    plan = record.plan
    if record.kind == "edit":
        return f"{plan['targets']} timeline(s){' (dry run)' if plan.get('dry_run') else ''}"
    frames = plan["frames"]
    nodes = ", ".join(plan["eligible_nodes"]) or "none up yet"
    return f"frames {frames['start']}..{frames['end']} in {plan['segments']} segment(s) on {nodes}"


def _follow(farm: Any, job_id: str) -> Any:
    """Wait for a job with a progress bar per task (node names) and one overall, on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from orchestrator import jobs

    bars: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeRemainingColumn(), console=err, transient=False) as progress:  # fmt: skip
        overall = progress.add_task("job", total=100)

        def show(record: Any) -> None:
            progress.update(overall, completed=record.progress, description=f"job {record.id[:8]} {record.state}")
            for task in record.tasks:
                if task.kind in ("stitch", "edit") and task.state == "pending":
                    continue
                label = f"  {task.name} on {task.node or '-'} [{task.state}]"
                total = task.frames_total or 1
                done = task.frames_done if task.frames_total else (1 if task.state == "done" else 0)
                if task.name not in bars:
                    bars[task.name] = progress.add_task(label, total=total)
                progress.update(bars[task.name], completed=done, total=total, description=label)

        return jobs.wait(farm, job_id, on_progress=show)


def _print_result(record: Any) -> None:
    if record.state == "succeeded":
        for path in record.outputs:
            out.print(f"[green]succeeded[/]: {path}")
        for task in record.tasks:
            _print_items(task.name, task.results)
    else:
        out.print(f"[red]{record.state}[/]: " + ("; ".join(record.errors) or "no reason recorded"))


def _print_items(target: str, results: list[dict[str, Any]]) -> None:
    """Every item of a short report; counts per operation and the refusals of a long one (all in --json)."""
    from orchestrator.models import results_report

    report = results_report(results)
    for counts in report.get("results_summary", []):
        out.print(f"  {target}: {counts['kind']}: {counts['ok']} item(s) changed, {counts['refused']} refused")
    listed = [r for r in report["results"] if "results_summary" not in report or not r["ok"]]
    for item in listed:
        mark = "ok" if item["ok"] else f"refused: {item['error']}"
        out.print(f"  {target}: {item['kind']} {item['target']}: {item['change']} ({mark})")
    if len(results) > len(listed):
        out.print(f"  ({len(results) - len(listed)} more item(s): resolve-farm status JOB --json lists them all)")


def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator.store import JobNotFound

    try:
        record = _farm().store.get(args.job)
    except JobNotFound as exc:
        raise Refused(str(exc)) from None
    if args.json:
        print(json.dumps(record.public()))
        return 0 if record.state != "failed" else 1
    table = Table(title=f"job {record.id} ({record.kind}): {record.state}, {record.progress:.1f}%")
    for column in ("task", "node", "state", "attempts", "frames", "error"):
        table.add_column(column)
    for t in record.tasks:
        frames = f"{t.frames_done}/{t.frames_total}" if t.frames_total else "-"
        table.add_row(t.name, t.node or "-", t.state, str(t.attempts), frames, t.error or "")
    out.print(table)
    for path in record.outputs:
        out.print(f"output: {path}")
    for error in record.errors:
        out.print(f"[red]error[/]: {error}")
    return 0 if record.state != "failed" else 1


def cmd_jobs(args: argparse.Namespace) -> int:
    records = _farm().store.list(state=args.state, kind=args.kind, offset=args.offset, limit=args.limit)
    if args.json:
        print(json.dumps([r.public() for r in records]))
        return 0
    table = Table(title="jobs")
    for column in ("id", "kind", "state", "progress", "created", "outputs / errors"):
        table.add_column(column)
    for r in records:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.created_at))
        table.add_row(r.id, r.kind, r.state, f"{r.progress:.1f}%", created, "; ".join(r.outputs or r.errors))
    out.print(table)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from orchestrator import jobs
    from orchestrator.store import JobNotFound

    try:
        record = jobs.cancel(_farm(), args.job)
    except JobNotFound as exc:
        raise Refused(str(exc)) from None
    out.print(f"job {record.id}: {record.state}")
    return 0 if record.state == "cancelled" else 1


def cmd_retry(args: argparse.Namespace) -> int:
    from orchestrator import jobs

    try:
        record = jobs.retry(_farm(), args.job)
    except jobs.SubmitRefused as exc:
        raise Refused(str(exc)) from None
    out.print(f"job {record.id}: {record.state} again ({sum(t.state == 'pending' for t in record.tasks)} task(s))")
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    from orchestrator.nodes import describe_age

    nodes = _farm().nodes.all()
    if args.json:
        print(json.dumps(nodes))
        return 0
    table = Table(title="nodes")
    for column in ("name", "state", "roles", "tags", "os", "resolve", "bridge", "current task", "version"):
        table.add_column(column)
    for n in nodes:
        resolve = n.get("resolve") or {}
        product = resolve.get("error") or f"{resolve.get('product', '-')} {resolve.get('version', '')}".strip()
        version = f"[red]{n.get('version_key')} (mismatch)[/]" if n["version_mismatch"] else str(n.get("version_key"))
        roles, tags = ",".join(n.get("roles", [])), ",".join(n.get("tags", []))
        task = n.get("current_task") or "-"
        table.add_row(
            n["name"], describe_age(n), roles, tags, n.get("os", "-"), product, n.get("bridge", "-"), task, version
        )
    out.print(table)
    return 0


def cmd_mcp(args: argparse.Namespace) -> int:
    from mcp_server.run import Refused as McpRefused
    from mcp_server.run import parse_bind, serve_http, serve_stdio

    farm = _farm()
    try:
        if args.http:
            host, port = parse_bind(args.http)
            err.print(f"resolve-farm MCP server on http://{host}:{port}/mcp")
            serve_http(farm, host, port)
        else:
            serve_stdio(farm)
    except McpRefused as exc:
        raise Refused(str(exc)) from None
    return 0


def cmd_flower(args: argparse.Namespace) -> int:
    import subprocess

    from orchestrator.watch import Exposed, flower_command

    try:
        cmd, env = flower_command(_settings(), args.address, args.port)
    except Exposed as exc:
        raise Refused(str(exc)) from None
    err.print(f"Flower: http://{args.address}:{args.port}")
    return subprocess.call(cmd, env=env)


def cmd_metrics(args: argparse.Namespace) -> int:
    from orchestrator.metrics import serve

    serve(_farm(), args.host, args.port)
    err.print(f"metrics: http://{args.host}:{args.port}/metrics")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
        signal.pause()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestrator.demo import run_demo

    return run_demo(args.nodes, args.timeline, compare=not args.no_compare)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="resolve-farm", description="A render and edit farm for DaVinci Resolve.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="diagnose this host's bridge to Resolve")
    p.add_argument("--bridge", choices=BRIDGE_MODES, default=os.environ.get("RESOLVE_FARM_BRIDGE", "auto"))
    p.add_argument("--host", help="a Resolve on another machine (network scripting)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("up", help="run a local farm: embedded Redis, simulated nodes, a post worker")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--bridge", choices=BRIDGE_MODES, default="sim")
    p.add_argument("--flower-port", type=int, default=5555)
    p.add_argument("--metrics-port", type=int, default=9808)
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("worker", help="run this host's worker")
    p.add_argument("--name", help="node name (default: RESOLVE_FARM_NODE_NAME or the host name)")
    p.add_argument("--tags", help="comma-separated capabilities, e.g. studio,gpu")
    p.add_argument("--bridge", choices=BRIDGE_MODES, default=os.environ.get("RESOLVE_FARM_BRIDGE", "auto"))
    p.add_argument("--queues", help="comma-separated queues (default: from name, tags and roles)")
    p.add_argument("--post", action="store_true", help="also stitch (the post queue)")
    p.add_argument("--no-resolve", action="store_true", help="take no Resolve tasks (a post-only worker)")
    p.add_argument("--concurrency", type=int, help="processes (default 1 for Resolve workers)")
    p.add_argument("--loglevel", default="INFO")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("render", help="submit a render")
    p.add_argument("project")
    p.add_argument("timeline")
    p.add_argument("--format", help="format key: mov, mxf_op1a, mp4 (default mov)")
    p.add_argument("--codec", help="codec key: ProRes422HQ, DNxHRHQ, H264 (default ProRes422HQ)")
    p.add_argument("--preset", help="a render preset instead of format/codec")
    p.add_argument("--start", type=int, help="first frame (timeline frame number)")
    p.add_argument("--end", type=int, help="last frame, included")
    p.add_argument("--output-dir", help="inside a storage root (default: the first root)")
    p.add_argument("--name", help="output file name without extension (default: <project>_<timeline>)")
    p.add_argument("--split", help="auto, none or a number of segments")
    p.add_argument("--no-audio", action="store_true")
    p.add_argument("--priority", type=int, help="0 (most urgent) .. 9")
    p.add_argument("--node", help="run only on this node")
    p.add_argument("--tag", action="append", help="run only on nodes with this tag (repeatable)")
    p.add_argument("--database", help="a PostgreSQL project database every host can reach")
    p.add_argument("--drp", help="a .drp on shared storage to import the project from")
    p.add_argument("--setting", action="append", help="extra render setting KEY=VALUE (repeatable)")
    p.add_argument("--max-attempts", type=int)
    p.add_argument("--wait", action="store_true", help="follow the job to its end")
    p.add_argument("--json", action="store_true", help="stdout holds only the job record as JSON")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("edit", help="submit a batch edit from a JSON or YAML file")
    p.add_argument("file")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--wait", action="store_true")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_edit)

    p = sub.add_parser("status", help="one job")
    p.add_argument("job")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("jobs", help="list jobs, newest first")
    p.add_argument("--state", choices=("queued", "running", "stitching", "succeeded", "failed", "cancelled"))
    p.add_argument("--kind", choices=("render", "edit"))
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--offset", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)

    p = sub.add_parser("cancel", help="cancel a job")
    p.add_argument("job")
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("retry", help="run again what failed in a job")
    p.add_argument("job")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("nodes", help="the farm's nodes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_nodes)

    p = sub.add_parser("flower", help="Flower for the farm (basic auth from RESOLVE_FARM_FLOWER_USER/PASSWORD)")
    p.add_argument("--address", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5555)
    p.set_defaults(func=cmd_flower)

    p = sub.add_parser("metrics", help="serve Prometheus metrics (resolve_farm_*)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=9808)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("mcp", help="serve the farm to MCP clients (stdio, or streamable HTTP with --http)")
    p.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP here (tokens: RESOLVE_FARM_MCP_TOKENS)")
    p.set_defaults(func=cmd_mcp)

    p = sub.add_parser("demo", help="start a local farm, render the demo timeline across it, verify, stop")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--timeline", default="Main")
    p.add_argument("--no-compare", action="store_true", help="skip the one-node reference render")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from orchestrator.redis_server import RedisNotRunning

    try:
        return int(args.func(args))
    except (Refused, RedisNotRunning) as exc:
        if getattr(args, "json", False):
            print(json.dumps({"error": str(exc)}))
        err.print(f"[red]refused[/]: {exc}")
        return 2
    except redis.exceptions.ConnectionError as exc:
        message = f"the farm's Redis is not reachable ({exc}): is the farm up, and RESOLVE_FARM_BROKER_URL right?"
        if getattr(args, "json", False):
            print(json.dumps({"error": message}))
        err.print(f"[red]error[/]: {message}")
        return 3
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
