"""quantdrop: which quantized GGUF should I deploy, and how much accuracy does it cost me?

The public API, imported lazily so `import quantdrop` stays instant:
`quantize`, `plan`, `evaluate`, `study`, `load_recipe`, `read_gguf_inventory`.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_API = {
    "quantize": "quantdrop.quantize",
    "plan": "quantdrop.plan",
    "evaluate": "quantdrop.eval.runner",
    "study": "quantdrop.study",
    "imatrix": "quantdrop.imatrix",
    "load_recipe": "quantdrop.recipes",
    "read_gguf_inventory": "quantdrop.inventory",
    "QuantdropError": "quantdrop.errors",
}


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(import_module(_API[name]), name)
    raise AttributeError(f"module 'quantdrop' has no attribute {name!r}")


__all__ = sorted(_API)
