"""A farm upgraded with jobs in flight: records, speeds and costs written by the code before scheduling moved
to `orchestrator.pull` (commit 242dade) are read and carried on by today's; and live progress beside the record.

Real Redis (the embedded one), no workers: the store, the live progress and the lifecycle on records as
they are stored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from farm_helpers import farm_env

from orchestrator import kinds, lifecycle
from orchestrator.live import Report
from orchestrator.pull.pool import FramePool
from orchestrator.pull.sizing import Sizing
from orchestrator.pull.speeds import SpeedBook
from orchestrator.store import JobStore

FIXTURE = Path(__file__).parent / "fixtures" / "records" / "pulled_render_242dade.json"
JOB = "upgrade0000000001"
SPEED_KEY = "ProRes422HQ@1920x1080"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[JobStore]:
    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.settings import FarmSettings
    from orchestrator.store import connect

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        try:
            yield JobStore(connect(server.start()), retention=3600, models=kinds.records)
        finally:
            server.stop()


def stored_as_before(store: JobStore) -> dict:
    """The fixture record written the way the code of 242dade wrote it: the record, its indexes, the pulling set
    (and no control entry, no live reports); a node's speed as its SpeedBook wrote it."""
    body = json.loads(FIXTURE.read_text())
    pipe = store.redis.pipeline()
    pipe.set(store.key(JOB), json.dumps(body, separators=(",", ":")))
    pipe.zadd("rf:jobs", {JOB: body["created_at"]})
    pipe.sadd("rf:jobs:active", JOB).sadd("rf:jobs:kind:render", JOB).zadd("rf:jobs:state:running", {JOB: "+inf"})
    pipe.sadd("rf:jobs:pulling:5", JOB)
    pipe.hset("rf:speeds", f"n1|{SPEED_KEY}", json.dumps({"fps": 60.0, "start": 2.0, "firm": True}))
    pipe.execute()
    return body


def test_a_record_written_before_the_upgrade_is_read_and_carried_on(store: JobStore) -> None:
    before = stored_as_before(store)
    record = store.get(JOB)
    pool = record.schedule
    assert isinstance(pool, FramePool)
    # Fields added since are their defaults (an old record's start cost is blended, as then), the rest as written.
    assert pool.model_dump(mode="json", exclude={"start_measured", "reserve"}) == before["frame_pool"]
    assert pool.start_measured and pool.reserve == 0  # (no reserve: as the job was sized then)
    running = record.task("segment 1")
    assert (running.state, running.node, running.frames_done) == ("running", "n1", 120)
    assert running.first_frames == (1004.0, 60) and running.last_frames == (1005.0, 120)
    assert [r.id for r in store.list(kind="render")] == [JOB]
    assert store.live.control(JOB) == {}  # nothing written since: a worker reads the record instead
    from types import SimpleNamespace

    from tasks.base import _control

    assert _control(SimpleNamespace(store=store), JOB, "segment 1") == ("running", 1, None)  # type: ignore[arg-type]
    # Its running piece's reports go on: nothing tells it to stop before the record is written anew.
    assert store.live.report(JOB, "segment 1", Report("n1", 1, 1, 130, 900, (1004.0, 60), (1006.0, 130))).stop is None
    assert SpeedBook(store.redis).speeds(["n1"], SPEED_KEY) == {"n1": 60.0}

    # The next claim takes the frames after the pool's next, and the record is written in today's shape.
    piece = record.task("segment 2")
    written, outcome = store.apply(JOB, lambda rec: lifecycle.claim(
        rec, "segment 2", "n2", str(piece.celery_id), 1, (), ["n1", "n2"], context=Sizing({"n1": 60.0, "n2": 120.0})))  # fmt: skip
    taken = written.task("segment 2")
    assert outcome.verdict == "run" and taken.start == pool.next and written.schedule.next == taken.end + 1
    raw = json.loads(store.redis.get(store.key(JOB)))
    assert "frame_pool" not in raw and raw["schedule"]["next"] == taken.end + 1
    control = store.live.control(JOB)
    assert (control["state"], control["generation"]) == ("running", "1")
    assert json.loads(control["piece:segment 2"])["node"] == "n2"
    assert set(store.holders(5)[JOB]["holding"]) == {"n1", "n2"}


def test_reports_beside_the_record_count_for_their_attempt_only(store: JobStore) -> None:
    stored_as_before(store)
    record = store.get(JOB)
    piece = record.task("segment 2")
    store.apply(JOB, lambda rec: lifecycle.claim(rec, "segment 2", "n2", str(piece.celery_id), 1, (), ["n1", "n2"],
                                                 context=Sizing({"n1": 60.0, "n2": 120.0})))  # fmt: skip
    answer = store.live.report(JOB, "segment 2", Report("n2", 1, 1, 50, 500, (2000.0, 20), (2001.0, 50)))
    assert answer.stop is None and answer.job_progress == round(99 * 50 / 2880, 1)
    late = store.live.report(JOB, "segment 1", Report("n1", 1, 0, 900, 1000, (2000.0, 800), (2001.0, 900)))
    assert late.stop is None  # segment 1 still runs on n1 (the report's attempt is checked where it is read)
    record = store.get(JOB)
    assert record.task("segment 2").frames_done == 50 and record.task("segment 2").last_frames == (2001.0, 50)
    assert record.task("segment 1").frames_done == 120  # attempt 0 is not its running attempt (1): not counted
    elsewhere = store.live.report(JOB, "segment 2", Report("n9", 1, 1, 60, 500, (2000.0, 20), (2002.0, 60)))
    assert elsewhere.stop == "segment 2 is running on n2 now"
    assert elsewhere.job_progress == round(99 * 50 / 2880, 1)  # nor n9 (not segment 2's node) nor attempt 0 counts
    assert store.get(JOB).task("segment 2").frames_done == 50  # nor merged, nor did it overwrite n2's report
    store.apply(JOB, lambda rec: lifecycle.cancel_job(rec, 60.0))
    stopped = store.live.report(JOB, "segment 2", Report("n2", 1, 1, 70, 500, (2000.0, 20), (2003.0, 70)))
    assert stopped.stop == "the job ended: cancelled"
    assert JOB not in store.holders(5)  # a finished job holds nothing


def test_a_record_of_a_kind_no_one_registered_is_refused_by_name(store: JobStore) -> None:
    body = json.loads(FIXTURE.read_text())
    store.redis.set(store.key("stranger"), json.dumps({**body, "id": "stranger", "kind": "teleport"}))
    with pytest.raises(ValueError, match="unknown kind"):
        store.get("stranger")
