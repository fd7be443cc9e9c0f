"""Never replace an output unasked: a taken name refused at submit unless `overwrite`, a file that appears before the
stitch kept and the render written under the next free version (`orchestrator.outputs`)."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from farm_helpers import farm_env, queued_messages, running_farm, settle

from orchestrator import jobs
from orchestrator.kinds.base import OutputExists
from orchestrator.outputs import PLACED, next_version, place

SHORT = {"project": "Demo", "timeline": "Main", "frames": {"start": 86400, "end": 86495}, "split": 2}


def test_the_next_version_counts_on_from_the_name_and_passes_over_names_taken(tmp_path: Path) -> None:
    assert next_version(tmp_path / "Ad.mov").name == "Ad_v2.mov"
    (tmp_path / "Ad_v2.mov").write_bytes(b"")
    assert next_version(tmp_path / "Ad.mov").name == "Ad_v3.mov"
    assert next_version(tmp_path / "Master_v3.mov").name == "Master_v4.mov"  # a versioned name goes on counting
    assert next_version(tmp_path / "Ad.mov", taken={"Ad_v3.mov"}).name == "Ad_v4.mov"


@pytest.fixture
def client(tmp_path: Path):
    from orchestrator.local.redis_server import EmbeddedRedis
    from orchestrator.settings import FarmSettings
    from orchestrator.store import connect

    with farm_env(tmp_path):
        server = EmbeddedRedis(FarmSettings())
        try:
            yield connect(server.start())
        finally:
            server.stop()


def _finished(folder: Path, content: bytes) -> Path:
    temp = folder / f".partial-{len(content)}"
    temp.write_bytes(content)
    return temp


def test_a_file_is_placed_under_its_name_only_while_it_is_free_and_replaces_only_its_own(client, tmp_path) -> None:
    final = tmp_path / "Ad.mov"
    assert place(_finished(tmp_path, b"first"), final, False, client, "job1") == final
    assert final.read_bytes() == b"first" and json.loads(client.get(f"{PLACED}:job1"))["path"] == str(final)
    # Another job's render of the name: the first file stays, the second goes to the next free version.
    assert place(_finished(tmp_path, b"second"), final, False, client, "job2") == tmp_path / "Ad_v2.mov"
    assert final.read_bytes() == b"first" and (tmp_path / "Ad_v2.mov").read_bytes() == b"second"
    # job1's stitch again (a retry past the link, a second copy): its own file is replaced, no version made.
    assert place(_finished(tmp_path, b"first again"), final, False, client, "job1") == final
    assert final.read_bytes() == b"first again" and not (tmp_path / "Ad_v3.mov").exists()
    # A file put in its place since is not its own any more.
    final.unlink()
    final.write_bytes(b"someone else's")
    assert place(_finished(tmp_path, b"first, third"), final, False, client, "job1") == tmp_path / "Ad_v3.mov"
    assert final.read_bytes() == b"someone else's"
    # Asked to overwrite: replaced.
    assert place(_finished(tmp_path, b"asked"), final, True, client, "job3") == final and final.read_bytes() == b"asked"
    assert not list(tmp_path.glob(".partial-*"))  # no temporary file left behind


def test_where_the_file_system_has_no_hard_links_the_name_is_taken_by_an_exclusive_create(
    client, tmp_path, monkeypatch
) -> None:
    def no_links(src, dst) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    final = tmp_path / "Ad.mov"
    final.write_bytes(b"theirs")
    assert place(_finished(tmp_path, b"mine"), final, False, client, "job1") == tmp_path / "Ad_v2.mov"
    assert final.read_bytes() == b"theirs" and (tmp_path / "Ad_v2.mov").read_bytes() == b"mine"
    assert not list(tmp_path.glob(".partial-*"))


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("outputs")
    with running_farm(home, {"sim-1": {}, "sim-2": {}}) as (_local, farm):
        yield farm


def test_a_taken_name_is_refused_at_submit_naming_overwrite_and_replaced_when_asked(farm) -> None:
    root = farm.settings.storage_roots[0]
    (root / "taken.mov").write_bytes(b"an editor's file")
    settle(farm)
    before = (len(farm.store.list(limit=10_000)), queued_messages(farm))
    with pytest.raises(OutputExists) as refused:
        jobs.submit_render(farm, {**SHORT, "output_name": "taken"})
    assert refused.value.field == "overwrite" and refused.value.free == "taken_v2"
    assert str(root / "taken.mov") in str(refused.value) and "--overwrite" in str(refused.value)
    assert (len(farm.store.list(limit=10_000)), queued_messages(farm)) == before  # nothing queued
    # Another extension is another file: a ProRes render is not refused for an MP4 of the name.
    (root / "other.mp4").write_bytes(b"")
    assert jobs.submit_render(farm, {**SHORT, "output_name": "other"}).id
    # Outside the storage roots the name is never looked at: the confinement check answers first.
    with pytest.raises(jobs.SubmitRefused) as outside:
        jobs.submit_render(farm, {**SHORT, "output_dir": "/etc", "output_name": "passwd"})
    assert outside.value.field == "output_dir"
    record = jobs.wait(farm, jobs.submit_render(farm, {**SHORT, "output_name": "taken", "overwrite": True}).id, 120)
    assert record.state == "succeeded", record.errors
    assert record.outputs == [str(root / "taken.mov")] and (root / "taken.mov").read_bytes() != b"an editor's file"


def test_a_file_that_appears_before_the_stitch_is_kept_and_the_render_takes_the_next_version(farm) -> None:
    root = farm.settings.storage_roots[0]
    submitted = jobs.submit_render(farm, {**SHORT, "output_name": "late"})
    (root / "late.mov").write_bytes(b"written meanwhile")  # by someone else, after the submit's check
    record = jobs.wait(farm, submitted.id, timeout=120)
    assert record.state == "succeeded", record.errors
    assert (root / "late.mov").read_bytes() == b"written meanwhile"
    assert record.outputs == [str(root / "late_v2.mov")] and (root / "late_v2.mov").stat().st_size > 1000
    assert "late.mov existed; written as late_v2.mov" in record.task("stitch").details["renamed"]


def test_the_cli_refuses_a_taken_name_naming_overwrite_and_replaces_with_it(farm) -> None:
    root = farm.settings.storage_roots[0]
    (root / "cli.mov").write_bytes(b"kept")
    command = [sys.executable, "-m", "orchestrator.cli", "render", "Demo", "Main", "--start", "86400", "--end", "86447",
               "--name", "cli"]  # fmt: skip
    refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ.copy())
    assert refused.returncode != 0 and "overwrite" in refused.stderr and "--overwrite" in refused.stderr
    assert (root / "cli.mov").read_bytes() == b"kept"
    done = subprocess.run([*command, "--overwrite", "--wait"], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (root / "cli.mov").read_bytes() != b"kept"
