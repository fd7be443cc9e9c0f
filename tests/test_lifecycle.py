"""The lifecycle's transitions, one by one, on records in memory: no Redis, no Celery."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from orchestrator import lifecycle
from orchestrator.kinds.base import record_model
from orchestrator.models import ASK, JobRecord, Placement, TaskRecord
from orchestrator.rules import KindRules


class Spec(BaseModel):
    what: str = "x"


class Plan(BaseModel):
    pieces: int = 0


Job = JobRecord[Spec, Plan]
NODES = ["a", "b", "c"]


def job(fail_fast: bool = True, max_attempts: int = 2, tags: tuple[str, ...] = ()) -> Job:
    """Two segments and a stitch that waits for both, submitted."""
    where = Placement(pool="render", tags=tags)
    record = Job(
        kind="test", spec=Spec(), plan=Plan(pieces=3), max_attempts=max_attempts, fail_fast=fail_fast,
        tasks=[
            TaskRecord(name="s1", kind="segment", task="t.seg", placement=where, frames_total=10),
            TaskRecord(name="s2", kind="segment", task="t.seg", placement=where, frames_total=10),
            TaskRecord(name="join", kind="stitch", task="t.join", placement=Placement(pool="post"),
                       after=["s1", "s2"], job_state="stitching", final=True),
        ],
    )  # fmt: skip
    lifecycle.submit(record)
    return record


def claim(record: Job, name: str, node: str = "a", tags: tuple[str, ...] = (), **kw: Any) -> lifecycle.Outcome:
    piece = record.task(name)
    return lifecycle.claim(
        record, name, node, kw.pop("message", piece.celery_id), kw.pop("generation", record.generation),
        tags, kw.pop("candidates", NODES), **kw,
    )  # fmt: skip


def done(record: Job, name: str, node: str = "a", **kw: Any) -> lifecycle.Outcome:
    return lifecycle.piece_done(record, name, node, record.generation, output=f"/out/{name}", **kw)


def test_submit_sends_what_waits_for_nothing() -> None:
    record = job()
    assert [t.state for t in record.tasks] == ["pending", "pending", "waiting"]
    assert record.task("s1").celery_id and record.task("s1").celery_id != record.task("s2").celery_id
    assert record.task("join").celery_id is None


def test_claim_runs_the_piece_and_starts_the_job() -> None:
    record = job()
    outcome = claim(record, "s1", "b")
    piece = record.task("s1")
    assert outcome.verdict == "run" and piece.state == "running" and piece.node == "b" and piece.attempts == 1
    assert record.state == "running" and record.started_at is not None


@pytest.mark.parametrize(
    "change,reason",
    [
        (lambda r: setattr(r, "state", "cancelled"), "the job is cancelled"),
        (lambda r: setattr(r, "cancel_requested", True), "the job is queued"),
        (lambda r: setattr(r.task("s1"), "state", "done"), "done already"),
        (lambda r: setattr(r.task("s1"), "celery_id", "another"), "another message"),
    ],
)
def test_claim_skips_what_is_not_its_to_run(change: Any, reason: str) -> None:
    record = job()
    message = record.task("s1").celery_id
    change(record)
    outcome = claim(record, "s1", message=message)
    assert outcome.verdict == "skip" and reason in outcome.reason
    assert record.task("s1").attempts == 0


def test_claim_of_an_older_generation_changes_nothing() -> None:
    record = job()
    record.generation = 2
    before = record.model_dump()
    outcome = claim(record, "s1", generation=1)
    assert outcome.verdict == "skip" and "generation 1" in outcome.reason and record.model_dump() == before


def test_a_waiting_piece_is_never_claimed() -> None:
    record = job()
    record.task("join").celery_id = "m"
    assert claim(record, "join", message="m").verdict == "skip"


def test_a_piece_left_running_by_a_dead_worker_counts_against_that_node() -> None:
    record = job()
    claim(record, "s1", "a")
    outcome = claim(record, "s1", "b")  # the lock was free: a's worker died
    piece = record.task("s1")
    assert outcome.verdict == "run" and outcome.lost_on == "a"
    assert piece.failed_on == ["a"] and record.blocked_nodes == {"a": 1} and piece.node == "b" and piece.attempts == 2


def test_a_piece_given_back_by_a_stopping_worker_is_sent_again_uncounted() -> None:
    record = job(max_attempts=1)
    claim(record, "s1", "a")
    old = record.task("s1").celery_id
    lifecycle.progress(record, "s1", "a", 4, 10)
    outcome = lifecycle.piece_given_back(record, "s1", "a", record.generation, "the worker on a is stopping")
    piece = record.task("s1")
    assert outcome.verdict == "move" and [s.piece for s in outcome.send] == ["s1"] and piece.celery_id != old
    assert piece.state == "pending" and piece.node is None and piece.attempts == 0 and piece.frames_done == 0
    assert not piece.failed_on and not record.blocked_nodes  # not the node's failure
    assert claim(record, "s1", "a").verdict == "run"  # the one attempt allowed is still there, on any node
    stale = lifecycle.piece_given_back(record, "s1", "b", record.generation, "another node's late word")
    assert stale.verdict == "stale" and record.task("s1").node == "a"


def test_a_dead_worker_on_the_last_attempt_fails_the_job() -> None:
    record = job(max_attempts=1)
    claim(record, "s1", "a")
    outcome = claim(record, "s1", "b")
    assert outcome.verdict == "failed" and outcome.lost_on == "a" and outcome.count_failure
    assert record.state == "failed" and "lost during attempt 1" in record.errors[0]
    assert record.task("s2").state == "cancelled" and record.task("s2").celery_id in outcome.revoke


def test_a_node_without_the_tags_hands_the_piece_on() -> None:
    record = job(tags=("gpu",))
    old = record.task("s1").celery_id
    outcome = claim(record, "s1", "a", tags=(), candidates=["a", "b"])
    assert outcome.verdict == "move" and outcome.send == [lifecycle.Send("s1", "b")]
    assert record.task("s1").state == "pending" and record.task("s1").celery_id != old


def test_a_node_without_the_tags_never_runs_it_even_alone() -> None:
    record = job(tags=("gpu",))
    outcome = claim(record, "s1", "a", tags=(), candidates=["a"])
    assert outcome.verdict == "wait" and record.task("s1").state == "pending"
    assert claim(record, "s1", "a", tags=("gpu",)).verdict == "run"


def test_a_node_that_failed_the_piece_leaves_it_to_another_unless_none_can() -> None:
    record = job(max_attempts=3)
    claim(record, "s1", "a")
    lifecycle.piece_failed(record, "s1", "a", 1, "boom", NODES)
    assert claim(record, "s1", "a").verdict == "move"
    assert claim(record, "s1", "a", candidates=["a"]).verdict == "run"  # better late than never


def test_progress_counts_frames_and_says_when_to_stop() -> None:
    record = job()
    claim(record, "s1", "a")
    assert lifecycle.progress(record, "s1", "a", 4, 10).stop is False and record.task("s1").frames_done == 4
    lifecycle.progress(record, "s1", "a", 8, 10)
    # Its speed is measured between its first and its latest report.
    assert record.task("s1").first_frames is not None and record.task("s1").last_frames is not None
    assert (record.task("s1").first_frames[1], record.task("s1").last_frames[1]) == (4, 8)
    record.refresh_progress()
    before = record.progress
    claim(record, "join", "post", message=None)  # not ready: skipped, nothing counted
    record.task("s2").frames_total = 0  # a piece compiled without frames (an audio pass) ...
    claim(record, "s2", "b")
    lifecycle.progress(record, "s2", "b", 360, 360)  # ... reports the frames it renders
    record.refresh_progress()
    assert record.task("s2").frames_total == 0 and record.progress >= before  # the job's progress never goes back
    assert lifecycle.progress(record, "s1", "b", 6, 10).stop is True  # not b's piece
    record.cancel_requested = True
    assert lifecycle.progress(record, "s1", "a", 9, 10).stop is True and record.task("s1").frames_done == 8


def test_done_pieces_make_their_dependents_ready_and_the_last_one_finishes_the_job() -> None:
    record = job()
    claim(record, "s1", "a")
    claim(record, "s2", "b")
    assert done(record, "s1", "a").send == [] and record.task("join").state == "waiting"
    outcome = done(record, "s2", "b")
    assert outcome.send == [lifecycle.Send("join")] and record.task("join").state == "pending"
    assert record.task("join").celery_id and record.state == "running"
    claim(record, "join", "post")
    assert record.state == "stitching"
    done(record, "join", "post")
    assert record.state == "succeeded" and record.outputs == ["/out/join"] and record.errors == []


def test_a_late_done_from_a_superseded_attempt_is_stale() -> None:
    record = job()
    claim(record, "s1", "a")
    claim(record, "s1", "b")  # a was declared lost; b runs it now
    assert done(record, "s1", "a").verdict == "stale" and record.task("s1").state == "running"
    record.generation = 2
    assert lifecycle.piece_done(record, "s1", "b", 1).verdict == "stale" and record.task("s1").state == "running"


def test_a_failure_is_retried_elsewhere_with_a_new_message() -> None:
    record = job()
    claim(record, "s1", "a")
    old = record.task("s1").celery_id
    outcome = lifecycle.piece_failed(record, "s1", "a", 1, "GPU memory full", NODES)
    piece = record.task("s1")
    assert outcome.verdict == "retry" and outcome.send == [lifecycle.Send("s1", "b")] and outcome.count_failure
    assert piece.state == "pending" and piece.celery_id != old and piece.failed_on == ["a"]
    assert record.blocked_nodes == {"a": 1} and record.state == "running"


def test_the_failure_that_ends_the_job_is_counted_and_a_hang_marks_the_host() -> None:
    record = job(max_attempts=1)
    claim(record, "s1", "a")
    outcome = lifecycle.piece_failed(record, "s1", "a", 1, "hung", NODES, hung=True)
    assert outcome.verdict == "failed" and outcome.count_failure
    assert outcome.unhealthy is not None and "hung" in outcome.unhealthy
    assert record.state == "failed" and record.errors == ["s1 failed on a: hung (after 1 attempt(s))"]
    assert record.task("join").state == "skipped" and record.task("s2").state == "cancelled"


def test_a_permanent_failure_gives_up_at_once() -> None:
    record = job(max_attempts=5)
    claim(record, "s1", "a")
    assert lifecycle.piece_failed(record, "s1", "a", 1, "bad ops", NODES, permanent=True).verdict == "failed"
    assert record.state == "failed"


def test_without_fail_fast_the_others_finish_and_the_job_settles_failed() -> None:
    record = job(fail_fast=False, max_attempts=1)
    claim(record, "s1", "a")
    claim(record, "s2", "b")
    lifecycle.piece_failed(record, "s1", "a", 1, "refused", NODES)
    assert record.state == "running" and record.task("s2").state == "running"
    done(record, "s2", "b")
    assert record.state == "failed" and record.errors == ["s1: refused"] and record.outputs == []


def test_a_failure_reported_after_the_job_ended_changes_nothing() -> None:
    record = job()
    claim(record, "s1", "a")
    lifecycle.cancel_job(record, cleanup_after=60)
    outcome = lifecycle.piece_failed(record, "s1", "a", 1, "late", NODES)
    assert outcome.verdict == "stale" and not outcome.count_failure and record.task("s1").failed_on == []
    assert record.task("s1").state == "cancelled" and record.state == "cancelled"


def test_a_piece_done_after_the_job_ended_is_kept_for_a_retry_but_a_final_output_is_not() -> None:
    record = job()
    claim(record, "s1", "a")
    claim(record, "s2", "b")
    done(record, "s2", "b")
    lifecycle.cancel_job(record, cleanup_after=60)
    outcome = done(record, "s1", "a")
    assert outcome.verdict == "done" and outcome.send == [] and record.task("s1").state == "done"
    assert record.state == "cancelled" and record.task("join").state == "cancelled"
    record = job()
    for name in ("s1", "s2"):
        claim(record, name, "a")
        done(record, name, "a")
    claim(record, "join", "post")
    lifecycle.cancel_job(record, cleanup_after=60)
    assert done(record, "join", "post").verdict == "stale" and record.task("join").state == "cancelled"
    assert record.state == "cancelled" and record.outputs == []


def test_cancel_stops_what_has_not_started_and_schedules_the_cleanup() -> None:
    record = job()
    claim(record, "s1", "a")
    pending = record.task("s2").celery_id
    outcome = lifecycle.cancel_job(record, cleanup_after=60, now=1000.0)
    assert record.state == "cancelled" and record.cancel_requested and record.cleanup_at == 1060.0
    assert outcome.revoke == [pending]
    assert [t.state for t in record.tasks] == ["running", "cancelled", "cancelled"]
    assert lifecycle.piece_cancelled(record, "s1", "a", 1).verdict == "cancelled"
    assert lifecycle.cancel_job(record, 60).verdict == "skip"


def test_retry_runs_again_only_what_is_not_done_as_the_next_generation() -> None:
    record = job(max_attempts=1)
    claim(record, "s1", "a")
    done(record, "s1", "a")
    claim(record, "s2", "b")
    lifecycle.piece_failed(record, "s2", "b", 1, "boom", NODES)
    outcome = lifecycle.retry_job(record)
    assert record.generation == 2 and record.state == "queued" and record.errors == []
    assert record.task("s1").state == "done" and record.task("s1").output == "/out/s1"
    assert record.task("s2").state == "pending" and record.task("s2").attempts == 0
    assert record.task("join").state == "waiting" and outcome.send == [lifecycle.Send("s2")]
    assert record.blocked_nodes == {}
    with pytest.raises(ValueError, match="only failed or cancelled"):
        lifecycle.retry_job(record)


def test_discard_acts_only_on_its_own_cancelled_generation() -> None:
    record = job()
    claim(record, "s1", "a")
    done(record, "s1", "a")
    lifecycle.cancel_job(record, cleanup_after=0)
    lifecycle.retry_job(record)  # generation 2, keeps s1
    assert lifecycle.discard(record, 1).verdict == "skip" and record.task("s1").state == "done"
    lifecycle.cancel_job(record, cleanup_after=0)
    assert lifecycle.discard(record, 1).verdict == "skip"  # generation 1's cleanup never touches generation 2
    assert lifecycle.discard(record, 2).verdict == "discard"
    assert record.task("s1").state == "cancelled" and record.cleanup_at is None


def test_resend_only_what_nothing_changed() -> None:
    record = job()
    old = record.task("s1").celery_id
    assert lifecycle.resend(record, "s1", "not-the-current-one").verdict == "skip"
    outcome = lifecycle.resend(record, "s1", old)
    assert outcome.send == [lifecycle.Send("s1")] and record.task("s1").celery_id != old


# --- jobs that wait for jobs --------------------------------------------------------------


def after_job(upstream: dict[str, str]) -> tuple[Job, lifecycle.Outcome]:
    """The two segments and the stitch, submitted to run after the jobs in `upstream` (id -> state seen)."""
    record = Job(
        kind="test", spec=Spec(), plan=Plan(pieces=3), max_attempts=2, after=list(upstream),
        tasks=[
            TaskRecord(name="s1", kind="segment", task="t.seg", frames_total=10),
            TaskRecord(name="s2", kind="segment", task="t.seg", frames_total=10),
            TaskRecord(name="join", kind="stitch", task="t.join", placement=Placement(pool="post"),
                       after=["s1", "s2"], job_state="stitching", final=True),
        ],
    )  # fmt: skip
    return record, lifecycle.submit(record, upstream)


def test_a_job_after_unfinished_jobs_waits_whole_and_sends_nothing() -> None:
    record, outcome = after_job({"up1": "running", "up2": "succeeded"})
    assert record.state == "waiting" and record.waiting_on == ["up1"]
    assert [t.state for t in record.tasks] == ["waiting"] * 3 and outcome.send == []
    assert all(t.celery_id is None for t in record.tasks)
    skipped = claim(record, "s1")
    assert skipped.verdict == "skip" and "job(s) up1" in skipped.reason and record.task("s1").state == "waiting"


def test_a_job_after_succeeded_jobs_queues_at_once() -> None:
    record, outcome = after_job({"up1": "succeeded"})
    assert record.state == "queued" and record.waiting_on == []
    assert outcome.send == [lifecycle.Send("s1"), lifecycle.Send("s2")]


def test_it_queues_when_the_last_job_it_runs_after_succeeds() -> None:
    record, _ = after_job({"up1": "running", "up2": "queued"})
    first = lifecycle.upstream_finished(record, "up1", "succeeded", "", 60)
    assert first.verdict == "wait" and record.state == "waiting" and record.waiting_on == ["up2"]
    assert first.send == [] and record.task("s1").state == "waiting"
    last = lifecycle.upstream_finished(record, "up2", "succeeded", "", 60)
    assert record.state == "queued" and last.send == [lifecycle.Send("s1"), lifecycle.Send("s2")]
    assert [t.state for t in record.tasks] == ["pending", "pending", "waiting"]
    again = lifecycle.upstream_finished(record, "up2", "succeeded", "", 60)  # told twice: nothing more
    assert again.verdict == "skip" and again.send == []


@pytest.mark.parametrize(
    "state,said", [("failed", "failed: s3: GPU memory full"), ("cancelled", "was cancelled"), ("gone", "is gone")]
)
def test_it_is_cancelled_naming_the_job_that_did_not_succeed_and_why(state: str, said: str) -> None:
    record, _ = after_job({"up1": "succeeded", "up2": "running"})
    outcome = lifecycle.upstream_finished(record, "up2", state, "s3: GPU memory full" if state == "failed" else "",
                                          cleanup_after=60, now=1000.0)  # fmt: skip
    assert outcome.verdict == "cancelled" and record.state == "cancelled" and record.finished_at == 1000.0
    assert record.errors == [outcome.reason] and "job up2" in outcome.reason and said in outcome.reason
    assert [t.state for t in record.tasks] == ["cancelled"] * 3 and outcome.send == [] and outcome.revoke == []


def test_an_upstream_job_still_running_changes_nothing() -> None:
    record, _ = after_job({"up1": "queued"})
    assert lifecycle.upstream_finished(record, "up1", "running", "", 60).verdict == "skip"
    assert record.state == "waiting" and record.waiting_on == ["up1"]


def test_a_cancelled_waiting_job_is_told_nothing_more() -> None:
    record, _ = after_job({"up1": "queued"})
    lifecycle.cancel_job(record, 60)
    assert record.state == "cancelled" and [t.state for t in record.tasks] == ["cancelled"] * 3
    assert lifecycle.upstream_finished(record, "up1", "succeeded", "", 60).verdict == "skip"
    assert record.state == "cancelled"


def test_a_retry_waits_again_only_for_what_it_had_not_seen_succeed() -> None:
    record, _ = after_job({"up1": "succeeded", "up2": "running"})
    lifecycle.upstream_finished(record, "up2", "failed", "boom", 60)
    with pytest.raises(ValueError, match="job up2, which is failed: retry job up2 first"):
        lifecycle.retry_job(record, {"up2": "failed"})
    with pytest.raises(ValueError, match="job up2, which is gone"):
        lifecycle.retry_job(record, {})
    assert record.state == "cancelled" and record.generation == 1  # a refused retry changed nothing
    outcome = lifecycle.retry_job(record, {"up2": "queued"})  # up2 retried first: wait for it again
    assert record.state == "waiting" and record.waiting_on == ["up2"] and outcome.send == []
    assert record.generation == 2 and record.errors == [] and [t.state for t in record.tasks] == ["waiting"] * 3
    lifecycle.upstream_finished(record, "up2", "succeeded", "", 60)
    assert record.state == "queued" and record.task("s1").state == "pending"


def test_a_retry_after_the_upstream_succeeded_queues_at_once() -> None:
    record, _ = after_job({"up1": "running"})
    lifecycle.cancel_job(record, 60)
    outcome = lifecycle.retry_job(record, {"up1": "succeeded"})
    assert record.state == "queued" and record.waiting_on == [] and len(outcome.send) == 2


def test_a_retry_with_nothing_left_to_run_settles_at_once() -> None:
    """A cancelled edit whose pieces all finished late: retried, it has succeeded (jobs after it may go)."""
    record = Job(kind="test", spec=Spec(), plan=Plan(pieces=2), fail_fast=False,
                 tasks=[TaskRecord(name="t1", kind="edit", task="t.edit"),
                        TaskRecord(name="t2", kind="edit", task="t.edit")])  # fmt: skip
    lifecycle.submit(record)
    for name in ("t1", "t2"):
        claim(record, name, "a")
    lifecycle.cancel_job(record, 60)
    assert done(record, "t1", "a").verdict == done(record, "t2", "a").verdict == "done"  # late work, kept
    outcome = lifecycle.retry_job(record)
    assert record.state == "succeeded" and outcome.send == [] and record.finished_at is not None


# --- a kind's rules: the hooks the transitions call, with a test kind ------------------------


class Steering(KindRules):
    """A test kind's rules: each hook says what `said` tells it to, and notes that it was called."""

    def __init__(self, **said: Any) -> None:
        self.said = said
        self.calls: list[str] = []

    def _say(self, hook: str) -> Any:
        self.calls.append(hook)
        return self.said.get(hook)

    def before_claim(self, record: Any, piece: TaskRecord, now: float) -> lifecycle.Outcome | None:
        return self._say("before_claim")

    def on_claim(self, record: Any, piece: TaskRecord, node: str, candidates: Any, context: Any, now: float) -> Any:
        said = self._say("on_claim")
        if said == "shape":  # the kind gives the piece its range, from the context it read
            piece.start, piece.end, piece.frames_total = context["start"], context["end"], 5
            return None
        return said

    def stop(self, record: Any, piece: TaskRecord) -> str | None:
        return self._say("stop")

    def before_done(self, record: Any, piece: TaskRecord, now: float) -> lifecycle.Outcome | None:
        return self._say("before_done")

    def on_done(self, record: Any, piece: TaskRecord, node: str, context: Any, now: float) -> list[lifecycle.Send]:
        return self._say("on_done") or []

    def before_failure(self, record: Any, piece: TaskRecord, node: str, error: str, now: float) -> Any:
        return self._say("before_failure")

    def retried(self, record: Any, piece: TaskRecord) -> bool:
        self.calls.append("retried")
        return piece.name not in self.said.get("retried", ())

    def eta(self, record: Any, done: int, left: int, now: float) -> float | None:
        self.calls.append("eta")
        return self.said.get("eta", super().eta(record, done, left, now))


def steered(**said: Any) -> tuple[Any, Steering]:
    rules = Steering(**said)
    model = record_model("steered", Spec, Plan, rules=rules)
    base = job()
    return model.model_validate({**base.model_dump(), "kind": "steered"}), rules


def test_without_rules_of_its_own_a_kind_follows_the_generic_ones() -> None:
    record = job()
    assert type(record).rules.before_claim(record, record.task("s1"), 0.0) is None
    assert claim(record, "s1").verdict == "run" and record.task("s1").state == "running"


def test_a_kinds_rule_at_claim_runs_after_the_generic_checks_and_may_end_the_claim() -> None:
    record, rules = steered(before_claim=lifecycle.Outcome("skip", "not needed now"))
    record.generation = 2  # a message of an older generation: the generic rule answers first
    assert claim(record, "s1", generation=1).verdict == "skip" and rules.calls == []
    record.generation = 1
    out = claim(record, "s1")
    assert (out.verdict, out.reason) == ("skip", "not needed now") and record.task("s1").state == "pending"
    assert rules.calls == ["before_claim"]


def test_a_kinds_rule_shapes_a_claimed_piece_from_its_context_once_the_node_may_run_it() -> None:
    record, rules = steered(on_claim="shape")
    out = claim(record, "s1", tags=(), context={"start": 10, "end": 14})
    piece = record.task("s1")
    assert out.verdict == "run" and (piece.state, piece.start, piece.end, piece.frames_total) == ("running", 10, 14, 5)
    record, rules = steered(on_claim="shape")
    record.blocked_nodes["z"] = lifecycle.BLOCK_AFTER  # a node kept off the job: the generic rule moves it first
    assert claim(record, "s1", node="z", candidates=["b"]).verdict == "move" and "on_claim" not in rules.calls
    record, rules = steered(on_claim=lifecycle.Outcome("run", send=[lifecycle.Send("s2", "b")]))
    out = claim(record, "s1")
    assert out.verdict == "run" and out.send == [lifecycle.Send("s2", "b")]
    record, rules = steered(on_claim=lifecycle.Outcome("move", "not here", send=[lifecycle.Send("s1")]))
    out = claim(record, "s1")
    assert out.verdict == "move" and record.task("s1").state == "pending"


def test_a_kinds_rule_is_not_asked_for_a_node_that_lacks_the_pieces_tags() -> None:
    rules = Steering(on_claim="shape")
    model = record_model("steered", Spec, Plan, rules=rules)
    record = model.model_validate({**job(tags=("gpu",)).model_dump(), "kind": "steered"})
    assert claim(record, "s1", node="a", tags=(), candidates=["b"]).verdict == "move"
    assert rules.calls == ["before_claim"]


def test_a_kinds_stop_rule_stops_a_running_piece_through_its_progress() -> None:
    record, _ = steered(stop="a faster copy finished it")
    claim(record, "s1")
    out = lifecycle.progress(record, "s1", "a", 4, 10)
    assert out.stop and out.reason == "a faster copy finished it" and record.task("s1").frames_done == 0


def test_a_kinds_rules_at_a_piece_done_may_refuse_it_or_send_more() -> None:
    record, rules = steered(before_done=lifecycle.Outcome("stale", "not wanted"))
    claim(record, "s1")
    assert done(record, "s1").verdict == "stale" and record.task("s1").state == "running"
    record, rules = steered(on_done=[lifecycle.Send("s2", "c")])
    claim(record, "s1")
    out = done(record, "s1")
    assert out.verdict == "done" and out.send == [lifecycle.Send("s2", "c")] and record.task("s1").state == "done"
    assert rules.calls[-2:] == ["before_done", "on_done"]


def test_a_kinds_rule_at_a_failure_ends_it_its_own_way_and_keeps_the_hang() -> None:
    record, _ = steered(before_failure=lifecycle.Outcome("stale", "a spare"))
    claim(record, "s1")
    out = lifecycle.piece_failed(record, "s1", "a", record.generation, "boom", NODES, hung=True)
    assert out.verdict == "stale" and out.unhealthy and record.task("s1").attempts == 1
    assert record.blocked_nodes == {}  # the generic rule did not count it


def test_a_kinds_rule_at_retry_keeps_a_piece_out_of_the_next_generation() -> None:
    record, _ = steered(retried=("s2",))
    claim(record, "s1")
    lifecycle.piece_failed(record, "s1", "a", record.generation, "boom", NODES, permanent=True)
    assert record.state == "failed"
    lifecycle.retry_job(record)
    assert record.task("s1").state == "pending" and record.task("s2").state == "cancelled"


def test_a_kinds_eta_is_what_the_record_shows() -> None:
    record, rules = steered(eta=42.0)
    claim(record, "s1")
    record.task("s1").frames_done = 5
    record.refresh_progress(now=1.0)
    assert record.eta_seconds == 42.0 and "eta" in rules.calls


def asking_job(after_segment: bool = False) -> tuple[Job, lifecycle.Outcome]:
    """A confirmation with two questions before a segment (or after one), submitted."""
    where = Placement(pool="render")
    ask = TaskRecord(name="confirm", kind=ASK, placement=Placement(pool="post"), after=["s0"] if after_segment else [],
                     params={"questions": {"go": "Change 12,000 items?", "again": "Really?"}})  # fmt: skip
    pieces = [ask, TaskRecord(name="s1", kind="segment", task="t.seg", placement=where, after=["confirm"])]
    if after_segment:
        pieces.insert(0, TaskRecord(name="s0", kind="segment", task="t.seg", placement=where))
    record = Job(kind="test", spec=Spec(), plan=Plan(pieces=len(pieces)), tasks=pieces)
    return record, lifecycle.submit(record)


YES = {"action": "accept", "content": {"confirm": True}}


def test_a_piece_that_asks_waits_for_every_answer_then_what_waited_for_it_runs() -> None:
    record, submitted = asking_job()
    assert record.state == "input_required" and record.task("confirm").state == "asking"
    assert submitted.send == [] and record.task("confirm").celery_id is None  # nothing for a worker
    partial = lifecycle.answer(record, {"go": YES, "unasked": {"action": "accept"}})  # a key nobody asked: ignored
    assert partial.send == [] and record.state == "input_required" and record.task("confirm").state == "asking"
    assert record.task("confirm").details["answers"] == {"go": YES}
    answered = lifecycle.answer(record, {"again": YES, "go": {"action": "decline"}})  # an answer is final
    assert [s.piece for s in answered.send] == ["s1"] and record.task("confirm").state == "done"
    assert record.state == "queued" and record.task("confirm").details["answers"]["go"] == YES
    # Reached later (after a segment): asked then, the job shows it while the segment's successor waits.
    later, _ = asking_job(after_segment=True)
    assert later.state == "queued" and later.task("confirm").state == "waiting"
    claim(later, "s0")
    done(later, "s0")
    assert later.state == "input_required" and later.task("confirm").state == "asking"


@pytest.mark.parametrize(
    "answer", [{"action": "decline"}, {"action": "cancel"}, {"action": "accept", "content": {"confirm": False}}]
)
def test_an_answer_other_than_yes_cancels_the_job_naming_the_question(answer: dict[str, Any]) -> None:
    record, _ = asking_job()
    outcome = lifecycle.answer(record, {"go": answer})
    assert outcome.verdict == "cancelled" and record.state == "cancelled" and record.finished
    assert record.errors == ["confirm: not confirmed: Change 12,000 items?"]
    assert {t.name: t.state for t in record.tasks} == {"confirm": "cancelled", "s1": "cancelled"}
    assert lifecycle.answer(record, {"again": YES}).verdict == "skip"  # over: nothing more to answer


def test_a_cancel_while_asking_cancels_the_question() -> None:
    record, _ = asking_job()
    lifecycle.cancel_job(record, cleanup_after=60)
    assert record.state == "cancelled" and record.task("confirm").state == "cancelled"
