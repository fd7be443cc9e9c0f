"""How to reach Resolve on this host: the bridge's own settings, validated with pydantic."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.sim.config import SimConfig

Mode = Literal["auto", "native", "subprocess", "sim"]


class BridgeSettings(BaseModel):
    """Where the scripting library is, which path to use, and how long calls may take.

    Note: `auto` tries native then subprocess and never picks `sim`; the simulator is only
    ever chosen by name.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Mode = "auto"
    script_lib: Path | None = Field(None, description="fusionscript library (RESOLVE_SCRIPT_LIB)")
    script_api: Path | None = Field(None, description="folder holding Modules/ (RESOLVE_SCRIPT_API)")
    python: str | None = Field(None, description="interpreter for the fallback helper (RESOLVE_PYTHON)")
    host: str | None = Field(None, description="Resolve on another machine (network scripting)")
    connect_timeout: float = Field(30.0, gt=0)
    call_timeout: float = Field(60.0, gt=0)
    poll_interval: float = Field(0.1, gt=0)
    sim: SimConfig = Field(default_factory=SimConfig.from_env)

    @classmethod
    def from_env(cls, **overrides: object) -> BridgeSettings:
        env = os.environ
        values: dict[str, object] = {
            "script_lib": env.get("RESOLVE_SCRIPT_LIB") or None,
            "script_api": env.get("RESOLVE_SCRIPT_API") or None,
            "python": env.get("RESOLVE_PYTHON") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)
