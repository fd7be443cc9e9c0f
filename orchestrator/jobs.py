"""Submitting, cancelling, retrying and waiting for jobs: the orchestrator's verbs.

`submit` parses a spec with its kind's model, lets the kind check it against the farm and
compile it into pieces, stores the record and sends the pieces that wait for nothing. A
refused spec raises `SubmitRefused` naming the field and the reason, and nothing is stored
or queued.

Any job may run after other jobs (`after`): it is `waiting` until they have all succeeded, and
is cancelled (saying which and why) when one of them fails or is cancelled. A job named in
`after` must exist and must not have failed or been cancelled already: such a job would only
be cancelled at once, so it is refused at submit instead (retry the failed job first).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from typing import Any

from orchestrator import engine, kinds, lifecycle, routing, telemetry
from orchestrator.farm import Farm
from orchestrator.kinds import SubmitRefused
from orchestrator.models import JobRecord
from orchestrator.piecelog import PieceLog
from orchestrator.settings import VERSION_KEY
from orchestrator.store import JobNotFound

Record = JobRecord[Any, Any]
__all__ = [
    "SubmitRefused",
    "answer",
    "answer_yes_no",
    "cancel",
    "estimate_seconds",
    "follow",
    "get",
    "inspect",
    "piece_logs",
    "retry",
    "submit",
    "wait",
]
MAX_AFTER = 100  # jobs one job may run after


def submit(farm: Farm, kind_name: str, spec: Any, after: Sequence[str] = ()) -> Record:
    """Validate, compile, record and queue a job of any registered kind; with `after`, once those jobs succeeded."""
    job_id = uuid.uuid4().hex[:16]
    with telemetry.span(f"submit {kind_name}", job=job_id, kind=kind_name):  # the job's trace starts here
        kind = kinds.get(kind_name)
        parsed = kind.parse(spec)
        upstream = upstream_states(farm, after)
        compiled = kind.compile(farm, parsed, job_id)
        record = kind.record(
            id=job_id, kind=kind.name, spec=parsed, plan=compiled.plan, tasks=compiled.pieces, version_key=VERSION_KEY,
            priority=compiled.priority, max_attempts=compiled.max_attempts or farm.settings.max_attempts,
            fail_fast=kind.fail_fast, schedule=compiled.schedule, after=list(upstream), trace=telemetry.carrier(),
        )  # fmt: skip
        outcome = lifecycle.submit(record, upstream)
        farm.store.create(record)
        engine.carry_out(farm, record, outcome)
    if record.state == "waiting":  # an upstream job that finished since it was read did not see this one
        record = engine.recheck_upstream(farm, record)
    return record


def upstream_states(farm: Farm, after: Sequence[str]) -> dict[str, str]:
    """The state of each job a new job is to run after (in order, once each); refused when one cannot succeed."""
    if isinstance(after, str) or not all(isinstance(job, str) for job in after):
        raise SubmitRefused("after", "a list of job ids")
    wanted = list(dict.fromkeys(after))
    if len(wanted) > MAX_AFTER:
        raise SubmitRefused("after", f"{len(wanted)} jobs: at most {MAX_AFTER}")
    states: dict[str, str] = {}
    for ref in wanted:
        try:
            job = farm.store.resolve(ref, "after")
            record = farm.store.get(job)
        except JobNotFound:
            raise SubmitRefused("after", f"no job {ref!r} (never submitted, or past its retention)") from None
        if record.state in ("failed", "cancelled"):
            why = f": {'; '.join(record.errors)}" if record.errors else ""
            raise SubmitRefused(
                "after", f"job {job} is {record.state}{why}; it will not succeed unless retried: retry it first"
            )
        states[job] = record.state
    return states


def submit_render(farm: Farm, spec: Any, after: Sequence[str] = ()) -> Record:
    return submit(farm, "render", spec, after)


def submit_edit(farm: Farm, spec: Any, after: Sequence[str] = ()) -> Record:
    return submit(farm, "edit", spec, after)


def submit_proxies(farm: Farm, spec: Any, after: Sequence[str] = ()) -> Record:
    return submit(farm, "proxies", spec, after)


def cancel(farm: Farm, job_id: str, wait: float = 30.0) -> Record:
    """Cancel a job: revoke what has not started, stop what runs, wait for it to stop.

    A cancelled job's finished pieces are kept for `cancel_cleanup_delay` (a retry reuses
    them); then a post worker removes them with the rest of what the job left.
    """
    delay, job_id = farm.settings.cancel_cleanup_delay, farm.store.resolve(job_id)
    record, _ = engine.advance(farm, job_id, lambda rec: lifecycle.cancel_job(rec, delay))
    deadline = time.monotonic() + wait
    while any(t.state == "running" for t in record.tasks) and time.monotonic() < deadline:
        time.sleep(0.1)
        record = farm.store.get(job_id)
    return record


def answer(farm: Farm, job_id: str, responses: dict[str, Any]) -> Record:
    """Answer what the job asks its client (`lifecycle.answer`): by key, `{"action": "accept", "content":
    {"confirm": true}}` to go on; anything else cancels the job. Keys it does not ask are ignored."""
    job_id = farm.store.resolve(job_id)
    record, _ = engine.advance(farm, job_id, lambda rec: lifecycle.answer(rec, responses))
    return record


def answer_yes_no(farm: Farm, job_id: str, answers: dict[str, bool], field: str | None = None) -> Record:
    """Answer the job's questions yes (True) or no (False, which cancels it) by key, as the CLI and `answer_job`
    do; a key the job does not ask is refused naming `field` (default `answers.<key>`) and what it asks."""
    job_id = farm.store.resolve(job_id)
    asked = farm.store.get(job_id).asking()
    if unknown := sorted(set(answers) - set(asked)):
        asks = f"it asks: {', '.join(asked)}" if asked else "it asks nothing now"
        raise SubmitRefused(field or f"answers.{unknown[0]}", f"job {job_id} asks no {unknown[0]!r} ({asks})")
    yes, no = {"action": "accept", "content": {"confirm": True}}, {"action": "decline"}
    return answer(farm, job_id, {key: yes if value else no for key, value in answers.items()})


def retry(farm: Farm, job_id: str) -> Record:
    """Run again only what failed or was cancelled, as the job's next generation; what is done stays done.

    A job that runs after other jobs waits again for those it had not seen succeed; one of
    them failed or cancelled refuses the retry (retry that one first).
    """
    seen: dict[str, str] = {}
    job_id = farm.store.resolve(job_id)
    for upstream in farm.store.get(job_id).waiting_on:
        try:
            seen[upstream] = farm.store.get(upstream).state
        except JobNotFound:
            seen[upstream] = "gone"
    try:
        record, _ = engine.advance(farm, job_id, lambda rec: lifecycle.retry_job(rec, seen))
    except ValueError as exc:
        raise SubmitRefused("job", str(exc)) from None
    if record.state == "waiting":
        record = engine.recheck_upstream(farm, record)
    return record


def follow(
    farm: Farm, job_id: str, timeout: float | None = None, interval: float = 0.2, asks: bool = False
) -> Iterator[Record]:
    """The job's record every `interval` until it settles (`JobRecord.settled`), or `timeout` passes, or (with
    `asks`) it waits for its client's answer (state `input_required`): the last record yielded is where it
    stopped. The one wait of the farm: `wait`, the CLI's progress bars, MCP `wait_for_job`."""
    deadline = None if timeout is None else time.monotonic() + timeout
    job_id = farm.store.resolve(job_id)
    while True:
        record = farm.store.get(job_id)
        yield record
        if record.settled or (asks and record.state == "input_required"):
            return
        if deadline is not None and time.monotonic() >= deadline:
            return
        time.sleep(interval)


def wait(farm: Farm, job_id: str, timeout: float | None = None, interval: float = 0.2, asks: bool = False) -> Record:
    """The job's record once `follow` stops: settled, `timeout` passed, or (with `asks`) asking its client."""
    return deque(follow(farm, job_id, timeout, interval, asks), maxlen=1)[0]  # (follow yields at least once)


def get(farm: Farm, job_id: str) -> Record:
    """The job's record, named by its id or a unique start of it (`JobStore.resolve`)."""
    return farm.store.get(farm.store.resolve(job_id))


def estimate_seconds(farm: Farm, record: Record) -> float | None:
    """How long the job should take, from what the farm remembers (its kind's `estimate`); None: no estimate."""
    return kinds.get(record.kind).estimate(farm, record)


def piece_logs(farm: Farm, job_id: str, piece: str | None = None) -> dict[str, list[str]]:
    """The lines workers wrote for each piece of a job (or for one), in the job's order of pieces."""
    record = get(farm, job_id)
    names = [t.name for t in record.tasks]
    if piece is not None and piece not in names:
        raise SubmitRefused("piece", f"job {record.id} has no piece {piece!r} (pieces: {', '.join(names)})")
    log = PieceLog(farm.redis, farm.settings.job_retention)
    return {name: log.read(record.id, name) for name in ([piece] if piece else names)}


INSPECT = "tasks.inspect_resolve"


def inspect(farm: Farm, node: str | None, timeout: float) -> dict[str, Any]:
    """Ask a node's Resolve what it holds, through the queue; the node's catalog when it is busy."""
    known = {n.name: n for n in farm.nodes.all() if "resolve" in n.roles}
    if node is not None and node not in known:
        raise SubmitRefused("node", f"no Resolve node named {node!r} (known: {', '.join(sorted(known)) or 'none'})")
    queue = routing.node_queue(node) if node else routing.RENDER
    task_id = uuid.uuid4().hex
    farm.app.send_task(INSPECT, queue=queue, task_id=task_id, priority=0)
    result = farm.app.AsyncResult(task_id)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result.state == "SUCCESS":
            return {"live": True, **dict(result.result)}
        if result.state == "FAILURE":
            raise SubmitRefused("node", f"inspecting failed: {result.result}")
        time.sleep(0.1)
    farm.app.control.revoke(task_id)
    names = [node] if node else list(known)
    catalogs = farm.catalog.of(names)
    busy = {n: known[n].current_task for n in names if known[n].current_task}
    return {
        "live": False,
        "note": f"no answer within {timeout:g}s (busy: {busy or 'none'}); this is the catalog the node(s) published",
        "catalog": catalogs[0] if catalogs else {},
    }
