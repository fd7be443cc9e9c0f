"""What agents see of jobs and nodes: the record, trimmed to what helps decide the next step."""

from __future__ import annotations

from mcp_server.schemas import JobSummary, JobView, NodeView, StitchView, Submitted, TaskView
from orchestrator import kinds
from orchestrator.kinds.render import stitched
from orchestrator.models import JobRecord, TaskRecord, results_report
from orchestrator.nodes import NodeRecord


def job_view(record: JobRecord) -> JobView:
    """State, percent, frames, ETA, node time had, each segment or target with its node, outputs and errors."""
    done, total = record.frames()
    view: JobView = {
        "id": record.id,
        "kind": record.kind,
        "state": record.state,
        "progress": round(record.progress, 1),
        "frames_done": done,
        "frames_total": total,
        "eta_seconds": record.eta_seconds,
        "node_seconds": round(record.node_seconds(), 1),
        "tasks": [task_view(t) for t in record.tasks],
        "outputs": record.outputs,
        "errors": record.errors,
    }
    _add_after(view, record)
    if asked := record.asking():
        view["asking"] = asked
    if trace_id := record.trace_id:
        view["trace_id"] = trace_id
    joined = stitched(record) if record.kind == "render" else None
    if joined is not None:
        stitch = StitchView(method=joined["method"])
        if "reason" in joined:
            stitch["reason"] = joined["reason"]
        if "renamed" in joined:
            stitch["renamed"] = joined["renamed"]
        view["stitch"] = stitch
    return view


def job_summary(record: JobRecord) -> JobSummary:
    """A job in a listing: what it is, how far it got, what it made or why not, what it waits for."""
    summary: JobSummary = {
        "id": record.id, "kind": record.kind, "state": record.state, "progress": round(record.progress, 1),
        "created_at": record.created_at, "outputs": record.outputs, "errors": record.errors,
    }  # fmt: skip
    _add_after(summary, record)
    return summary


def _add_after(view: JobView | JobSummary, record: JobRecord) -> None:
    """The jobs it runs after, and those it still waits for while `waiting` (left out when there are none)."""
    if record.after:
        view["after"] = record.after
    if record.state == "waiting":
        view["waiting_on"] = record.waiting_on


def submitted_view(record: JobRecord, estimate: float | None = None) -> Submitted:
    """A submit tool's answer: the job id, its state and view; for a render, its plan and estimate.

    Note: a completed task for the job answers with this same shape (the final record).
    """
    answer: Submitted = {
        "job_id": record.id,
        "state": record.state,
        "finished": record.settled,
        "job": job_view(record),
    }
    if record.kind == "render":
        plan = record.plan
        answer["plan"] = {
            "frames": plan.frames.model_dump(), "segments": plan.segments, "eligible_nodes": plan.eligible_nodes,
            "stitch": plan.stitch, "output": plan.output,
        }  # fmt: skip
        answer["estimate_seconds"] = estimate
    if kinds.get(record.kind).followed and not answer["finished"]:
        answer["next"] = f"wait_for_job(job_id='{record.id}')"
    return answer


def task_view(task: TaskRecord) -> TaskView:
    """A task as agents see it: where it runs, how far it got, its error and per-item report."""
    view: TaskView = {
        "name": task.name,
        "kind": task.kind,
        "node": task.node,
        "state": task.state,
        "attempts": task.attempts,
        "frames_done": task.frames_done,
        "frames_total": task.frames_total,
    }
    if task.error:
        view["error"] = task.error
    if task.results:
        view.update(results_report(task.results))  # type: ignore[typeddict-item]
    return view


def busy_nodes(record: JobRecord) -> str:
    if record.state == "waiting":
        return f"waiting for job(s) {', '.join(record.waiting_on)} to succeed"
    running = [f"{t.name} on {t.node}" for t in record.tasks if t.state == "running" and t.node]
    return ", ".join(running) or "waiting for a node"


def node_view(record: NodeRecord) -> NodeView:
    node = record.public()
    resolve = node.get("resolve") or {}
    return {
        "name": node["name"],
        "up": node["up"],
        "age_seconds": node.get("age_seconds"),
        "roles": node.get("roles", []),
        "tags": node.get("tags", []),
        "os": node.get("os"),
        "resolve": {k: resolve[k] for k in ("product", "version", "studio", "error") if k in resolve},
        "bridge": node.get("bridge"),
        "current_task": node.get("current_task"),
        "version_key": node.get("version_key"),
        "version_mismatch": node.get("version_mismatch"),
    }
