"""Output storage that fills up mid-write: a clear failure naming the path, and nothing left behind."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from farm_helpers import run, running_farm


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 2 MiB tmpfs: too small for a rendered file."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_storage_full_fails_clearly(tmp_path: Path, small_disk: Path) -> None:
    roots = f"{tmp_path / 'storage'},{small_disk}"
    with running_farm(tmp_path / "home", {"f-1": {}}, RESOLVE_FARM_STORAGE_ROOTS=roots, RESOLVE_SIM_FPS="2000") as (
        _local,
        farm,
    ):
        record = run(
            farm, {"project": "Demo", "timeline": "Social", "output_dir": str(small_disk), "output_name": "too_big"}
        )
        assert record.state == "failed"
        error = " ".join(record.errors)
        assert "No space left on device" in error and str(small_disk) in error, error
        assert list(small_disk.iterdir()) == []  # no partial file, not even under a temporary name
