"""quantdrop: which quantized GGUF should I deploy, and how much accuracy does it cost me?

The public API, one function per verb, imported lazily so `import quantdrop` stays instant:
`quantize`, `plan`, `evaluate`, `study`, `proxies`, `tune`, `imatrix`, `speed`, `load_recipe`,
`read_gguf_inventory`.

`quantdrop.plan` is always the function, never the module `quantdrop/plan.py` of the same name:
importing a submodule makes Python bind it on its package (`setattr(quantdrop, "plan", module)`),
which would shadow the verb after the first `import quantdrop.plan`; the package class below drops
exactly those bindings. Reach a verb's module with `from quantdrop.plan import ...` or
`importlib.import_module("quantdrop.plan")`.
"""

from __future__ import annotations

import sys
import types
from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it (the function of the same name)
_API = {
    "quantize": "quantdrop.quantize",
    "plan": "quantdrop.plan",
    "evaluate": "quantdrop.eval.runner",
    "study": "quantdrop.study",
    "proxies": "quantdrop.proxies",
    "tune": "quantdrop.tune.command",
    "imatrix": "quantdrop.imatrix",
    "speed": "quantdrop.speed",
    "load_recipe": "quantdrop.recipes",
    "read_gguf_inventory": "quantdrop.inventory",
    "QuantdropError": "quantdrop.errors",
    # a new verb goes here too (tests/test_api.py calls every entry)
}


class _Package(types.ModuleType):
    """The `quantdrop` module: a submodule import never rebinds a public API name."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _API and isinstance(value, types.ModuleType):
            return  # the import system binding quantdrop/<verb>.py; keep the function
        super().__setattr__(name, value)


def __getattr__(name: str) -> Any:
    if name in _API:
        value = getattr(import_module(_API[name]), name)
        globals()[name] = value  # cache: later lookups skip __getattr__
        return value
    raise AttributeError(f"module 'quantdrop' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


sys.modules[__name__].__class__ = _Package
__all__ = sorted(_API)
