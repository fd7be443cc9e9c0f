"""What agents see of jobs and nodes: the record, trimmed to what helps decide the next step."""

from __future__ import annotations

from typing import Any

from orchestrator.models import JobRecord, results_report
from orchestrator.nodes import NodeRecord


def job_view(record: JobRecord) -> dict[str, Any]:
    """State, percent, frames, ETA, each segment or target with its node, outputs and errors."""
    video = [t for t in record.tasks if t.kind in ("segment", "render")]
    return {
        "id": record.id,
        "kind": record.kind,
        "state": record.state,
        "progress": round(record.progress, 1),
        "frames_done": sum(t.frames_done for t in video),
        "frames_total": sum(t.frames_total for t in video),
        "eta_seconds": record.eta_seconds,
        "tasks": [
            {
                "name": t.name,
                "kind": t.kind,
                "node": t.node,
                "state": t.state,
                "attempts": t.attempts,
                "frames_done": t.frames_done,
                "frames_total": t.frames_total,
                **({"error": t.error} if t.error else {}),
                **(results_report(t.results) if t.results else {}),
            }
            for t in record.tasks
        ],
        "outputs": record.outputs,
        "errors": record.errors,
    }


def busy_nodes(record: JobRecord) -> str:
    running = [f"{t.name} on {t.node}" for t in record.tasks if t.state == "running" and t.node]
    return ", ".join(running) or "waiting for a node"


def node_view(record: NodeRecord) -> dict[str, Any]:
    node = record.public()
    resolve = node.get("resolve") or {}
    return {
        "name": node["name"],
        "up": node["up"],
        "seconds_since_heartbeat": node.get("age_seconds"),
        "roles": node.get("roles", []),
        "tags": node.get("tags", []),
        "os": node.get("os"),
        "resolve": {k: resolve[k] for k in ("product", "version", "studio", "error") if k in resolve},
        "bridge": node.get("bridge"),
        "current_task": node.get("current_task"),
        "version_key": node.get("version_key"),
        "version_mismatch": node.get("version_mismatch"),
    }
