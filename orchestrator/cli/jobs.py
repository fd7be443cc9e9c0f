"""Commands on jobs and nodes: submit a job of any kind from a spec, follow, list, cancel, retry; the nodes.

The commands that submit one kind (`render`, `edit`, `proxies`, a plugin's) are made from its face:
`orchestrator.cli.faces`.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich import box
from rich.table import Table

from orchestrator.cli.common import connect_farm, key_value
from orchestrator.cli.views import err, follow, out, plan_line, print_result, stitch_line, waiting_line
from orchestrator.refusals import Refused, validation_errors
from orchestrator.store import SHORT_ID, short_ids


def submit_spec(kind: str, spec: dict[str, Any], after: list[str] | None, farm: Any = None) -> Any:
    from orchestrator import jobs

    farm = farm or connect_farm()
    try:
        record = jobs.submit(farm, kind, spec, after or ())
    except ValidationError as exc:
        raise Refused("spec", validation_errors(exc)) from None
    return farm, record


def cmd_submit(args: argparse.Namespace) -> int:
    """A job of any registered kind, plugins included: its spec from a file (JSON or YAML; `-`: stdin) with
    `--set` fields over it (dotted keys reach into nested fields; values are JSON where they parse as JSON)."""
    from orchestrator import kinds

    farm = connect_farm()  # (loads the plugins: their kinds are registered from here on)
    kind = kinds.get(args.kind)
    spec = read_spec(args.spec) if args.spec else {}
    for item in args.set or ():
        _set_field(kind.name, kind.spec_model, spec, item)
    farm, record = submit_spec(kind.name, spec, args.after, farm)
    return after_submit(farm, record, args)


def read_spec(source: str, field: str = "--spec") -> dict[str, Any]:
    """The object of fields in a JSON or YAML file (`-`: stdin); what is not one is refused as `field`."""
    import sys

    import yaml

    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    try:
        spec = yaml.safe_load(text)  # (JSON is YAML too)
    except yaml.YAMLError as exc:
        raise Refused(field, f"{source}: neither JSON nor YAML ({exc})") from None
    if not isinstance(spec, dict):
        raise Refused(field, f"{source}: want an object of fields")
    return spec


def _set_field(kind: str, model: Any, spec: dict[str, Any], item: str) -> None:
    """Put `KEY=VALUE` into `spec`; a key the kind's spec does not have (at any depth it can tell) is refused."""
    key, value = key_value(item, "--set")
    parts = key.split(".")
    for part in parts:
        fields = _fields(model)
        if fields is None:  # a free-form part (a dict, a list of settings): any key
            break
        if part not in fields:
            raise Refused(f"--set {key}", f"{kind} specs have no field {part!r} (fields: {', '.join(sorted(fields))})")
        model = fields[part]
    node = spec
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise Refused(f"--set {key}", f"{part!r} is set to a value, not an object of fields")
    node[parts[-1]] = value


def _fields(model: Any) -> dict[str, Any] | None:
    """A pydantic model's fields by name and alias -> their types; None for a type that is no model."""
    from typing import get_args

    from pydantic import BaseModel

    models = [t for t in (model, *get_args(model)) if isinstance(t, type) and issubclass(t, BaseModel)]
    if not models:
        return None
    found: dict[str, Any] = {}
    for name, info in models[0].model_fields.items():
        found[name] = info.annotation
        if isinstance(info.alias, str):
            found[info.alias] = info.annotation
    return found


def after_submit(farm: Any, record: Any, args: argparse.Namespace) -> int:
    if not args.wait:
        if args.json:
            print(json.dumps(record.public()))
        else:
            out.print(f"job {record.id} {record.state}: {plan_line(record)}{waiting_line(record)}")
        return 0
    if not args.json:
        err.print(f"job {record.id}: {plan_line(record)}")
    final = follow(farm, record.id)
    if args.json:
        print(json.dumps(final.public()))
    else:
        print_result(final)
    return 0 if final.state == "succeeded" else 3 if final.state == "input_required" else 1


def cmd_status(args: argparse.Namespace) -> int:
    from orchestrator import jobs

    record = jobs.get(connect_farm(), args.job)
    if args.json:
        print(json.dumps(record.public()))
        return 0 if record.state != "failed" else 1
    eta = f", about {describe_eta(record.eta_seconds)} left" if record.eta_seconds and not record.finished else ""
    table = Table(title=f"job {record.id} ({record.kind}): {record.state}, {record.progress:.1f}%{eta}")
    for column in ("task", "node", "state", "attempts", "frames", "error"):
        table.add_column(column)
    for t in record.tasks:
        frames = f"{t.frames_done}/{t.frames_total}" if t.frames_total else "-"
        table.add_row(t.name, t.node or "-", t.state, str(t.attempts), frames, t.error or "")
    out.print(table)
    if seconds := record.node_seconds():  # what fair share between jobs of one priority counts
        out.print(f"node time: {seconds:.1f} s on Resolve hosts")
    if record.after:
        out.print(f"runs after: {', '.join(record.after)}{waiting_line(record)}")
    for path in record.outputs:
        out.print(f"output: {path}")
    if line := stitch_line(record):
        out.print(line)
    for key, question in record.asking().items():
        out.print(f"asks {key}: {question} (answer: resolve-farm answer {record.id} {key} yes|no)")
    if trace_id := record.trace_id:  # where its spans are, in the tracing backend OTEL_* sends them to
        out.print(f"trace: {trace_id}")
    for error in record.errors:
        out.print(f"[red]error[/]: {error}")
    return 0 if record.state != "failed" else 1


def describe_eta(seconds: float | None) -> str:
    """ "about 4 min" as people read a time left."""
    if seconds is None:
        return "-"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cmd_jobs(args: argparse.Namespace) -> int:
    from orchestrator import kinds

    farm = connect_farm()
    if args.kind is not None and args.kind not in kinds.names():
        raise Refused("--kind", f"no job kind {args.kind!r} (kinds: {', '.join(kinds.names())})")
    records = farm.store.list(state=args.state, kind=args.kind, offset=args.offset, limit=args.limit)
    if args.json:
        print(json.dumps([r.public() for r in records]))
        return 0
    caption = None if args.wide else "ids and outputs shortened (--wide): any unique start of an id names its job"
    table = Table(title="jobs", box=box.SIMPLE_HEAD, caption=caption)
    for column in ("id", "kind", "state", "done", "left", "created"):
        table.add_column(column, no_wrap=True)  # whole, so each can be copied
    table.add_column("outputs / errors", overflow="fold")
    shown_ids = short_ids([r.id for r in records])
    for r in records:
        created = time.strftime("%Y-%m-%d %H:%M:%S" if args.wide else "%m-%d %H:%M", time.localtime(r.created_at))
        left = describe_eta(r.eta_seconds) if r.eta_seconds and not r.finished else "-"
        outputs = r.outputs if args.wide else [Path(o).name for o in r.outputs]
        shown = "; ".join(outputs or r.errors) or waiting_line(r).lstrip("; ")
        table.add_row(r.id if args.wide else shown_ids[r.id], r.kind, r.state, f"{r.progress:.0f}%", left, created,
                      shown)  # fmt: skip
    out.print(table)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    from orchestrator import jobs

    record = jobs.cancel(connect_farm(), args.job)
    out.print(f"job {record.id}: {record.state}")
    return 0 if record.state == "cancelled" else 1


def cmd_answer(args: argparse.Namespace) -> int:
    from orchestrator import jobs

    record = jobs.answer_yes_no(connect_farm(), args.job, {args.key: args.answer == "yes"}, field="key")
    out.print(f"job {record.id}: {record.state}" + (f" ({'; '.join(record.errors)})" if record.errors else ""))
    return 0


def cmd_retry(args: argparse.Namespace) -> int:
    from orchestrator import jobs

    record = jobs.retry(connect_farm(), args.job)
    out.print(f"job {record.id}: {record.state} again ({sum(t.state == 'pending' for t in record.tasks)} task(s))")
    return 0


def cmd_nodes(args: argparse.Namespace) -> int:
    from orchestrator.nodes import describe_age

    nodes = connect_farm().nodes.all()
    if args.json:
        print(json.dumps([n.public() for n in nodes]))
        return 0
    wide = ("os", "tags", "bridge", "version") if args.wide else ()
    caption = None if args.wide else "os, tags, bridge, version key: --wide"
    table = Table(title="nodes", box=box.SIMPLE_HEAD, caption=caption)
    for column in ("name", "state", "roles", "resolve", "current task", *wide):
        table.add_column(column, overflow="fold")
    for n in nodes:
        resolve = n.resolve or {}
        product = resolve.get("error") or f"{resolve.get('product', '-')} {resolve.get('version', '')}".strip()
        product = product if args.wide else product.removeprefix("DaVinci Resolve ").rsplit(".", 1)[0]
        job, _, piece = (n.current_task or "-").partition(":")
        task = f"{job if args.wide else job[:SHORT_ID]} {piece}".strip()
        version = f"[red]{n.version_key} (mismatch)[/]" if n.version_mismatch else str(n.version_key)
        extra = (n.os or "-", ",".join(n.tags), n.bridge or "-", version) if args.wide else ()
        state = describe_age(n) if args.wide or n.up else "down"
        if n.version_mismatch and not args.wide:
            state += " [red](version)[/]"
        table.add_row(n.name, state, ",".join(n.roles), product, task, *extra)
    out.print(table)
    return 0


def cmd_log(args: argparse.Namespace) -> int:
    """The lines the workers wrote for a job's pieces: Resolve's status and errors, retries, the stitch's checks."""
    from orchestrator import jobs

    logs = jobs.piece_logs(connect_farm(), args.job, args.piece)
    if args.json:
        print(json.dumps({"job": args.job, "pieces": logs}))
        return 0
    for name, lines in logs.items():
        out.print(f"[bold]{name}[/]" + ("" if lines else " [dim](nothing written)[/]"), highlight=False)
        for line in lines:
            out.print(f"  {line}", markup=False, highlight=False)
    return 0
