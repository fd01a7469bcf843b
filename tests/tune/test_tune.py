"""`quantdrop tune` end to end: the recipe file round-trips through `recipes show`, `plan` and `quantize`
exactly; device budgets fit by plan's own verdict; bad input fails in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from quantdrop.inventory import read_gguf_inventory
from quantdrop.plan import plan
from quantdrop.recipes import load_recipe, resolve
from quantdrop.tune.command import tune
from tests.tune.helpers import synthetic_model

CONFIGS = Path(__file__).parents[1] / "fixtures" / "configs"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "quantdrop.cli", "tune", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("preset", ["Q2_K", "Q4_K_M"])
def test_recipe_round_trips_through_recipes_show_plan_and_quantize(tmp_path: Path, preset: str) -> None:
    from quantdrop.quantize import quantize

    model = synthetic_model(tmp_path)
    budget = plan(model, preset).recipes[0].size_bytes
    out = tmp_path / "tuned.toml"
    result = tune(model, str(budget), out=out, cache_dir=tmp_path / "cache")
    assert result.size_bytes <= budget
    resolved = resolve(load_recipe(out), read_gguf_inventory(model))
    decided = {d["name"]: d["type"] for d in result.decisions}
    shown = {e.name: e.type.name.lower() for e in resolved.entries if e.name in decided}
    assert shown == decided
    planned = plan(model, str(out)).recipes[0].size_bytes
    q = quantize(model, tmp_path / "tuned.gguf", recipe=str(out))
    written = sum(t.nbytes for t in read_gguf_inventory(q.path).tensors)
    assert planned == written == result.size_bytes


def test_json_has_decisions_and_records_budget_and_fingerprint(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path)
    proc = _cli(str(model), "--budget", "4.5bpw", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["budget"] == "4.5bpw" and d["bits_per_weight"] <= 4.5 and d["model_fingerprint"]
    assert {t["name"] for t in d["tensors"]} >= {"blk.0.attn_q.weight", "output.weight"}
    assert "unweighted" in proc.stderr
    text = _cli(str(model), "--budget", "4.5bpw").stdout
    assert "# quantdrop.tune: budget = 4.5bpw" in text and "model fingerprint" in text and "% of bytes" in text


def test_deepseek_r1_config_fits_910b_and_spends_what_dq3_k_m_leaves() -> None:
    r1 = CONFIGS / "deepseek-r1.json"
    res = tune(r1, "8x910B-64G", ctx=32768)
    assert res.sensitivity.source == "priors" and any("priors" in n for n in res.notes)
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.toml"
        path.write_text(res.recipe_text)
        p = plan(r1, f"{path},DQ3_K_M", devices="8x910B-64G", ctx=32768)
    tuned, dq3 = p.recipes
    assert tuned.devices[0].fits and tuned.size_bytes >= dq3.size_bytes
    h100 = tune(r1, "8xH100-80G", ctx=32768)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "r.toml"
        path.write_text(h100.recipe_text)
        assert plan(r1, str(path), devices="8xH100-80G", ctx=32768).recipes[0].devices[0].fits


def test_synthetic_deepseek2_device_budget_through_tier1(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path, "deepseek2", n_layer=16)
    out = tmp_path / "r.toml"
    res = tune(model, "2x1.86G", ctx=4096, out=out, cache_dir=tmp_path / "cache")  # Q2_K fits, Q8_0 does not
    assert res.sensitivity.source == "tier 1"
    p = plan(model, f"{out},Q2_K,Q8_0", devices="2x1.86G", ctx=4096)
    tuned, q2, q8 = p.recipes
    assert tuned.devices[0].fits and q2.devices[0].fits and not q8.devices[0].fits
    assert tuned.size_bytes > q2.size_bytes


def _one_line_failure(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    return lines[0]


def test_budget_below_the_minimum_gives_the_minimum(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path)
    line = _one_line_failure(_cli(str(model), "--budget", "100K"))
    assert "below the smallest possible mix" in line and "bytes (" in line


def test_type_list_without_a_small_enough_type(tmp_path: Path) -> None:
    model = synthetic_model(tmp_path)
    line = _one_line_failure(_cli(str(model), "--budget", "3bpw", "--types", "q6_k,q8_0"))
    assert "smallest possible mix" in line
    line = _one_line_failure(_cli(str(model), "--budget", "3bpw", "--types", "iq2_xxs"))
    assert "imatrix" in line


def test_unknown_device(tmp_path: Path) -> None:
    line = _one_line_failure(_cli(str(CONFIGS / "smollm2-135m.json"), "--budget", "8xNOPE-64G"))
    assert "NOPE" in line


def test_measure_on_a_config_says_priors_only(tmp_path: Path) -> None:
    proc = _cli(
        str(CONFIGS / "qwen2.5-0.5b.json"), "--budget", "5bpw", "--measure", "4", "--out", str(tmp_path / "r.toml")
    )
    assert proc.returncode == 0, proc.stderr
    assert "tier 1 priors only" in proc.stderr and "priors" in proc.stderr


def test_out_in_a_missing_directory_fails_before_any_work(tmp_path: Path) -> None:
    line = _one_line_failure(
        _cli(str(CONFIGS / "smollm2-135m.json"), "--budget", "5bpw", "--out", str(tmp_path / "nope" / "r.toml"))
    )
    assert "no such directory" in line


def test_a_quantized_source_is_refused_for_tier1(tmp_path: Path) -> None:
    from quantdrop.quantize import quantize

    model = synthetic_model(tmp_path)
    q = quantize(model, tmp_path / "q.gguf", recipe="Q4_K_M").path
    line = _one_line_failure(_cli(str(q), "--budget", "5bpw"))
    assert "F32/F16/BF16" in line
