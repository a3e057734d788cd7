"""fter-tvm: compile fully ternary Vision Transformers for the ESP32-S3 and x86 with TVM.

``fter_tvm.compile``, ``fter_tvm.tune`` and ``fter_tvm.models`` load on first use, so the CLI
starts without importing torch and TVM.
"""

from __future__ import annotations

import importlib
import sys
import types

__version__ = "0.1.0"

_LAZY = {
    "compile": ("fter_tvm.compile", "compile"),
    "tune": ("fter_tvm.tune", "tune"),
    "models": ("fter_tvm.models", None),
    "train": ("fter_tvm.train", None),
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'fter_tvm' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    value = getattr(value, attr) if attr else value
    globals()[name] = value      # later lookups skip __getattr__
    return value


class _Package(types.ModuleType):
    """``fter_tvm.compile`` / ``fter_tvm.tune`` are functions living in same-named submodules.
    Importing a submodule makes Python set it as the package attribute, which would shadow the
    function; that one assignment is refused, and ``__getattr__`` serves the function."""

    def __setattr__(self, name, value):
        if isinstance(value, types.ModuleType) and _LAZY.get(name, (None, None))[1]:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
