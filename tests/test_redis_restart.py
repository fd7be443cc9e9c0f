"""Redis restarted (embedded, append-only) while jobs are queued and running: nothing is lost."""

from __future__ import annotations

import time

from farm_helpers import running_farm

from orchestrator import jobs
from orchestrator.local.demo import verify

ENV = {"RESOLVE_SIM_FPS": "120", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "10"}


def test_redis_restart_loses_no_job(tmp_path) -> None:
    with running_farm(tmp_path, {"x-1": {}, "x-2": {}}, **ENV) as (local, farm):
        submitted = [jobs.submit_render(farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": f"r{i}"})
                     for i in range(4)]  # fmt: skip
        deadline = time.monotonic() + 30
        while not any(t.state == "running" for t in farm.store.get(submitted[0].id).tasks):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        queued = [r.id for r in submitted if farm.store.get(r.id).state == "queued"]
        assert queued, "some jobs should still be waiting when Redis goes down"
        local.restart_redis(down_for=2.0)
        started = time.monotonic()
        finals = [jobs.wait(farm, r.id, timeout=180) for r in submitted]
        recovery = time.monotonic() - started
        for final in finals:
            assert final.state == "succeeded", (
                final.id,
                final.errors,
                [(t.name, t.state, t.node) for t in final.tasks],
            )
            assert verify(final.outputs[0], final.plan)["exact"]
        print(f"recovered all {len(finals)} jobs {recovery:.1f}s after the restart")


def test_lost_messages_are_sent_again_by_the_janitor(tmp_path) -> None:
    import os
    import signal

    with running_farm(tmp_path, {"y-1": {}}, **ENV) as (local, farm):
        worker = local.workers["y-1"]
        os.killpg(worker.process.pid, signal.SIGSTOP)  # hold the node while we lose the messages
        try:
            record = jobs.submit_render(
                farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "output_name": "lost"}
            )
            for key in list(farm.redis.scan_iter("v1.render*")):
                if farm.redis.type(key) == "list":
                    farm.redis.delete(key)  # every message of the job is gone
        finally:
            os.killpg(worker.process.pid, signal.SIGCONT)
        final = jobs.wait(farm, record.id, timeout=120)
        assert final.state == "succeeded", final.errors
        assert verify(final.outputs[0], final.plan)["exact"]
