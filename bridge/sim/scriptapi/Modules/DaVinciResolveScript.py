"""The simulator dressed as Resolve's own `DaVinciResolveScript` module.

Put this folder on `PYTHONPATH` (or point `RESOLVE_SCRIPT_API` at its parent) and a
third-party Resolve script runs unchanged against the simulator.
"""

import os
import sys

_root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
if _root not in sys.path:
    sys.path.append(_root)

from bridge.sim import scriptapp  # noqa: E402

__all__ = ["scriptapp"]
