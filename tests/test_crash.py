"""A simulated Resolve that crashes mid-render: in-process (the worker's pool process dies) and in
the fallback helper (the helper dies). Either way the segment is finished on another node."""

from __future__ import annotations

from typing import Any

import pytest
from farm_helpers import run, running_farm

from bridge.session import SIM_SCRIPT_API
from orchestrator.local.demo import verify

CRASHY: dict[str, Any] = {"tags": ["crash"], "env": {"RESOLVE_SIM_QUIRKS": "crash-at:0.3"}}


@pytest.mark.parametrize("bridge", ["sim", "subprocess"])
def test_crash_mid_render_is_survived(tmp_path, bridge: str) -> None:
    crashy = {**CRASHY, "bridge": bridge}
    steady = {"tags": ["crash"], "bridge": bridge}
    extra = {"RESOLVE_SCRIPT_API": str(SIM_SCRIPT_API)} if bridge == "subprocess" else {}
    with running_farm(tmp_path, {"crashy": crashy, "steady": steady}, RESOLVE_SIM_FPS="240", **extra) as (_local, farm):
        record = run(
            farm, {"project": "Demo", "timeline": "Teaser", "split": 2, "tags": ["crash"], "output_name": "crash"}
        )
        assert record.state == "succeeded", record.errors
        assert verify(record.outputs[0], record.plan)["exact"]
        pieces = [t for t in record.tasks if t.kind != "stitch"]
        assert all(t.node == "steady" for t in pieces)
        assert record.blocked_nodes.get("crashy", 0) >= 1
        assert any("crashy" in t.failed_on for t in pieces)
