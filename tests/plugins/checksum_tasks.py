"""The `checksum` kind's pieces: digest one file; write the manifest once every digest is done."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from celery import Task, shared_task

from tasks.base import PieceResult, PieceRun, PieceTask


class DigestPiece(PieceTask):
    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        data = Path(run.piece.params["file"]).read_bytes()
        return PieceResult(details={"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)})


class ManifestPiece(PieceTask):
    abstract = True

    def perform(self, run: PieceRun) -> PieceResult:
        digests = {t.params["file"]: t.details["sha256"] for t in run.record.tasks if t.kind == "digest"}
        target = Path(str(run.piece.output))
        temp = target.with_name(f".{target.name}.partial")
        temp.write_text(json.dumps(digests, sort_keys=True))
        os.replace(temp, target)
        return PieceResult(output=str(target), details={"files": len(digests)})


@shared_task(bind=True, base=DigestPiece, name="checksum.digest")
def digest(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    return self.run_piece(job_id, name, generation)


@shared_task(bind=True, base=ManifestPiece, name="checksum.manifest")
def manifest(self: Task, job_id: str, name: str, generation: int) -> dict[str, Any]:
    return self.run_piece(job_id, name, generation)
