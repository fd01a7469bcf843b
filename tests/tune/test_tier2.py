"""Tier 2 on the embedded model: measured KL divergence per group calibrates the class scales."""

from __future__ import annotations

from pathlib import Path

import pytest

from quantdrop.plan import plan
from quantdrop.tune.command import tune
from quantdrop.tune.measure import class_scales

PAPER = Path("/work/shared/seeds/paper-2505.02390.md")


def test_class_scales_take_medians_and_fill_unmeasured_classes() -> None:
    m = [{"class": "attention", "scale": 2.0}, {"class": "attention", "scale": 4.0}, {"class": "mlp", "scale": 1.0},
         {"class": "output", "scale": 0.0}]
    s = class_scales(m)
    assert s["attention"] == 3.0 and s["mlp"] == 1.0 and s["experts"] == 2.0  # median of 2, 4, 1
    assert 0 < s["output"] < s["mlp"]  # measured, no visible change: small but not zero


@pytest.mark.slow
def test_tier2_measures_groups_on_the_embedded_model(demo_model: Path, tmp_path: Path) -> None:
    text = tmp_path / "calibration.txt"
    text.write_text(PAPER.read_text() if PAPER.is_file() else Path(__file__).read_text() * 40)
    budget = plan(demo_model, "Q4_K_M").recipes[0].size_bytes
    res = tune(demo_model, str(budget), measure=2, text=text, out=tmp_path / "r.toml", cache_dir=tmp_path / "c",
               measure_ctx=128, measure_chunks=2)
    assert len(res.measurements) == 2 and len({m["class"] for m in res.measurements}) == 2
    for m in res.measurements:
        assert m["kld"] > 0 and m["predicted_error"] > 0
    assert res.size_bytes <= budget and len(res.text_hash) == 64
    assert f"calibration text sha256 = {res.text_hash}" in (tmp_path / "r.toml").read_text()
