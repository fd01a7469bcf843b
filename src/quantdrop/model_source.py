"""MODEL arguments: a GGUF file, an HF model directory or its config.json -> ModelInventory."""

from __future__ import annotations

import os
from pathlib import Path

from quantdrop.errors import QuantdropError
from quantdrop.inventory import ModelInventory, read_gguf_inventory


def load_inventory(model: str | os.PathLike[str], **config_options: object) -> ModelInventory:
    p = Path(model)
    if p.is_dir():
        p = p / "config.json"
    if not p.exists():
        raise QuantdropError(f"{model}: no such file or directory")
    if p.suffix == ".json":
        from quantdrop.hfconfig import inventory_from_config

        return inventory_from_config(p, **config_options)
    return read_gguf_inventory(p)
