"""Tier 2: measured KL divergence per group calibrates tier 1 per tensor role (unit tests, then the embedded model)."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdrop.plan import plan
from quantdrop.tune.command import tune
from quantdrop.tune.measure import groups, pick_groups, role_scales
from quantdrop.tune.sensitivity import scale_for
from quantdrop.tune.solve import Item

PAPER = Path("/work/shared/seeds/paper-2505.02390.md")


def test_role_scales_take_medians_and_fall_back_to_class_then_overall() -> None:
    m = [
        {"role": "attn_v", "class": "attention", "scale": 2.0},
        {"role": "attn_v", "class": "attention", "scale": 4.0},
        {"role": "ffn_down", "class": "mlp", "scale": 1.0},
        {"role": "output", "class": "output", "scale": 0.0},
    ]
    s = role_scales(m)
    assert scale_for(s, "blk.3.attn_v.weight") == 3.0 and scale_for(s, "blk.0.ffn_down.weight") == 1.0
    assert scale_for(s, "blk.1.attn_q.weight") == 3.0  # unmeasured role: its class's median
    assert scale_for(s, "blk.1.ffn_gate_exps.weight") == 2.0  # unmeasured class: median of 2, 4, 1
    assert 0 < scale_for(s, "output.weight") < 1.0  # measured, no visible change: small but not zero
    assert scale_for({}, "output.weight") == 1.0 and scale_for({"mlp": 5.0}, "blk.0.ffn_up.weight") == 5.0


def _item(name: str, loss: tuple[float, ...]) -> Item:
    return Item(name, ("Q2_K", "Q3_K", "Q4_K"), (10, 20, 30), loss)


def test_a_group_at_its_smallest_type_is_measured_one_step_up() -> None:
    """The tensors tier 1 already sends to the floor are the ones whose cheapness most needs checking."""
    items = [_item(f"blk.{i}.ffn_down.weight", (9.0, 3.0, 1.0)) for i in range(4)]
    items += [_item(f"blk.{i}.attn_v.weight", (5.0, 2.0, 1.0)) for i in range(4)]
    choice = {
        **{f"blk.{i}.ffn_down.weight": "Q2_K" for i in range(4)},
        **{f"blk.{i}.attn_v.weight": "Q4_K" for i in range(4)},
    }
    cand = groups(items, choice, n_layer=4)
    assert cand[("ffn_down", 0)] == (["blk.0.ffn_down.weight"], 1)
    assert cand[("attn_v", 3)] == (["blk.3.attn_v.weight"], -1)
    picked = pick_groups(cand, {it.name: it for it in items}, choice, 3)
    assert [role for role, _ in picked] == ["ffn_down", "attn_v", "ffn_down"]  # round-robin, biggest change first


@pytest.mark.slow
def test_tier2_measures_groups_on_the_embedded_model(demo_model: Path, tmp_path: Path) -> None:
    text = tmp_path / "calibration.txt"
    text.write_text(PAPER.read_text() if PAPER.is_file() else Path(__file__).read_text() * 40)
    budget = plan(demo_model, "Q4_K_M").recipes[0].size_bytes
    res = tune(
        demo_model,
        str(budget),
        measure=2,
        text=text,
        out=tmp_path / "r.toml",
        cache_dir=tmp_path / "c",
        measure_ctx=128,
        measure_chunks=2,
    )
    assert len(res.measurements) == 2 and len({m["role"] for m in res.measurements}) == 2
    for m in res.measurements:
        assert m["kld"] > 0 and m["predicted_error"] > 0
    assert res.size_bytes <= budget and len(res.text_hash) == 64
    assert f"calibration text sha256 = {res.text_hash}" in (tmp_path / "r.toml").read_text()
