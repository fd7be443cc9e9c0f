"""The post worker dies mid-stitch: no partial file ever shows under the final name; the stitch runs again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from farm_helpers import running_farm

from orchestrator import jobs
from orchestrator.local.demo import verify

ENV = {"RESOLVE_SIM_FPS": "4000", "RESOLVE_FARM_VISIBILITY_TIMEOUT": "12", "RESOLVE_FARM_RENDER_TIME_LIMIT": "10",
       "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24"}  # fmt: skip


def test_post_worker_killed_mid_stitch(tmp_path) -> None:
    with running_farm(tmp_path, {"p-1": {}, "p-2": {}}, **ENV) as (local, farm):
        for attempt in range(5):
            # Many segments make a stitch long enough to be caught in the act.
            record = jobs.submit_render(
                farm, {"project": "Demo", "timeline": "Main", "split": 100, "output_name": f"s{attempt}"}
            )
            final = Path(record.plan.output + ".mov")
            caught = False
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                current = farm.store.get(record.id)
                if current.task("stitch").state == "running":
                    os.killpg(local.workers["post"].process.pid, signal.SIGKILL)
                    local.workers.pop("post").process.wait()
                    caught = not final.exists()
                    break
                if current.finished:
                    break
                time.sleep(0.002)
            if caught:
                break
            if "post" not in local.workers:
                local.add_worker("post", post=True, resolve=False)
                local.wait_ready(["post"])
        assert caught, "never caught a stitch in the act"
        assert not final.exists()  # nothing under the final name while the stitch was cut short
        local.add_worker("post", post=True, resolve=False)  # a post worker comes back
        done = jobs.wait(farm, record.id, timeout=120)
        assert done.state == "succeeded", done.errors
        assert done.task("stitch").attempts >= 2
        assert verify(str(final), done.plan)["exact"]
        assert not list(final.parent.glob(f".{final.stem}.*partial*"))  # the cut-short attempt left nothing
