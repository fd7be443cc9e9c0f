"""The simulator dressed as Resolve's own `DaVinciResolveScript` module.

Put this folder on `PYTHONPATH` (or point `RESOLVE_SCRIPT_API` at its parent) and a
third-party Resolve script runs unchanged against the simulator.

It looks for the scripting library as Resolve's own module does: an importable
`fusionscript`, then the library `RESOLVE_SCRIPT_LIB` names (loaded as the extension module it
is), then its install location, which for the simulator is `bridge.sim` itself. So a helper
started for the native path loads the same library the native path does.
"""

import importlib.machinery
import importlib.util
import os
import sys
from typing import Any

_root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))
if _root not in sys.path:
    sys.path.append(_root)


def _load_library(path: str) -> Any:
    loader = importlib.machinery.ExtensionFileLoader("fusionscript", path)
    spec = importlib.util.spec_from_file_location("fusionscript", path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


_module: Any = None
try:
    import fusionscript as _module
except ImportError:
    _lib = os.environ.get("RESOLVE_SCRIPT_LIB")
    if _lib and os.path.isfile(_lib):
        try:
            _module = _load_library(_lib)
        except ImportError:
            _module = None  # as Resolve's module does: on to the install location
if _module is None:
    from bridge import sim as _module

scriptapp = _module.scriptapp

__all__ = ["scriptapp"]
