"""The `hold` kind's piece (`orchestrator.kinds.hold`): run for the asked seconds, reporting progress, then end."""

from __future__ import annotations

import time
from typing import Any

from celery import Task, shared_task

from tasks.base import PermanentFailure, PieceResult, PieceRun, PieceTask
from tasks.progress import Reporter

TICK = 0.1  # seconds: one unit of the piece's progress


class HoldReporter(Reporter):
    speaker = "hold"


class HoldPiece(PieceTask):
    """Holds its worker for `seconds`, stopping at a cancel; fails permanently with `fail` when asked to."""

    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        params, piece = run.piece.params, run.piece
        seconds = float(params["seconds"])
        total = piece.frames_total or 1
        reporter = HoldReporter(run.task, run.job_id, piece.name, run.record.generation, piece.attempts)
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            reporter(min(total - 1, int(elapsed / TICK)), total, {"status": "holding"})
            if reporter.cancel.wait(min(TICK, seconds - elapsed)):
                raise reporter.stopped("stopped")
        if params.get("fail"):
            raise PermanentFailure(str(params["fail"]))
        reporter(total, total, {"status": "done"})
        return PieceResult(details={"seconds": round(time.monotonic() - started, 3), "label": params.get("label")})


@shared_task(bind=True, base=HoldPiece, name="tasks.hold")
def hold(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    return self.run_piece(job_id, name, generation)
