"""A GGUF's inventory from its header alone, split models included (`*-00001-of-00009.gguf`).

The first shard carries the metadata (quantdrop.inventory.read_gguf_inventory); llama.cpp's
gguf-split puts the rest of the tensors in the following shards, whose headers are read for their
tensor infos only. No tensor data is touched.
"""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

from quantdrop.ggufio import read_header
from quantdrop.inventory import ModelInventory, TensorInfo, read_gguf_inventory

_SPLIT = re.compile(r"^(.*)-(\d{5})-of-(\d{5})\.gguf$")


def read_gguf_header(path: str | os.PathLike[str]) -> ModelInventory:
    """The inventory of a GGUF (all shards of a split one) from the headers only."""
    p = Path(path)
    header = read_header(p)
    inv = read_gguf_inventory(p, header)
    count = int(header.fields.get("split.count", 1) or 1)
    m = _SPLIT.match(p.name)
    if count <= 1 or not m:
        return inv
    tensors = list(inv.tensors)
    for i in range(2, count + 1):  # llama.cpp's split naming: PREFIX-%05d-of-%05d.gguf
        shard = read_header(p.with_name(f"{m.group(1)}-{i:05d}-of-{count:05d}.gguf"))
        tensors += [TensorInfo(t.name, t.shape, t.type) for t in shard.tensors]
    return replace(inv, tensors=tuple(tensors))
