"""What every `resolve-farm` command shares: refusals, settings and the farm handle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.refusals import Refused, validation_errors

BRIDGE_MODES = ("auto", "native", "subprocess", "sim")


def load_settings(**overrides: Any) -> Any:
    from orchestrator.settings import FarmSettings

    try:
        return FarmSettings(**overrides)
    except ValidationError as exc:
        raise Refused("settings", validation_errors(exc)) from None


def connect_farm() -> Any:
    from orchestrator.farm import Farm

    return Farm(load_settings())


def farm_home() -> Path:
    from orchestrator.settings import default_home

    explicit = os.environ.get("RESOLVE_FARM_HOME")
    return Path(explicit) if explicit else default_home()
