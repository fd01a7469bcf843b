"""The quantize and recipes verbs as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from quantdrop.quantize import quantize
from tests.synthetic_gguf import write_synthetic


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "quantdrop.cli", *args], capture_output=True, text=True, timeout=300)


def test_dry_run_json_prints_the_plan_and_writes_nothing(tmp_path: Path) -> None:
    src = write_synthetic(tmp_path / "m.gguf", "llama", n_layer=4)
    out = tmp_path / "out.gguf"
    proc = cli("quantize", str(src), str(out), "--recipe", "Q4_K_M", "--dry-run", "--json")
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert not out.exists() and plan["path"] is None
    assert plan["recipe"] == "Q4_K_M" and plan["file_type"] == 15
    types = {t["name"]: t["type"] for t in plan["tensors"]}
    assert types["output.weight"] == "Q6_K" and types["blk.0.attn_norm.weight"] == "F32"
    # the plan predicts the file's tensor bytes exactly
    written = quantize(src, out, recipe="Q4_K_M")
    assert written.bytes_written == plan["size_bytes"] == sum(t["bytes"] for t in plan["tensors"])


def test_written_file_records_the_recipe(tmp_path: Path) -> None:
    from quantdrop.ggufio import read_header

    src = write_synthetic(tmp_path / "m.gguf", "deepseek2", n_layer=6)
    out = quantize(src, tmp_path / "dq3.gguf", recipe="DQ3_K_M").path
    fields = read_header(out).fields
    assert fields["general.file_type"] == 12  # LLAMA_FTYPE_MOSTLY_Q3_K_M, the recipe's base
    assert fields["quantdrop.recipe.name"] == "DQ3_K_M" and fields["quantdrop.recipe.base"] == "Q3_K_M"
    assert any("ffn_down_exps" in r for r in fields["quantdrop.recipe.rules"])
    assert fields["general.name"] == read_header(src).fields["general.name"]


def test_recipes_list_and_show(tmp_path: Path) -> None:
    listing = cli("recipes")
    assert listing.returncode == 0 and "DQ3_K_M" in listing.stdout and "UD-Q2_K_XL" in listing.stdout
    src = write_synthetic(tmp_path / "m.gguf", "deepseek2", n_layer=6)
    shown = cli("recipes", "show", "DQ3_K_M", "--model", str(src))
    assert shown.returncode == 0, shown.stderr
    assert "blk.1.ffn_down_exps.weight" in shown.stdout and "bits per weight" in shown.stdout
    rules = tmp_path / "r.yaml"
    rules.write_text("default: q4_k\nrules:\n  - {pattern: 'not_a_tensor', type: q8_0}\n")
    warned = cli("recipes", "show", str(rules), "--model", str(src))
    assert warned.returncode == 0 and "warning: rule 1" in warned.stderr and "matches no tensor" in warned.stderr
