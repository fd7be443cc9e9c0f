"""The stitch proves its output by content: segments corrupted, swapped or doubled after their pieces
finished make it fail with a reason, and nothing appears under the final name."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from farm_helpers import running_farm

from orchestrator import jobs
from orchestrator.demo import verify
from orchestrator.models import JobRecord

ENV = {"RESOLVE_SIM_FPS": "4000", "RESOLVE_FARM_MIN_SEGMENT_FRAMES": "24"}


def _corrupt(files: list[Path]) -> None:
    data = bytearray(files[1].read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    files[1].write_bytes(bytes(data))


def _swap(files: list[Path]) -> None:
    temp = files[0].with_name("swap.tmp")
    os.replace(files[0], temp)
    os.replace(files[1], files[0])
    os.replace(temp, files[1])


def _double(files: list[Path]) -> None:
    shutil.copyfile(files[0], files[1])  # the first segment twice, the second missing


TAMPER: dict[str, tuple[Callable[[list[Path]], None], int]] = {
    "corrupt": (_corrupt, 1),  # the piece the stitch must name
    "swap": (_swap, 0),
    "double": (_double, 1),
}


def _segments_done(farm, job_id: str) -> JobRecord:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        record = farm.store.get(job_id)
        pieces = [t for t in record.tasks if t.kind == "segment"]
        if len(pieces) >= 2 and all(t.state == "done" for t in pieces):
            return record
        assert not record.finished, record.errors
        time.sleep(0.05)  # polling the record: the segments finish on other processes
    raise AssertionError("segments never finished")


@pytest.mark.parametrize("how", sorted(TAMPER))
def test_tampered_segments_fail_the_stitch(tmp_path, how: str) -> None:
    with running_farm(tmp_path, {"v-1": {}, "v-2": {}}, **ENV) as (local, farm):
        local.stop_worker("post")  # no stitch until the segments are tampered with
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "split": 3, "output_name": how})
        done = _segments_done(farm, record.id)
        pieces = sorted((t for t in done.tasks if t.kind == "segment"), key=lambda t: t.start or 0)
        assert all(t.details["video"]["packets"] == t.end - t.start + 1 for t in pieces)  # type: ignore[operator]
        files = [Path(str(t.output)) for t in pieces]
        TAMPER[how][0](files)
        local.add_worker("post", post=True, resolve=False)
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "failed"
        error = str(final.task("stitch").error)
        named = pieces[TAMPER[how][1]].name
        assert f"packets for {named} are not the ones {named} rendered" in error, error
        out = Path(final.plan.output + ".mov")
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.stem}.*partial*"))


def test_untouched_segments_stitch_and_record_digests(tmp_path) -> None:
    with running_farm(tmp_path, {"v-1": {}, "v-2": {}}, **ENV) as (_local, farm):
        record = jobs.submit_render(farm, {"project": "Demo", "timeline": "Main", "split": 3, "output_name": "ok"})
        final = jobs.wait(farm, record.id, timeout=90)
        assert final.state == "succeeded", final.errors
        pieces = [t for t in final.tasks if t.kind == "segment"]
        assert len(pieces) == 3
        assert len({t.details["video"]["digest"] for t in pieces}) == 3
        assert verify(str(Path(final.plan.output + ".mov")), final.plan)["exact"]
