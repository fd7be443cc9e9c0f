"""`apply_edits`: a batch edit's operations on one timeline, on one Resolve host."""

from __future__ import annotations

from typing import Any

from celery import Task, shared_task
from pydantic import ValidationError

from orchestrator.kinds.edit import EditSpec, EditTarget
from tasks.base import PermanentFailure, PieceResult, PieceRun
from tasks.resolve import ResolvePiece, publish_content, reading
from tasks.runtime import runtime


class EditPiece(ResolvePiece):
    """Opens the target's project, applies the operations to its timeline, saves.

    Note: operations the bridge refuses to validate fail the piece at once, on every node
    alike; any other failure (Resolve refusing, a call returning None) is retried elsewhere
    up to the job's attempts, like a render.
    """

    abstract = True
    permanent_errors = (*ResolvePiece.permanent_errors, ValidationError)

    def perform(self, run: PieceRun) -> PieceResult:
        spec: EditSpec = run.record.spec
        target = run.piece.target or {}
        session = runtime.session()
        # A dry run only reads (no lease) and lets go of the project; a writer closes it in `end_write`.
        counting = bool(run.piece.params.get("dry_run"))  # a `count` piece: the dry run before a confirmation
        dry_run = spec.dry_run or counting
        with reading(EditTarget.model_validate(target), writing=run.piece.lease is not None):
            try:
                results = session.apply_edits(target["timeline"], spec.operations, dry_run=dry_run)
            except ValidationError as exc:
                raise PermanentFailure(f"invalid operations: {exc}") from None
            if not dry_run and any(r["ok"] for r in results):
                session.save_project()
                publish_content(EditTarget.model_validate(target), target["timeline"])  # what changed, told at once
        if counting:  # what it would change, counted; the edit pieces report the items themselves
            return PieceResult(details={"items": len(results), "changes": sum(1 for r in results if r["ok"])})
        refused = [r for r in results if not r["ok"]]
        error = f"{len(refused)} of {len(results)} item(s) refused" if refused else None
        return PieceResult(results=results, error=error, details={"items": len(results)})


@shared_task(bind=True, base=EditPiece, name="tasks.apply_edits")
def apply_edits(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    """Apply the job's operations to one target timeline; per-item results go into the record."""
    return self.run_piece(job_id, name, generation)
