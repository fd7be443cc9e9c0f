"""How the CLI shows things on the console: reports, progress bars, tables.

Note: results go to stdout, progress and messages to stderr, so `--json` output stays clean.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console

out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def print_doctor(result: dict[str, Any]) -> None:
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
    if worker := result.get("worker"):
        if worker["ok"]:
            line(True, f"worker: {worker['pool']} pool, {worker['bridge']} bridge on {worker['system']}")
        else:
            line(False, f"worker: {worker['error']}")
        for warning in worker["warnings"]:
            out.print(f"  [yellow]warn[/] {warning}")
        for note in worker["notes"]:
            line(None, note)
    for problem in result["problems"]:
        out.print(f"  [yellow]fix[/] {problem['what']}: {problem['fix'] or 'see above'}")
    out.print("[green]usable bridge: yes[/]" if result["ok"] else "[red]usable bridge: no[/]")


def plan_line(record: Any) -> str:
    from orchestrator import kinds

    return kinds.get(record.kind).summary(record)


def waiting_line(record: Any) -> str:
    """'; waiting on JOB, JOB' for a job that waits for other jobs to succeed; else nothing."""
    return f"; waiting on {', '.join(record.waiting_on)}" if record.state == "waiting" else ""


def follow(farm: Any, job_id: str) -> Any:
    """Wait for a job with a progress bar per task (node names) and one overall, on stderr, until it finishes or
    asks something (`input_required`: nothing moves until `resolve-farm answer`)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from orchestrator import jobs

    bars: dict[str, Any] = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>5.1f}%"),
                  TimeRemainingColumn(), console=err, transient=False) as progress:  # fmt: skip
        overall = progress.add_task("job", total=100)

        record = None
        for record in jobs.follow(farm, job_id, asks=True):  # (a job that asks waits for `answer`)
            progress.update(overall, completed=record.progress, description=f"job {record.id[:8]} {record.state}")
            for task in record.tasks:
                if (task.kind in ("stitch", "edit") and task.state == "pending") or task.params.get("open"):
                    continue  # not started, or an open piece of a pulled render: no frames of its own yet
                label = f"  {task.name} on {task.node or '-'} [{task.state}]"
                total = task.frames_total or 1
                done = task.frames_done if task.frames_total else (1 if task.state == "done" else 0)
                if task.name not in bars:
                    bars[task.name] = progress.add_task(label, total=total)
                progress.update(bars[task.name], completed=done, total=total, description=label)
        return record


def stitch_line(record: Any) -> str | None:
    """'stitch: copy' or 'stitch: reencode (why)' for a render whose stitch ran, and what it was written as when
    its name was taken meanwhile; else None."""
    from orchestrator.kinds.render import stitched

    joined = stitched(record) if record.kind == "render" else None
    if joined is None:
        return None
    line = f"stitch: {joined['method']}" + (f" ({joined['reason']})" if "reason" in joined else "")
    return line + (f"; the name was taken: {joined['renamed']}" if "renamed" in joined else "")


def print_result(record: Any) -> None:
    if record.state == "succeeded":
        for path in record.outputs:
            out.print(f"[green]succeeded[/]: {path}")
        if line := stitch_line(record):
            out.print(line)
        if not record.outputs:
            out.print(f"[green]succeeded[/]: {plan_line(record)}")
        for task in record.tasks:
            print_items(task.name, task.results)
    elif record.state == "input_required":
        for key, question in record.asking().items():
            out.print(f"[yellow]asks[/] {key}: {question} (answer: resolve-farm answer {record.id} {key} yes|no)")
    else:
        out.print(f"[red]{record.state}[/]: " + ("; ".join(record.errors) or "no reason recorded"))


def print_items(target: str, results: list[dict[str, Any]]) -> None:
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
