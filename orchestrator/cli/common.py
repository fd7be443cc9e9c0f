"""What every `resolve-farm` command shares: refusals, settings and the farm handle."""

from __future__ import annotations

import json
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


def key_value(item: str, option: str) -> tuple[str, Any]:
    """A `KEY=VALUE` typed on the command line: the key, and the value as `json_or_text` reads it; an item that is
    not one is refused as `option`."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise Refused(option, f"{item!r}: want KEY=VALUE")
    return key, json_or_text(raw)


def json_or_text(raw: str) -> Any:
    """A value typed on the command line: JSON where it parses (numbers, true, lists, objects), else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw
