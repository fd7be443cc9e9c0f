"""What a job kind adds to the lifecycle's rules: hooks the transitions call inside their transaction.

The lifecycle's own rules are the same for every kind (attempts, placement, blocklists,
dependencies, settling). A kind that schedules its pieces in its own way (a pulled render's
frame pool, sizing and tail copies: `orchestrator.pull`) subclasses `KindRules`; its record
model carries them (`JobKind.record`), so a transition finds them on the record it is given.
Each hook runs after the transition's generic checks, in the spirit of Prefect's ordered
transition rules:

| hook | called by | may |
|---|---|---|
| `before_claim` | `claim`, before a lost worker's attempt is counted | end the claim (a piece not needed now) |
| `on_claim` | `claim`, once the node may run the piece | shape the piece (its frames), move or skip it, send more |
| `stop` | the live progress control entry (`orchestrator.live`) | tell a running piece to stop |
| `before_done` | `piece_done`, before the piece is recorded done | refuse its work (stale) |
| `on_done` | `piece_done`, once it is recorded done | change other pieces, send more |
| `before_failure` | `piece_failed`, before an attempt is counted | end the failure its own way |
| `retried` | `retry_job` | keep a piece out of the next generation |
| `counted`, `frames`, `eta` | `JobRecord.refresh_progress` | count the job's frames, estimate the time left |
| `dispatch` | the store, on every write | an entry in the index of who holds what (`JobStore.holders`) |

Note: hooks are pure: they compute from the record and the context they are given (what the
kind read from the farm before the transaction: `JobKind.claim_context`), change the record
in place, and may be called more than once (a conflicting write re-runs the transition).
The defaults do nothing, so a kind without rules of its own behaves by the generic ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from orchestrator.models import JobRecord, TaskRecord
    from orchestrator.outcome import Outcome, Send

    Record = JobRecord[Any, Any, Any]


class KindRules:
    """A kind's rules beside the lifecycle's: every hook does nothing by default."""

    def before_claim(self, record: Record, piece: TaskRecord, now: float) -> Outcome | None:
        return None

    def on_claim(
        self, record: Record, piece: TaskRecord, node: str, candidates: Sequence[str], context: Any, now: float
    ) -> Outcome | None:
        """None: run as compiled; `run` with sends/revokes: run, and carry them out; `skip`/`move`: not here."""
        return None

    def stop(self, record: Record, piece: TaskRecord) -> str | None:
        """Why a running piece should stop although it is still its node's (None: it goes on)."""
        return None

    def before_done(self, record: Record, piece: TaskRecord, now: float) -> Outcome | None:
        return None

    def on_done(self, record: Record, piece: TaskRecord, node: str, context: Any, now: float) -> list[Send]:
        return []

    def before_failure(self, record: Record, piece: TaskRecord, node: str, error: str, now: float) -> Outcome | None:
        return None

    def questions(self, record: Record, piece: TaskRecord) -> dict[str, str]:
        """What a ready `ASK` piece asks its client (key -> a yes-or-no question); none: it is done at once."""
        return dict(piece.params.get("questions", {}))

    def retried(self, record: Record, piece: TaskRecord) -> bool:
        """Whether a piece that is not done runs again in a retry's generation."""
        return True

    def counted(self, record: Record, piece: TaskRecord) -> bool:
        """Whether the piece's frames count toward the job's progress."""
        return bool(piece.frames_total)

    def frames(self, record: Record) -> tuple[int, int]:
        """(frames rendered, frames to render) of the job's pieces that count frames."""
        counted = [t for t in record.tasks if self.counted(record, t)]
        return sum(t.frames_done for t in counted), sum(t.frames_total for t in counted)

    def counts_frames(self, record: Record) -> bool:
        """Whether the job's progress is counted in frames (else in settled pieces)."""
        return any(t.frames_total for t in record.tasks)

    def eta(self, record: Record, done: int, left: int, now: float) -> float | None:
        """Seconds until the job's frames left are rendered (`JobRecord.frames_eta`, the generic estimate)."""
        return record.frames_eta(done, left, now)

    def dispatch(self, record: Record) -> dict[str, Any] | None:
        """What the index of who holds what keeps for this job (None: the job is not in it)."""
        return None
