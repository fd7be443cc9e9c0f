"""Every change of a job's state, as named pure transitions on its record.

Each transition takes the current record (and what the caller observed: the node, the
message, the live nodes that could take a piece), changes the record in place and returns
an `Outcome`: what the caller must do next (run the piece, skip it, send pieces, mark a
host unhealthy). None of them reads Redis, the clock of another host or Celery: the store
applies them atomically (`JobStore.apply`), the engine and the task base class act on the
outcome. They are the only code that changes a job record.

| transition | from | to |
|---|---|---|
| `submit` | new record | ready pieces `pending` (sent; `ASK` ones `asking`), others `waiting`; job `waiting` (after) |
| `upstream_finished` | job `waiting` | `queued` once all it runs after succeeded; `cancelled` when one did not |
| `claim` | piece `pending` (or `running` on a lost worker) | `running` here (as its kind's rules shape it); or moved |
| `progress` | piece `running` | frames counted (reports beside the record, folded in on read); says whether to stop |
| `piece_done` | piece `running` | `done` (+ pieces it found); ready dependents sent; job `succeeded` when all are |
| `piece_failed` | piece `running` | `pending` again elsewhere, or `failed` (job `failed` when fail-fast) |
| `piece_cancelled` | piece `running` | `cancelled` |
| `answer` | piece `asking` (job `input_required`) | `done` when all it asked is confirmed; job `cancelled` if not |
| `cancel_job` | job unfinished | `cancelled`; pieces not running `cancelled`; cleanup due |
| `retry_job` | job `failed`/`cancelled` | next generation, `queued` (or `waiting`); what is not done runs again |
| `discard` | job `cancelled`, same generation | its pieces' files no longer count as done |
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from orchestrator.models import ASK, FINISHED, SETTLED, JobRecord, TaskRecord
from orchestrator.outcome import Outcome, Send, Verdict

__all__ = ["BLOCK_AFTER", "Outcome", "Send", "Verdict"]
BLOCK_AFTER = 2  # failures of one node in one job before it is kept off that job


def new_message(piece: TaskRecord) -> None:
    """Give the piece a new message id: only that message may run it from now on."""
    piece.celery_id = uuid.uuid4().hex


def make_ready(record: JobRecord[Any, Any]) -> list[Send]:
    """Waiting pieces whose every predecessor is done (settled, for `after_settled` ones) become pending,
    each with a new message."""
    ready: list[Send] = []
    grew = True
    while grew:  # (an `ASK` piece with nothing to ask is done at once: what waits for it may be ready now)
        grew = False
        done = {t.name for t in record.tasks if t.state == "done"}
        settled = {t.name for t in record.tasks if t.state in SETTLED}
        for piece in record.tasks:
            if piece.state == "waiting" and set(piece.after) <= (settled if piece.after_settled else done):
                if _asks(record, piece):
                    grew = grew or piece.state == "done"
                    continue
                piece.state = "pending"
                new_message(piece)
                ready.append(Send(piece.name))
    return ready


def _asks(record: JobRecord[Any, Any], piece: TaskRecord) -> bool:
    """A ready `ASK` piece asks instead of running: `asking` with the questions its kind's rules put
    (`KindRules.questions`), its job `input_required`, no message sent; with nothing to ask, it is done."""
    if piece.kind != ASK:
        return False
    questions = record.rules.questions(record, piece)
    if not questions:
        piece.state, piece.finished_at = "done", time.time()
        return True
    piece.params["questions"] = questions
    piece.state = "asking"
    if not record.finished:
        record.state = "input_required"
    return True


def confirmed(response: Mapping[str, Any]) -> bool:
    """Whether a client's answer to a yes-or-no question is yes: accepted, `confirm` true."""
    content = response.get("content")
    return response.get("action") == "accept" and isinstance(content, Mapping) and content.get("confirm") is True


def _pick(record: JobRecord[Any, Any], candidates: Sequence[str], avoid: set[str]) -> str | None:
    """The first live eligible node not avoided and not blocked for this job."""
    for name in candidates:
        if name not in avoid and record.blocked_nodes.get(name, 0) < BLOCK_AFTER:
            return name
    return None


def settle(record: JobRecord[Any, Any], now: float) -> None:
    """Finish the job once every piece has settled: succeeded when all are done, else failed."""
    if record.finished or any(t.state not in SETTLED for t in record.tasks):
        return
    failed = [t for t in record.tasks if t.state == "failed"]
    record.state = "failed" if failed else "succeeded"
    record.finished_at = now
    record.outputs = [t.output for t in record.tasks if t.final and t.output] if not failed else []
    record.errors = [f"{t.name}: {t.error}" for t in record.tasks if t.error]


def _fail_job(record: JobRecord[Any, Any], reason: str, now: float) -> list[str]:
    """Fail the job now; pieces that have not started are cancelled. Returns their message ids."""
    record.state, record.finished_at = "failed", now
    record.errors.append(reason)
    return _cancel_unstarted(record, now)


def _cancel_unstarted(record: JobRecord[Any, Any], now: float) -> list[str]:
    revoked = []
    for piece in record.tasks:
        if piece.state in ("pending", "waiting", "asking"):
            if piece.state == "pending" and piece.celery_id:
                revoked.append(piece.celery_id)
            piece.state, piece.finished_at = "cancelled", now
    return revoked


def _skip_dependents(record: JobRecord[Any, Any], failed: str, now: float) -> None:
    """Pieces that wait, directly or not, for a piece that gave up will never run: skipped (those that run
    after their predecessors settled, whatever became of them, still run)."""
    gone, grew = {failed}, True
    while grew:
        grew = False
        for piece in record.tasks:
            if piece.state == "waiting" and not piece.after_settled and gone & set(piece.after):
                piece.state, piece.finished_at = "skipped", now
                gone.add(piece.name)
                grew = True


def _record_failure(
    record: JobRecord[Any, Any], piece: TaskRecord, node: str, error: str, permanent: bool, now: float
) -> Outcome | None:
    """Count a failed attempt against the piece and the node; the outcome when the piece gave up.

    Note: a permanent failure is the request's fault (a missing source, refused operations), not
    the node's: it does not count toward keeping the node off the job.
    """
    piece.failed_on.append(node)
    piece.error = error
    if not permanent:
        record.blocked_nodes[node] = record.blocked_nodes.get(node, 0) + 1
    if not permanent and piece.attempts < record.max_attempts:
        piece.state = "pending"
        return None
    piece.state, piece.finished_at = "failed", now
    _skip_dependents(record, piece.name, now)
    reason = f"{piece.name} failed on {node}: {error} (after {piece.attempts} attempt(s))"
    revoke: list[str] = []
    ready: list[Send] = []
    if record.fail_fast:
        revoke = _fail_job(record, reason, now)
    else:
        ready = make_ready(record)  # what runs after its predecessors settled may run now
        settle(record, now)
    return Outcome("failed", reason, send=ready, revoke=revoke, count_failure=True)


# --- the transitions ------------------------------------------------------------------------


def submit(record: JobRecord[Any, Any], upstream: Mapping[str, str] | None = None) -> Outcome:
    """A new job: every piece gets its state; those with nothing to wait for are sent.

    `upstream` is the state of each job in `record.after`, as the submitter saw it: while any
    of them has not succeeded, the whole job is `waiting` and nothing is sent (`upstream_finished`
    queues it).
    """
    seen = upstream or {}
    record.waiting_on = [job for job in record.after if seen.get(job) != "succeeded"]
    if record.waiting_on:
        record.state = "waiting"
        for piece in record.tasks:
            piece.state = "waiting"
        return Outcome("wait", f"waits for job(s) {', '.join(record.waiting_on)}")
    for piece in record.tasks:
        piece.state = "waiting" if piece.after else "pending"
        if not piece.after and not _asks(record, piece):
            new_message(piece)
    sent = [Send(t.name, t.params.get("prefer")) for t in record.tasks if t.state == "pending"]
    return Outcome("run", send=sent + make_ready(record))  # (after an `ASK` piece that asked nothing)


def claim(
    record: JobRecord[Any, Any],
    name: str,
    node: str,
    message_id: str,
    generation: int,
    node_tags: Sequence[str],
    candidates: Sequence[str],
    now: float | None = None,
    context: Any = None,
) -> Outcome:
    """A worker on `node` got the piece's message and holds its lock: run it here, or say why not.

    `candidates` are the live eligible nodes, best first (read from the registry just before);
    `context` what the job's kind read from the farm for its rules (`JobKind.claim_context`).
    The kind's rules may end the claim first (`before_claim`) and shape the piece once the node
    may run it (`on_claim`).
    Note: the caller holds the piece's lock, so a piece still `running` was left by a worker
    that died (its lock lapsed): that attempt counts as failed on its node.
    """
    now = now or time.time()
    piece = record.task(name)
    if record.finished or record.cancel_requested:
        return Outcome("skip", f"the job is {record.state}")
    if record.state == "waiting":
        return Outcome("skip", f"the job waits for job(s) {', '.join(record.waiting_on)}")
    if generation != record.generation:
        return Outcome("skip", f"a message of generation {generation}; the job is at {record.generation}")
    if piece.state in ("done", "failed", "cancelled", "skipped"):
        return Outcome("skip", f"{name} is {piece.state} already")
    if piece.state == "waiting":
        return Outcome("skip", f"{name} waits for {', '.join(piece.after)}")
    if message_id != piece.celery_id:
        return Outcome("skip", f"{name} is carried by another message now")
    outcome = Outcome("run")
    if (ruled := record.rules.before_claim(record, piece, now)) is not None:
        return ruled
    if piece.state == "running" and piece.node:
        lost = piece.node
        outcome.lost_on = lost
        gave_up = _record_failure(
            record, piece, lost, f"the worker on {lost} was lost during attempt {piece.attempts}", False, now
        )
        if gave_up is not None:
            gave_up.lost_on = lost
            return gave_up
    placement = piece.placement
    if not set(placement.tags) <= set(node_tags) or (placement.node and placement.node != node):
        other = _pick(record, candidates, {node})
        if other is None:
            return Outcome("wait", f"{node} lacks what {name} needs and no other node can take it now")
        new_message(piece)
        return Outcome("move", f"{node} lacks what {name} needs", send=[Send(name, other)], lost_on=outcome.lost_on)
    if record.blocked_nodes.get(node, 0) >= BLOCK_AFTER or node in piece.failed_on[-1:]:
        other = _pick(record, candidates, {node})
        if other is not None:  # with nowhere else to go, this node runs it after all: better late than never
            new_message(piece)
            return Outcome("move", f"{node} failed it before", send=[Send(name, other)], lost_on=outcome.lost_on)
    if (ruled := record.rules.on_claim(record, piece, node, candidates, context, now)) is not None:
        if ruled.verdict != "run":
            return ruled
        outcome.send, outcome.revoke = ruled.send, ruled.revoke
    piece.state, piece.node, piece.error = "running", node, None
    piece.attempts += 1
    piece.generation = record.generation
    piece.started_at, piece.finished_at = now, None
    piece.frames_done, piece.first_frames, piece.last_frames, piece.recent_frames = 0, None, None, None
    if record.state == "queued" or piece.job_state != "running":
        record.state = piece.job_state
    record.started_at = record.started_at or now
    return outcome


def job_control(record: JobRecord[Any, Any]) -> str:
    """Why every running piece of the job should stop ("" while it runs on): what reports read back."""
    return f"the job ended: {record.state}" if record.finished or record.cancel_requested else ""


def piece_control(record: JobRecord[Any, Any], piece: TaskRecord) -> dict[str, Any]:
    """What a report from `piece` reads back: its state, its node, and why the kind's rules would stop it."""
    return {"state": piece.state, "node": piece.node, "stop": record.rules.stop(record, piece)}


def stop_reason(job: str, piece: Mapping[str, Any], name: str, node: str) -> str | None:
    """Why a piece reporting from `node` should stop, from what `job_control` and `piece_control` said; None: go on."""
    if job:
        return job
    if piece.get("state") != "running" or piece.get("node") != node:
        held = piece.get("node")
        where = f" on {held}" if held and held != node else ""
        return f"{name} is {piece.get('state', 'not running')}{where} now"
    return piece.get("stop") or None


def progress(
    record: JobRecord[Any, Any], name: str, node: str, done: int, total: int, now: float | None = None,
    recent: tuple[float, int] | None = None,
) -> Outcome:  # fmt: skip
    """A running piece's report of frames, folded into the record; says whether the piece should stop (the
    job ended, the piece is no longer this node's, or the kind's rules say so). `recent`: where the window
    of the piece's recent reports begins (its speed lately is read over it).

    Note: reports are kept beside the record (`orchestrator.live`), not written into it: this
    fold runs where a record is read, on each report kept since.
    """
    piece = record.task(name)
    if (why := stop_reason(job_control(record), piece_control(record, piece), name, node)) is not None:
        return Outcome("stale", why, stop=True)
    if piece.frames_total:  # only pieces compiled with frames count toward the job's progress
        piece.frames_done = max(piece.frames_done, min(done, piece.frames_total))
        if piece.frames_done and piece.first_frames is None:  # from here on its speed can be measured
            piece.first_frames = (now or time.time(), piece.frames_done)
        elif piece.first_frames is not None:
            piece.last_frames = (now or time.time(), piece.frames_done)
            if recent is not None and piece.first_frames[1] <= recent[1] < piece.frames_done:
                piece.recent_frames = recent
    return Outcome("run")


def _ours(record: JobRecord[Any, Any], piece: TaskRecord, node: str, generation: int) -> bool:
    """Is this attempt the piece's current one (whatever became of the job meanwhile)?"""
    return piece.state == "running" and piece.node == node and piece.generation == generation == record.generation


def piece_done(
    record: JobRecord[Any, Any],
    name: str,
    node: str,
    generation: int,
    output: str | None = None,
    frames: int | None = None,
    details: dict[str, Any] | None = None,
    results: list[dict[str, Any]] | None = None,
    error: str | None = None,
    now: float | None = None,
    context: Any = None,
    pieces: Sequence[TaskRecord] = (),
) -> Outcome:
    """The piece finished on `node`: record what it made, send what was waiting for it, settle the job.

    The kind's rules may refuse the work first (`before_done`) and act once it is recorded
    (`on_done`, with `context`: what the kind read from the farm). A piece that found its job's work at run time (a
    proxies job's scan) adds `pieces`, placed after it: those that wait for nothing are sent at
    once, the rest when what they wait for is done."""
    now = now or time.time()
    piece = record.task(name)
    if not _ours(record, piece, node, generation):
        return Outcome("stale", f"{name} on {node} finished after the piece moved on")
    if record.finished and piece.final:
        piece.state, piece.finished_at = "cancelled", now
        return Outcome("stale", f"the job is {record.state}: the output of {name} is not wanted")
    if record.finished and pieces:  # not kept as done: a retry must look for the work again
        piece.state, piece.finished_at = "cancelled", now
        return Outcome("stale", f"the job is {record.state}: the {len(pieces)} piece(s) {name} found are dropped")
    if (ruled := record.rules.before_done(record, piece, now)) is not None:
        return ruled
    piece.state, piece.finished_at, piece.error = "done", now, error
    if output is not None:
        piece.output = output
    piece.frames_done = frames if frames is not None else piece.frames_total
    piece.details = details or {}
    if results is not None:
        piece.results = results
    more = record.rules.on_done(record, piece, node, context, now)
    if record.finished:
        return Outcome("done", f"kept for a retry: the job is {record.state}")
    _add_pieces(record, piece, pieces)
    ready = make_ready(record) + more
    if not record.finished:
        _show_phase(record)
    settle(record, now)
    return Outcome("done", send=ready)


def _show_phase(record: JobRecord[Any, Any]) -> None:
    """The unfinished job's state from its pieces: asking, stitching, else running."""
    if any(t.state == "asking" for t in record.tasks):
        record.state = "input_required"
        return
    phases = {t.job_state for t in record.tasks if t.state == "running"}
    record.state = "stitching" if "stitching" in phases else "running"


def answer(record: JobRecord[Any, Any], responses: Mapping[str, Any], now: float | None = None) -> Outcome:
    """The client answered what the job's `asking` pieces asked (`params["questions"]`: key -> a yes-or-no
    question), by key. A piece whose every question is answered yes is done, and what waited for it is sent;
    an answer other than yes cancels the job, naming the question (nothing runs that was not confirmed).
    Answers are kept in the piece's `details["answers"]`; a key no piece asks (or asked and was answered) is
    ignored.

    Note: an answer is final: it is kept on the record before anything acts on it, so a client
    that sends it again, or a server that restarted meanwhile, changes nothing.
    """
    now = now or time.time()
    if record.finished:
        return Outcome("skip", f"the job is {record.state} already")
    asking = [t for t in record.tasks if t.state == "asking"]
    for piece in asking:
        questions: Mapping[str, str] = piece.params.get("questions", {})
        answers = piece.details.setdefault("answers", {})
        for key, response in responses.items():
            if key in questions and key not in answers and isinstance(response, Mapping):
                answers[key] = dict(response)
        refused = [key for key, response in answers.items() if not confirmed(response)]
        if refused:
            record.cancel_requested = True
            record.state, record.finished_at = "cancelled", now
            why = f"not confirmed: {questions[refused[0]]}"
            record.errors.append(f"{piece.name}: {why}")
            return Outcome("cancelled", why, revoke=_cancel_unstarted(record, now))
        if set(questions) <= set(answers):
            piece.state, piece.finished_at = "done", now
    ready = make_ready(record)
    if not any(t.state == "asking" for t in record.tasks):
        running = any(t.state == "running" for t in record.tasks)
        record.state = "running" if running else "queued"
    settle(record, now)
    return Outcome("run", send=ready)


def _add_pieces(record: JobRecord[Any, Any], finder: TaskRecord, pieces: Sequence[TaskRecord]) -> None:
    """Put the pieces `finder` found to do into the record, right after it, all `waiting` (made ready by the caller).

    Note: names must be new to the job; a piece may wait only for pieces of the job or of the same batch.
    """
    known = {t.name for t in record.tasks}
    added = [p.name for p in pieces]
    if len(set(added)) != len(added) or known & set(added):
        raise ValueError(f"{finder.name} of job {record.id} added pieces whose names are taken: {sorted(added)}")
    for new in pieces:
        missing = set(new.after) - known - set(added)
        if missing:
            raise ValueError(f"{new.name} waits for pieces job {record.id} does not have: {sorted(missing)}")
    at = record.tasks.index(finder) + 1
    record.tasks[at:at] = [p.model_copy(update={"state": "waiting", "celery_id": None}) for p in pieces]


def piece_failed(
    record: JobRecord[Any, Any],
    name: str,
    node: str,
    generation: int,
    error: str,
    candidates: Sequence[str] = (),
    permanent: bool = False,
    hung: bool = False,
    now: float | None = None,
) -> Outcome:
    """An attempt failed on `node`: run it elsewhere while attempts remain, else give it up.

    `hung` (a call into Resolve never returned) keeps new work off the node until it answers
    again, on every attempt, the last one included.
    """
    now = now or time.time()
    piece = record.task(name)
    if not _ours(record, piece, node, generation):
        return Outcome("stale", f"{name} failed on {node} after the piece moved on")
    if record.finished:
        piece.state, piece.finished_at, piece.error = "cancelled", now, error
        return Outcome("stale", f"{name} stopped on {node}: the job is {record.state}")
    unhealthy = f"a call hung running {name} of job {record.id}" if hung else None
    if (ruled := record.rules.before_failure(record, piece, node, error, now)) is not None:
        ruled.unhealthy = ruled.unhealthy or unhealthy
        return ruled
    gave_up = _record_failure(record, piece, node, error, permanent, now)
    if gave_up is not None:
        gave_up.unhealthy = unhealthy
        return gave_up
    new_message(piece)
    other = _pick(record, candidates, {node})
    return Outcome("retry", error, send=[Send(name, other)], unhealthy=unhealthy, count_failure=True)


def piece_cancelled(record: JobRecord[Any, Any], name: str, node: str, generation: int) -> Outcome:
    """The piece stopped on `node` because the job was cancelled or finished."""
    piece = record.task(name)
    if piece.state != "running" or piece.node != node or piece.generation != generation:
        return Outcome("stale")
    now = time.time()
    piece.state, piece.finished_at = "cancelled", now
    settle(record, now)  # a piece the job no longer needed may be the last it waited for
    return Outcome("cancelled")


def piece_given_back(record: JobRecord[Any, Any], name: str, node: str, generation: int, why: str) -> Outcome:
    """The piece stopped on `node` because its worker is stopping: back to the queue for another node, its
    attempt not counted (the node did not fail it) and nothing of it kept."""
    piece = record.task(name)
    if not _ours(record, piece, node, generation):
        return Outcome("stale")
    piece.state, piece.node, piece.started_at, piece.finished_at = "pending", None, None, None
    piece.attempts = max(0, piece.attempts - 1)
    piece.frames_done, piece.first_frames, piece.last_frames, piece.recent_frames = 0, None, None, None
    new_message(piece)
    return Outcome("move", why, send=[Send(name)])


def cancel_job(record: JobRecord[Any, Any], cleanup_after: float, now: float | None = None) -> Outcome:
    """Cancel: nothing new starts, running pieces stop at their next report, leftovers go later."""
    now = now or time.time()
    if record.finished:
        return Outcome("skip", f"the job is {record.state} already")
    record.cancel_requested = True
    record.state, record.finished_at = "cancelled", now
    record.cleanup_at = now + cleanup_after
    return Outcome("cancelled", revoke=_cancel_unstarted(record, now))


def retry_job(record: JobRecord[Any, Any], upstream: Mapping[str, str] | None = None) -> Outcome:
    """Run again what failed or was cancelled, as the next generation; what is done stays done.

    `upstream` is the state of each job in `record.waiting_on` (the jobs it runs after that it
    has not seen succeed), as the caller saw them: succeeded ones are waited for no more; the
    job waits again for the unfinished ones; a failed, cancelled or gone one refuses the retry
    (retry that one first).
    Note: a retry of an upstream job does not retry the jobs its failure cancelled: each is retried on its own.
    """
    if record.state not in ("failed", "cancelled"):
        raise ValueError(f"job {record.id} is {record.state}: only failed or cancelled jobs are retried")
    seen = upstream or {}
    for job in record.waiting_on:
        state = seen.get(job, "gone")
        if state in FINISHED - {"succeeded"} or state == "gone":
            raise ValueError(
                f"job {record.id} runs after job {job}, which is {state}: retry job {job} first, then this one"
            )
    record.generation += 1
    again = {t.name for t in record.tasks if t.state != "done" and record.rules.retried(record, t)}
    # A piece runs again when anything it waits for does (a stitch of segments made anew).
    grew = True
    while grew:
        grew = False
        for piece in record.tasks:
            if piece.name not in again and again & set(piece.after):
                again.add(piece.name)
                grew = True
    for piece in record.tasks:
        if piece.name in again:
            piece.state, piece.error, piece.attempts = "waiting", None, 0
            piece.frames_done, piece.failed_on, piece.node = 0, [], None
            piece.started_at = piece.finished_at = None
    record.state, record.cancel_requested = "queued", False
    record.finished_at = record.cleanup_at = None
    record.errors, record.outputs, record.blocked_nodes = [], [], {}
    record.waiting_on = [job for job in record.waiting_on if seen.get(job) != "succeeded"]
    if record.waiting_on:
        record.state = "waiting"
        return Outcome("wait", f"waits for job(s) {', '.join(record.waiting_on)}")
    ready = make_ready(record)
    settle(record, time.time())  # every piece finished late, after the cancel: nothing is left to run
    return Outcome("run", send=ready)


def upstream_finished(
    record: JobRecord[Any, Any], upstream: str, state: str, why: str, cleanup_after: float, now: float | None = None
) -> Outcome:
    """A job this one runs after has finished as `state` (succeeded, failed, cancelled; `gone`:
    past retention), `why` being its errors: queue this job once every such job succeeded, or
    cancel it, naming the job and the reason.

    Note: applied by whoever sees the upstream job finish first (the engine right after its
    last transition, the janitor, a submit or retry re-checking): a second call changes nothing.
    """
    now = now or time.time()
    if record.state != "waiting" or upstream not in record.waiting_on:
        return Outcome("skip", f"the job is {record.state}, not waiting for job {upstream}")
    if state == "succeeded":
        record.waiting_on.remove(upstream)
        if record.waiting_on:
            return Outcome("wait", f"still waits for job(s) {', '.join(record.waiting_on)}")
        record.state = "queued"
        return Outcome("run", f"job {upstream} succeeded", send=make_ready(record))
    if state not in FINISHED and state != "gone":
        return Outcome("skip", f"job {upstream} is {state}: not finished")
    ended = {"cancelled": "was cancelled", "gone": "is gone (past its retention)"}.get(state, state)
    reason = f"job {upstream}, which this job runs after, {ended}" + (f": {why}" if why else "")
    outcome = cancel_job(record, cleanup_after, now)
    record.errors.append(reason)
    outcome.reason = reason
    return outcome


def discard(record: JobRecord[Any, Any], generation: int) -> Outcome:
    """A cancelled job's leftovers are about to be removed: only if it is still that cancelled generation.

    Note: a retry in the meantime started a new generation whose pieces (and the ones it
    kept) must not be touched; nor may a job that finished some other way.
    """
    if record.generation != generation or record.state != "cancelled":
        return Outcome("skip", f"the job is {record.state} at generation {record.generation}")
    record.cleanup_at = None
    for piece in record.tasks:
        if piece.state == "done":  # its file goes: a later retry renders it again
            piece.state, piece.frames_done = "cancelled", 0
    return Outcome("discard")


def resend(record: JobRecord[Any, Any], name: str, message_id: str | None) -> Outcome:
    """The janitor found no message carrying the piece: give it a new one, if nothing changed meanwhile."""
    piece = record.task(name)
    if record.finished or record.cancel_requested or piece.celery_id != message_id:
        return Outcome("skip", f"{name} changed meanwhile")
    if piece.state not in ("pending", "running"):
        return Outcome("skip", f"{name} is {piece.state}")
    new_message(piece)
    return Outcome("retry", f"{name} had no message left", send=[Send(name)])


def postpone_cleanup(record: JobRecord[Any, Any], until: float) -> Outcome:
    """The cleanup of a cancelled job was asked for; ask again at `until` if it has not happened by then."""
    if record.cleanup_at is None:
        return Outcome("skip")
    record.cleanup_at = until
    return Outcome("run")
