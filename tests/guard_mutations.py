"""Rerun the audit of the guards: each guard removed alone, in a scratch copy of the checkout, and the tests that
name it run; each must fail. Not a test (pytest does not collect it) and not part of CI: an audit, in minutes.

Usage: python tests/guard_mutations.py [--only NAME[,NAME...]] [--list]

Each mutation is the smallest patch that takes one guard away (an exact text replaced once) and the pytest
arguments whose run must then fail. A patch that no longer applies is reported as such: the code moved, so the
mutation must be written again. Prints one line per guard and exits non-zero when any survived or did not apply.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    """One guard taken away: in `file`, `old` (found exactly once) becomes `new`; then `tests` must fail."""

    name: str
    file: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation(
        "stale render renames nothing (Superseded)",
        "tasks/render.py",
        "if runtime.farm().locks.holder(run.job_id, piece.name) != run.owner:",
        "if False:",
        ("tests/test_farm_faults.py", "-k", "renames_nothing"),
    ),
    Mutation(
        "an edit's lost worker counts an attempt",
        "orchestrator/lifecycle.py",
        'if piece.state == "running" and piece.node:',
        'if piece.state == "running" and piece.node and piece.kind != "edit":',
        ("tests/test_farm_edit_faults.py", "-k", "dies"),
    ),
    Mutation(
        "edit inputs are no existence oracle",
        "orchestrator/kinds/checks.py",
        'what="the media roots")\n    except PathRefused as exc:\n        raise SubmitRefused(field, str(exc).split(": ", 1)[-1])',
        'what="the media roots")\n    except PathRefused as exc:\n        raise SubmitRefused(field, str(exc).split(": ", 1)[-1]'
        ' + " (found)" * Path(value).exists())',
        ("tests/test_farm.py", "-k", "says_the_same"),
    ),
    Mutation(
        "a proxy link is read back",
        "bridge/ops/media.py",
        'return "" if shown == path else f"Resolve shows another proxy: {shown!r}"',
        'return ""',
        ("tests/test_sim_proxies.py", "-k", "another_file"),
    ),
    Mutation(
        "a proxy keeps its source's sound",
        "tasks/transcode.py",
        "if source.audio and not made.audio:",
        "if False:",
        ("tests/test_proxies.py", "-k", "sound"),
    ),
    Mutation(
        "a plain render after a preset has its sound",
        "bridge/ops/render.py",
        '        "ExportAudio": True,\n',
        "",
        ("tests/test_session.py", "-k", "known_state"),
    ),
    Mutation(
        "a piece's speed turns with a slow-down",
        "tasks/progress.py",
        "turn = self._turn(window or first)",
        "turn = None",
        ("tests/test_units.py", "-k", "slow_down_is_seen"),
    ),
    Mutation(
        "a tail copy and its original move the frames once",
        "tasks/imageseq.py",
        'if ranged.state == "done":  # a piece and its copy',
        "if False:  # a piece and its copy",
        ("tests/test_farm_imageseq.py", "-k", "move_the_frames_once"),
    ),
    Mutation(
        "a frozen Resolve is marked by the heartbeat's ping",
        "tasks/worker.py",
        'resolve, problem = {"error": str(exc)}, f"{NOT_ANSWERING}: {exc.message}"',
        'resolve, problem = {"error": str(exc)}, None',
        ("tests/test_farm_hang.py", "-k", "stops_answering and sim"),
    ),
    Mutation(
        "a tail copy that settles last clears the work folder",
        "tasks/render.py",
        "        # A tail copy settling after the stitch (done second, stopped, lost) is what succeeds the job then.\n"
        "        clear_work(record)",
        "        return None",
        ("tests/test_farm_pull.py", "-k", "first_done_counts and original"),
    ),
    Mutation(
        "the simulator takes a render once the last job is Complete",
        "bridge/sim/renderer.py",
        'return alive and any(job.status.state in ("Ready", "Rendering") for job in self._jobs)',
        "return alive",
        ("tests/test_sim_render.py", "-k", "frees_resolve"),
    ),
    Mutation(
        "a hang on the last attempt marks the host",
        "orchestrator/lifecycle.py",
        "        gave_up.unhealthy = unhealthy\n",
        "",
        ("tests/test_farm_hang.py", "-k", "last_attempt"),
    ),
    Mutation(
        "wait_for_job reports progress while the job runs",
        "mcp_server/server.py",
        "            if mark != last:",
        "            if mark != last and record.finished:",
        ("tests/test_mcp.py", "-k", "wait_with_progress"),
    ),
    Mutation(
        "tasks/update is bound",
        "mcp_server/tasks_ext.py",
        '            MethodBinding("tasks/update", UpdateParams, self.update, protocol_versions=versions),\n',
        "",
        ("tests/test_mcp_tasks.py", "-k", "update"),
    ),
    Mutation(
        "tasks/cancel answers an empty ack",
        "mcp_server/tasks_ext.py",
        "            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None\n        return dict(ACK)\n",
        "            raise MCPError(code=INTERNAL_ERROR, message=str(exc)) from None\n"
        "        return task_of(record, self.calls.farm.settings.job_retention)\n",
        ("tests/test_mcp_tasks.py", "-k", "cancel_over_http"),
    ),
    Mutation(
        "--conformance is refused off loopback",
        "mcp_server/run.py",
        "    if conformance and not loopback(host):",
        "    if False:",
        ("tests/test_mcp.py", "-k", "conformance_fixtures"),
    ),
    Mutation(
        "an unknown prompt is invalid params",
        "mcp_server/server.py",
        "        if name not in {prompt.name for prompt in await self.list_prompts()}:",
        "        if False:",
        ("tests/test_mcp_tasks.py", "-k", "advertised"),
    ),
    Mutation(
        "--conformance is refused on stdio",
        "mcp_server/command.py",
        "    elif args.conformance:",
        "    elif False:",
        ("tests/test_mcp.py", "-k", "conformance_fixtures"),
    ),
    Mutation(
        "an unsteady farm's first round keeps a reserve",
        "orchestrator/pull/rules.py",
        "if pool.next == pool.start and sizing.spread >= UNSTEADY and one_round(pool, sizing.speeds, [*nodes, node]):",
        "if False:",
        ("tests/test_pulled.py", "-k", "unsteady"),
    ),
    Mutation(
        "only a one-round job keeps a reserve",
        "orchestrator/pull/rules.py",
        "and one_round(pool, sizing.speeds, [*nodes, node]):",
        ":",
        ("tests/test_pulled.py", "-k", "unsteady"),
    ),
    Mutation(
        "the first node back opens the reserve",
        "orchestrator/pull/rules.py",
        'elif any(t.kind == "segment" and t.node == node for t in record.tasks if t is not piece):',
        "elif False:",
        ("tests/test_pulled.py", "-k", "unsteady"),
    ),
    Mutation(
        "a claim knows how unsteady the nodes have been",
        "orchestrator/pull/dispatch.py",
        'spread = max((float(f["spread"]) for f in remembered.values() if f.get("spread") is not None), default=0.0)',
        "spread = 0.0",
        ("tests/test_pulled.py", "-k", "unsteady_the_nodes"),
    ),
    Mutation(
        "a taken output name is refused at submit",
        "orchestrator/kinds/render.py",
        "if not spec.overwrite:  # (after the confinement check",
        "if False:  # (after the confinement check",
        ("tests/test_outputs.py", "-k", "refused_at_submit"),
    ),
    Mutation(
        "the stitch never replaces a file of another's",
        "orchestrator/outputs.py",
        "if overwrite or _placed_by(client, job_id, final):",
        "if True:",
        ("tests/test_outputs.py", "-k", "appears_before_the_stitch"),
    ),
    Mutation(
        "a job's stitch replaces its own file, not a version of it",
        "orchestrator/outputs.py",
        "if overwrite or _placed_by(client, job_id, final):",
        "if overwrite:",
        ("tests/test_outputs.py", "-k", "placed_under_its_name"),
    ),
    Mutation(
        "a stale stitch copy takes back the version it wrote",
        "tasks/stitch.py",
        'if result.output and (record.state != "succeeded" or result.output not in record.outputs):',
        'if result.output and record.state != "succeeded":',
        ("tests/test_units.py", "-k", "stale_stitch"),
    ),
    Mutation(
        "an agent whose client can answer is asked about a taken name",
        "mcp_server/ask.py",
        'if can_ask(ctx) == "result":\n                return question(outcome)',
        "if False:\n                return question(outcome)",
        ("tests/test_mcp.py", "-k", "taken_output_name"),
    ),
    Mutation(
        "a hold job stops at a cancel",
        "tasks/hold.py",
        "if reporter.cancel.wait(min(TICK, seconds - elapsed)):",
        "if time.sleep(min(TICK, seconds - elapsed)):",
        ("tests/test_job_kinds.py", "-k", "hold"),
    ),
    Mutation(
        "a piece that asks waits for its answers",
        "orchestrator/lifecycle.py",
        "    if piece.kind != ASK:\n        return False",
        "    if True:\n        return False",
        ("tests/test_lifecycle.py", "-k", "asks"),
    ),
    Mutation(
        "an answer other than yes cancels the job",
        "orchestrator/lifecycle.py",
        "        if refused:\n",
        "        if False:\n",
        ("tests/test_lifecycle.py", "-k", "other_than_yes"),
    ),
    Mutation(
        "answer_job refuses a key the job does not ask",
        "orchestrator/jobs.py",
        "if unknown := sorted(set(answers) - set(asked)):",
        "if unknown := []:",
        ("tests/test_mcp.py", "-k", "answered_with_answer_job"),
    ),
    Mutation(
        "an edit over its threshold asks before it changes anything",
        "orchestrator/kinds/edit.py",
        "if not over or changes <= over:",
        "if True:",
        ("tests/test_farm.py", "-k", "confirm_threshold"),
    ),
    Mutation(
        "the counting pass before a confirmation changes nothing",
        "tasks/edit.py",
        "dry_run = spec.dry_run or counting",
        "dry_run = spec.dry_run",
        ("tests/test_farm.py", "-k", "confirm_threshold"),
    ),
    Mutation(
        "a wait for a job that asks stops there (jobs.wait asks=True)",
        "orchestrator/jobs.py",
        'if record.settled or (asks and record.state == "input_required"):',
        "if record.settled:",
        ("tests/test_job_kinds.py", "-k", "waits_in_redis", "-o", "timeout=60"),
    ),
    Mutation(
        "wait_for_job returns at once on a job that asks",
        "mcp_server/server.py",
        "records = jobs.follow(farm, job_id, timeout=timeout_seconds, interval=0.25, asks=True)",
        "records = jobs.follow(farm, job_id, timeout=timeout_seconds, interval=0.25, asks=False)",
        ("tests/test_mcp.py", "-k", "large_batch_edit", "-o", "timeout=60"),
    ),
    Mutation(
        "the CLI's --wait stops where a job asks",
        "orchestrator/cli/views.py",
        "for record in jobs.follow(farm, job_id, asks=True):",
        "for record in jobs.follow(farm, job_id):",
        ("tests/test_farm.py", "-k", "confirm_threshold"),
    ),
    Mutation(
        "a dead helper's pipes are closed",
        "bridge/fallback.py",
        "            for stream in (self._proc.stdin, self._proc.stdout):\n                if stream:",
        "            for stream in (self._proc.stdin, self._proc.stdout):\n                if False:",
        ("tests/test_fallback.py", "-k", "dead_helper"),
    ),
    Mutation(
        "a job's messages carry its trace (headers)",
        "orchestrator/engine.py",
        "                headers=dict(record.trace),  # a traced sender replaces it with its own span's context\n",
        "",
        ("tests/test_mcp.py", "-k", "whoever"),
    ),
    Mutation(
        "a job's messages are sent in its trace context",
        "orchestrator/engine.py",
        "with telemetry.within(record.trace):",
        "if True:",
        ("tests/test_mcp.py", "-k", "whoever"),
    ),
    Mutation(
        "a piece's sends nest under it (same-trace parent kept)",
        "orchestrator/telemetry.py",
        "if not headers or (current.is_valid and trace.format_trace_id(current.trace_id) == trace_id(headers)):",
        "if not headers:",
        ("tests/test_mcp.py", "-k", "one_trace"),
    ),
    Mutation(
        "the record keeps its trace context",
        "orchestrator/jobs.py",
        " trace=telemetry.carrier(),",
        "",
        ("tests/test_mcp.py", "-k", "one_trace"),
    ),
    Mutation(
        "prefork pool processes trace",
        "orchestrator/telemetry.py",
        'worker_process_init.connect(lambda **_: configure("resolve-farm-worker", instance), weak=False)',
        "pass",
        ("tests/test_mcp.py", "-k", "one_trace"),
    ),
    Mutation(
        "a threads-pool worker traces in its own process",
        "orchestrator/telemetry.py",
        'if not prefork:\n        configure("resolve-farm-worker", instance)\n',
        "if not prefork:\n",
        ("tests/test_farm_threads.py", "-k", "frame_exactly"),
    ),
    Mutation(
        "Resolve calls get spans",
        "bridge/session.py",
        "if op in UNTRACED:",
        "if True:",
        ("tests/test_mcp.py", "-k", "one_trace"),
    ),
    Mutation(
        "status shows the trace id",
        "orchestrator/cli/jobs.py",
        "if trace_id := record.trace_id:",
        "if False:",
        ("tests/test_mcp.py", "-k", "one_trace"),
    ),
    Mutation(
        "an exporter the farm lacks is refused",
        "orchestrator/telemetry.py",
        "if name not in EXPORTERS:",
        "if False:",
        ("tests/test_units.py", "-k", "tracing"),
    ),
    Mutation(
        "a unique start of an id names its job",
        "orchestrator/store.py",
        'started = sorted(job for job, _ in self.redis.zscan_iter(JOBS, match=f"{ref}*"))',
        "started: builtins.list[str] = []",
        ("tests/test_farm.py", "-k", "prefixes"),
    ),
    Mutation(
        "a start of several ids is refused with them",
        "orchestrator/store.py",
        "if len(kept) > 1:",
        "if False:",
        ("tests/test_farm.py", "-k", "prefixes"),
    ),
    Mutation(
        "an ambiguous id over MCP is invalid params",
        "mcp_server/farm_away.py",
        'raise MCPError(INVALID_PARAMS, str(exc), {"candidates": exc.candidates}) from None',
        "raise ToolError(str(exc)) from None",
        ("tests/test_farm.py", "-k", "prefixes"),
    ),
    Mutation(
        "shown ids tell jobs apart",
        "orchestrator/cli/jobs.py",
        "r.id if args.wide else shown_ids[r.id]",
        "r.id if args.wide else r.id[:SHORT_ID]",
        ("tests/test_farm.py", "-k", "prefixes"),
    ),
    Mutation(
        "nodes fit 80 columns",
        "orchestrator/cli/jobs.py",
        'product = product if args.wide else product.removeprefix("DaVinci Resolve ").rsplit(".", 1)[0]',
        "pass",
        ("tests/test_farm.py", "-k", "prefixes"),
    ),
    Mutation(
        "--set refuses a field the kind lacks",
        "orchestrator/cli/jobs.py",
        "if part not in fields:",
        "if False:",
        ("tests/test_job_kinds.py", "-k", "any_kind"),
    ),
    Mutation(
        "jobs --kind refuses an unknown kind",
        "orchestrator/cli/jobs.py",
        "if args.kind is not None and args.kind not in kinds.names():",
        "if False:",
        ("tests/test_job_kinds.py", "-k", "any_kind"),
    ),
    Mutation(
        "list_jobs refuses an unknown kind",
        "mcp_server/server.py",
        "await _call(kinds.get, kind)  # an unknown kind is refused",
        "pass  # an unknown kind is refused",
        ("tests/test_job_kinds.py", "-k", "any_kind"),
    ),
    Mutation(
        "a kind's face gets an MCP tool",
        "mcp_server/faces.py",
        "if face is None or face.tool in submit_tools:",
        "if True:",
        ("tests/test_job_kinds.py", "-k", "face"),
    ),
    Mutation(
        "a kind's face gets a CLI command",
        "orchestrator/cli/faces.py",
        "if face is None or face.command in sub.choices:",
        "if True:",
        ("tests/test_job_kinds.py", "-k", "face"),
    ),
    Mutation(
        "a face tool's schema is its arguments' (descriptions, constraints)",
        "mcp_server/faces.py",
        "annotation=Annotated[info.annotation, info],",
        "annotation=info.annotation,",
        ("tests/test_job_kinds.py", "-k", "face"),
    ),
    Mutation(
        "a face command refuses bad values naming the option",
        "orchestrator/cli/faces.py",
        "raise Refused(_named(face, str(where[0]) if where else face.command), validation_errors(exc)) from None",
        "raise",
        ("tests/test_job_kinds.py", "-k", "face"),
    ),
    Mutation(
        "a server serves its own farm's kinds only",
        "orchestrator/kinds/__init__.py",
        'if type(kind).__module__.startswith(f"{__name__}.") or type(kind).__module__ in modules]',
        "]",
        ("tests/test_job_kinds.py", "tests/test_mcp.py", "-k", "face or tools_are_described", "-p", "no:randomly"),
    ),
    Mutation(
        "a submit's next step comes from its kind",
        "mcp_server/views.py",
        'if kinds.get(record.kind).followed and not answer["finished"]:',
        'if record.kind in ("render", "proxies") and not answer["finished"]:',
        ("tests/test_job_kinds.py", "-k", "face"),
    ),
    Mutation(
        "a face's spec refusal names the command's option",
        "orchestrator/cli/faces.py",
        "raise Refused(_named(face, exc.field), exc.reason) from None",
        "raise",
        ("tests/test_job_kinds.py", "-k", "own_kinds"),
    ),
    Mutation(
        "a render's start and end frames go together",
        "orchestrator/kinds/render.py",
        "if (self.start_frame is None) != (self.end_frame is None):",
        "if False:",
        ("tests/test_job_kinds.py", "tests/test_mcp.py", "-k", "own_kinds or refusals_are_tool_errors"),
    ),
    Mutation(
        "an edit file's field the face lacks is refused",
        "orchestrator/cli/faces.py",
        "if unknown := sorted(set(given) - set(fields)):",
        "if unknown := []:",
        ("tests/test_job_kinds.py", "-k", "own_kinds"),
    ),
    Mutation(
        "a KEY=VALUE option wants the =",
        "orchestrator/cli/common.py",
        "if not sep or not key:",
        "if False:",
        ("tests/test_job_kinds.py", "-k", "own_kinds or any_kind"),
    ),
    Mutation(
        "a flag on by default is turned off by --no-",
        "orchestrator/cli/faces.py",
        "if info.default is True:  # on unless turned off",
        "if False:  # on unless turned off",
        ("tests/test_job_kinds.py", "-k", "own_kinds"),
    ),
    Mutation(
        "a kind not followed answers with its end within wait_seconds",
        "mcp_server/faces.py",
        'if kind.followed or answer_at_once() or record.state == "waiting":',
        "if True:",
        ("tests/test_mcp.py", "-k", "batch_edit"),
    ),
    Mutation(
        "only a kind not followed takes wait_seconds",
        "mcp_server/faces.py",
        "    if not kind.followed:\n",
        "    if True:\n",
        ("tests/test_job_kinds.py", "-k", "own_kinds"),
    ),
    Mutation(
        "a face tool asks about a taken output name",
        "mcp_server/faces.py",
        "except OutputExists as exc:  # asked about (`ask`); the other refusals are tool errors (`FarmCalls.run`)\n"
        "            return exc",
        "except OutputExists as exc:  # asked about (`ask`); the other refusals are tool errors (`FarmCalls.run`)\n"
        "            raise",
        ("tests/test_mcp.py", "-k", "taken_output_name"),
    ),
    Mutation(
        "a face refuses argument names every submit tool or command takes",
        "orchestrator/kinds/face.py",
        "if name in RESERVED:",
        "if False:",
        ("tests/test_units.py", "-k", "face_refuses", "-n", "0"),
    ),
    Mutation(
        "a plugin that does not import is refused naming the setting",
        "orchestrator/kinds/__init__.py",
        "        except ImportError as exc:\n",
        "        except KeyError as exc:\n",
        ("tests/test_units.py", "-k", "plugin_that", "-n", "0"),
    ),
    Mutation(
        "the farm's own commands stay when the plugins do not load",
        "orchestrator/cli/faces.py",
        "        plugins = []  # the farm's own kinds still",
        "        return []  # the farm's own kinds still",
        ("tests/test_units.py", "-k", "plugin_that", "-n", "0"),
    ),
]


def run(mutation: Mutation, scratch: Path) -> str:
    """'caught', 'SURVIVED' or 'does not apply': the verdict on one mutation, in `scratch` (restored after)."""
    target = scratch / mutation.file
    text = target.read_text()
    if text.count(mutation.old) != 1:
        return f"does not apply ({text.count(mutation.old)} matches of the old text)"
    target.write_text(text.replace(mutation.old, mutation.new))
    try:
        env = {**os.environ, "PYTHONPATH": str(scratch)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-n0", "-p", "no:cacheprovider", *mutation.tests]
        done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    finally:
        target.write_text(text)
    return "caught" if done.returncode == 1 else "SURVIVED" if done.returncode == 0 else f"error ({done.returncode})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="comma-separated parts of guard names")
    parser.add_argument("--list", action="store_true", help="list the guards and their tests, run nothing")
    args = parser.parse_args()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    chosen = [m for m in MUTATIONS if not wanted or any(w in m.name for w in wanted)]
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.file}; pytest {' '.join(m.tests)}")
        return 0
    bad = 0
    with tempfile.TemporaryDirectory(prefix="guards-") as folder:
        scratch = Path(folder) / "checkout"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(scratch)], cwd=ROOT, check=True)
        try:
            # The working tree as it is, uncommitted changes included.
            diff = subprocess.run(["git", "diff", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
            if diff:
                subprocess.run(["git", "apply"], cwd=scratch, input=diff, check=True)
            new = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout  # fmt: skip
            for name in filter(None, new.split("\0")):
                (scratch / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, scratch / name)
            for mutation in chosen:
                began = time.monotonic()
                verdict = run(mutation, scratch)
                bad += verdict != "caught"
                print(f"{verdict:>9}  {mutation.name}  ({time.monotonic() - began:.0f} s: pytest {' '.join(mutation.tests)})",
                      flush=True)  # fmt: skip
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(scratch)], cwd=ROOT, check=False)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
