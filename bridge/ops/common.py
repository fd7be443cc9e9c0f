"""What the operations share: a call Resolve may refuse for a moment, tried again.

Note: standard library only (see `bridge/__init__.py`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
RETRY_DELAYS = (0.2, 0.5, 1.0)  # modal dialogs and autosave make calls fail for a moment


def _retry(call: Callable[[], T], ok: Callable[[T], bool] = bool) -> T:
    result = call()
    for delay in RETRY_DELAYS:
        if ok(result):
            return result
        time.sleep(delay)
        result = call()
    return result
