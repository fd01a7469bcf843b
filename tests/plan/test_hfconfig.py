"""config.json -> inventory: checked against what llama.cpp's converter wrote and the published counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType as T

from quantdrop.errors import QuantdropError
from quantdrop.hfconfig import inventory_from_config, supported_architectures

CONFIGS = Path(__file__).parents[1] / "fixtures" / "configs"
R1 = CONFIGS / "deepseek-r1.json"

# Parameter counts the Hugging Face hub publishes for these checkpoints (safetensors metadata / model
# cards). The converter keeps every weight except DeepSeek's MTP layer; Llama 3.2 gains rope_freqs
# (head_dim / 2 = 32 F32 factors). DeepSeek-R1: llama.cpp prints "model params = 671.03 B".
PUBLISHED = {
    "smollm2-135m.json": 134_515_008,
    "qwen2.5-0.5b.json": 494_032_768,
    "llama-3.2-1b.json": 1_235_814_400 + 32,
    "gemma-2-2b.json": 2_614_341_888,
    "gemma-3-1b.json": 999_885_952,
    "mixtral-8x7b.json": 46_702_792_704,
    "qwen1.5-moe-a2.7b.json": 14_315_784_192,
    "qwen3-30b-a3b.json": 30_532_122_624,
    "deepseek-v2-lite.json": 15_706_484_224,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_parameter_count_matches_the_published_one(name: str) -> None:
    assert inventory_from_config(CONFIGS / name).n_params == PUBLISHED[name]


def test_deepseek_r1_without_mtp_is_671b() -> None:
    inv = inventory_from_config(R1, mla_split=False)
    assert round(inv.n_params / 1e9, 2) == 671.03
    assert not any(t.name.startswith("blk.61.") for t in inv.tensors)  # the MTP layer is not converted


def test_deepseek_mla_split_matches_the_converter() -> None:
    old = inventory_from_config(R1, mla_split=False)
    new = inventory_from_config(R1, mla_split=True)
    # early-2025 GGUFs of R1 have 1025 tensors; today's converter splits attn_kv_b in each of 61 blocks
    assert len(old.tensors) == 1025
    assert len(new.tensors) == 1025 + 61
    assert old.tensor("blk.0.attn_kv_b.weight").shape == (512, 128 * (128 + 128))
    # k_b is transposed by the converter: ne = {qk_nope, kv_rank, n_head}; v_b = {kv_rank, v_dim, n_head}
    assert new.tensor("blk.0.attn_k_b.weight").shape == (128, 512, 128)
    assert new.tensor("blk.0.attn_v_b.weight").shape == (512, 128, 128)
    assert old.n_params == new.n_params
    assert (old.hparams.n_head_kv, old.hparams.key_length, old.hparams.value_length) == (128, 192, 128)
    assert (new.hparams.n_head_kv, new.hparams.key_length, new.hparams.value_length) == (1, 576, 512)


def test_types_follow_prepare_tensors() -> None:
    inv = inventory_from_config(R1, mla_split=False)
    types = {t.name: t.type for t in inv.tensors}
    assert types["blk.3.ffn_down_exps.weight"] == T.BF16  # torch_dtype bfloat16
    assert inv.tensor("blk.3.ffn_down_exps.weight").shape == (2048, 7168, 256)
    assert types["blk.3.ffn_gate_inp.weight"] == T.F32  # routers stay F32
    assert types["blk.3.exp_probs_b.bias"] == T.F32
    assert types["blk.3.attn_kv_a_norm.weight"] == T.F32
    assert "blk.2.ffn_gate_exps.weight" not in types  # first_k_dense_replace = 3
    gemma = inventory_from_config(CONFIGS / "gemma-2-2b.json")  # float32 checkpoint -> converter's F16
    assert gemma.tensor("blk.0.attn_q.weight").type == T.F16
    assert "output.weight" not in {t.name for t in gemma.tensors}  # tied
    qwen3 = inventory_from_config(CONFIGS / "qwen3-0.6b.json")
    assert qwen3.tensor("blk.0.attn_q_norm.weight").shape == (128,)
    assert qwen3.tensor("blk.0.attn_q.weight").shape == (1024, 16 * 128)


def test_unknown_architecture_lists_the_supported_ones(tmp_path: Path) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    with pytest.raises(QuantdropError, match="unsupported architecture 'bert'") as err:
        inventory_from_config(cfg)
    for arch in supported_architectures():
        assert arch in str(err.value)


def test_missing_key_is_named(tmp_path: Path) -> None:
    config = json.loads(R1.read_text())
    del config["qk_rope_head_dim"]
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(config))
    with pytest.raises(QuantdropError, match="'qk_rope_head_dim'"):
        inventory_from_config(tmp_path)  # a model directory works as well


def _config_with(tmp_path: Path, **change: object) -> Path:
    config = {**json.loads((CONFIGS / "llama-3.2-1b.json").read_text()), **change}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"num_hidden_layers": -4}, "num_hidden_layers = -4: expected an integer from 1 to 10000"),
        ({"num_hidden_layers": "thirty-two"}, 'num_hidden_layers = "thirty-two": expected an integer'),
        ({"num_hidden_layers": 31.5}, "num_hidden_layers = 31.5: expected an integer"),
        ({"num_hidden_layers": 1_000_000_000}, "num_hidden_layers = 1000000000: expected an integer from 1 to 10000"),
        ({"num_hidden_layers": True}, "num_hidden_layers = true: expected an integer"),
        ({"num_attention_heads": 0}, "num_attention_heads = 0: expected an integer from 1"),
        ({"hidden_size": 0}, "hidden_size = 0: expected an integer from 1"),
        ({"vocab_size": -1}, "vocab_size = -1: expected an integer from 1"),
        (
            {"num_attention_heads": 32, "num_key_value_heads": 5},
            "num_key_value_heads = 5 does not divide num_attention_heads = 32",
        ),
        ({"num_attention_heads": 32, "num_key_value_heads": 64}, "num_key_value_heads = 64 does not divide"),
        ({"hidden_size": 16, "head_dim": None}, "hidden_size = 16 is smaller than num_attention_heads = 32"),
    ],
)
def test_nonsense_config_values_are_refused_naming_the_field(tmp_path: Path, change: dict, message: str) -> None:
    path = _config_with(tmp_path, **change)
    with pytest.raises(QuantdropError) as err:
        inventory_from_config(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), err.value
