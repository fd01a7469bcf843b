"""The recipe resolver against the paper: Appendix A.1's columns on DeepSeek-R1's real config give
Table 1's sizes and bits per weight and the stated ffn_down_exps shares."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType as T

from quantdrop.errors import QuantdropError
from quantdrop.hfconfig import inventory_from_config
from quantdrop.inventory import ModelInventory
from quantdrop.recipes import ResolvedPlan, list_recipes, load_recipe, resolve
from quantdrop.recipes.llamacpp import use_more_bits

R1 = Path(__file__).parents[1] / "fixtures" / "configs" / "deepseek-r1.json"


@pytest.fixture(scope="module")
def r1() -> ModelInventory:
    return inventory_from_config(R1, mla_split=False)  # the paper's converter kept attn_kv_b whole


# Table 1 of arXiv 2505.02390: model size ("G" as ls -h prints it: GiB rounded up) and "Avg Quants"
TABLE_1 = {
    "Q4_K_M": (377, 4.82),
    "Q3_K_M": (298, 3.81),
    "DQ3_K_M": (281, 3.59),
    "Q2_K_L": (228, 2.91),
    "UD-Q2_K_XL": (212, 2.70),
}


@pytest.mark.parametrize("recipe", list(TABLE_1))
def test_table_1_sizes_and_bits_per_weight(r1: ModelInventory, recipe: str) -> None:
    plan = resolve(load_recipe(recipe), r1)
    size_g, bpw = TABLE_1[recipe]
    assert math.ceil(plan.nbytes / 2**30) == size_g
    assert round(plan.bits_per_weight, 2) == bpw
    assert not plan.warnings


def _layers_by_type(plan: ResolvedPlan, stem: str) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for e in plan.entries:
        if f".{stem}." in e.name:
            out.setdefault(e.type.name, []).append(int(e.name.split(".")[1]))
    return out


def test_dq3_k_m_ffn_down_exps_shares_on_r1(r1: ModelInventory) -> None:
    plan = resolve(load_recipe("DQ3_K_M"), r1)
    layers = _layers_by_type(plan, "ffn_down_exps")
    assert layers["Q6_K"] == [3, 4]  # the first two MoE layers
    assert len(layers["Q4_K"]) == 12 and len(layers["Q3_K"]) == 44
    share = plan.share("ffn_down_exps")
    assert (round(share["Q6_K"] * 100, 1), round(share["Q4_K"] * 100, 1), round(share["Q3_K"] * 100, 1)) == (
        3.4,
        20.7,
        75.9,
    )
    assert all((b - a) == 4 for a, b in zip(layers["Q4_K"], layers["Q4_K"][1:], strict=False))  # every fourth


def test_ud_q2_k_xl_and_q4_k_m_shares_on_r1(r1: ModelInventory) -> None:
    share = resolve(load_recipe("UD-Q2_K_XL"), r1).share("ffn_down_exps")
    assert (round(share["Q3_K"] * 100, 1), round(share["Q2_K"] * 100, 1)) == (5.2, 94.8)
    # llama.cpp's own Q4_K_M: use_more_bits splits ffn_down_exps 53.4% / 46.6%, as Appendix A.1 lists
    share = resolve(load_recipe("Q4_K_M"), r1).share("ffn_down_exps")
    assert (round(share["Q4_K"] * 100, 1), round(share["Q6_K"] * 100, 1)) == (53.4, 46.6)


def test_appendix_a1_columns_rule_for_rule(r1: ModelInventory) -> None:
    """Every row of Appendix A.1 that is a single type, for the three mixes the paper defines."""
    rows = {  # tensor stem -> (DQ3_K_M, Q2_K_L, UD-Q2_K_XL)
        "output": ("Q6_K", "Q6_K", "Q6_K"),
        "token_embd": ("Q4_K", "Q4_K", "Q4_K"),
        "attn_kv_a_mqa": ("Q6_K", "Q6_K", "Q6_K"),
        "attn_kv_b": ("Q6_K", "Q2_K", "Q6_K"),
        "attn_output": ("Q4_K", "Q3_K", "Q4_K"),
        "attn_q_a": ("Q4_K", "Q2_K", "Q4_K"),
        "attn_q_b": ("Q4_K", "Q2_K", "Q4_K"),
        "ffn_down": ("Q6_K", "Q3_K", "Q6_K"),
        "ffn_gate": ("Q4_K", "Q2_K", "Q4_K"),
        "ffn_up": ("Q4_K", "Q2_K", "Q4_K"),
        "ffn_down_shexp": ("Q6_K", "Q3_K", "Q6_K"),
        "ffn_gate_exps": ("Q3_K", "Q2_K", "Q2_K"),
        "ffn_gate_shexp": ("Q4_K", "Q2_K", "Q4_K"),
        "ffn_up_exps": ("Q3_K", "Q2_K", "Q2_K"),
        "ffn_up_shexp": ("Q4_K", "Q2_K", "Q4_K"),
    }
    for col, recipe in enumerate(("DQ3_K_M", "Q2_K_L", "UD-Q2_K_XL")):
        plan = resolve(load_recipe(recipe), r1)
        for stem, types in rows.items():
            got = {e.type.name for e in plan.entries if e.name.split(".")[-2] == stem}
            assert got == {types[col]}, f"{recipe} {stem}: {got}"


def test_norms_and_router_stay_f32(r1: ModelInventory) -> None:
    plan = resolve(load_recipe("Q2_K"), r1)
    for e in plan.entries:
        if "norm" in e.name or "ffn_gate_inp" in e.name or len(e.shape) == 1:
            assert e.type == e.src_type == T.F32, e.name


def test_use_more_bits_is_llama_cpp_s() -> None:
    # llama.cpp: i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2; for 32 layers: 0-3, 6, 9, ..., 27, 28-31
    chosen = [i for i in range(32) if use_more_bits(i, 32)]
    assert chosen == [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]


def test_layer_selectors(r1: ModelInventory, tmp_path: Path) -> None:
    f = tmp_path / "sel.yaml"
    f.write_text(
        "name: sel\ndefault: q4_k\nrules:\n"
        "  - {pattern: 'ffn_down_exps', type: q8_0, layers: {layers: [5, '10-12']}}\n"
        "  - {pattern: 'ffn_down_exps', type: q6_k, layers: {every: 10, start: 3}}\n"
        "  - {pattern: 'ffn_up_exps', type: q2_k, layers: {use_more_bits: true}}\n"
        "  - {pattern: 'no_such_tensor', type: q8_0}\n"
    )
    plan = resolve(load_recipe(f), r1)
    down = _layers_by_type(plan, "ffn_down_exps")
    assert down["Q8_0"] == [5, 10, 11, 12]
    assert down["Q6_K"] == [3, 13, 23, 33, 43, 53]
    up = _layers_by_type(plan, "ffn_up_exps")
    assert up["Q2_K"] == [i for i in range(3, 61) if use_more_bits(i, 61)]
    assert len(plan.warnings) == 1 and "no_such_tensor" in plan.warnings[0]


def test_every_preset_listed_and_loadable() -> None:
    names = [r.name for r in list_recipes()]
    assert names == [
        "Q8_0",
        "Q6_K",
        "Q5_K_M",
        "Q5_K_S",
        "Q4_K_M",
        "Q4_K_S",
        "Q3_K_L",
        "Q3_K_M",
        "Q3_K_S",
        "Q2_K",
        "Q4_K",
        "Q3_K",
        "DQ3_K_M",
        "Q2_K_L",
        "UD-Q2_K_XL",
    ]
    assert load_recipe("dq3_k_m").name == "DQ3_K_M"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('default = "q9_k"\n', "unknown ggml type 'q9_k'"),
        ('default = "q4_k"\n[[rules]]\npattern = "ffn_(down"\ntype = "q6_k"\n', "invalid regex"),
        ('default = "q4_k"\n[[rules]]\npattern = "ffn"\ntype = "q7_k"\n', "rule 1: unknown ggml type 'q7_k'"),
        ('default = "q4_k"\nbase = "Q4_K_Z"\n', "unknown base"),
        (
            'default = "q4_k"\n[[rules]]\npattern = "ffn"\ntype = "q4_k"\nlayers = { evry = 2 }\n',
            "unknown layer selector",
        ),
        ("rules = []\n", "needs a 'default' type"),
        ('default = "q4_k"\n[[rules\n', "not a valid recipe file"),
    ],
)
def test_bad_recipe_files(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(QuantdropError, match=re.escape(message)):
        load_recipe(f)


def test_unknown_recipe_name_lists_presets() -> None:
    with pytest.raises(QuantdropError, match=r"unknown recipe 'Q4_K_XXL'.*DQ3_K_M"):
        load_recipe("Q4_K_XXL")
