"""`inventory.load`: the one reader of a model path (GGUF, split GGUF, config.json, model directory),
and the layering it lets the modules keep (no module imports a verb above it)."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.inventory import load, locate, read_gguf_inventory
from tests.synthetic_gguf import write_synthetic

CONFIGS = Path(__file__).parents[1] / "fixtures" / "configs"


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("m") / "m.gguf", "llama", n_layer=2)


def test_a_gguf_a_config_and_directories_holding_either(gguf: Path, tmp_path: Path) -> None:
    assert load(gguf) == read_gguf_inventory(gguf)
    config = load(CONFIGS / "smollm2-135m.json")
    assert config.hparams.arch == "llama" and config.n_params > 100e6
    folder = tmp_path / "SmolLM2"
    folder.mkdir()
    shutil.copy(CONFIGS / "smollm2-135m.json", folder / "config.json")
    assert locate(folder).kind == "config" and load(folder).tensors == config.tensors
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(gguf, weights / "model.gguf")
    (weights / "model.imatrix.gguf").write_bytes(b"GGUF")  # an imatrix beside the model is not a model
    assert locate(weights).path == weights / "model.gguf"
    assert load(weights).tensors == load(gguf).tensors


def test_a_split_model_in_a_directory_is_found_by_its_first_shard(gguf: Path, tmp_path: Path) -> None:
    for i in (1, 2):
        shutil.copy(gguf, tmp_path / f"m-0000{i}-of-00002.gguf")
    assert locate(tmp_path).path == tmp_path / "m-00001-of-00002.gguf"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.gguf", "no such file or directory"),
        (lambda d: (d / "notes.txt").write_text("hello") and d / "notes.txt", "not a GGUF file, a config.json or"),
        (lambda d: (d / "empty").mkdir() or d / "empty", "neither a config.json nor a GGUF"),
    ],
)
def test_anything_else_is_one_clear_line(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(QuantdropError, match=message) as err:
        load(make(tmp_path))
    assert "\n" not in str(err.value)


def test_a_directory_with_two_models_asks_for_the_file(gguf: Path, tmp_path: Path) -> None:
    shutil.copy(gguf, tmp_path / "a.gguf")
    shutil.copy(gguf, tmp_path / "b.gguf")
    with pytest.raises(QuantdropError, match=r"holds 2 GGUF models .*a.gguf, b.gguf.*name the file"):
        load(tmp_path)


def test_plan_and_tune_accept_a_model_directory(gguf: Path, tmp_path: Path) -> None:
    from quantdrop.plan import plan
    from quantdrop.tune import tune

    shutil.copy(gguf, tmp_path / "model.gguf")
    assert plan(tmp_path, "Q4_K_M").recipes[0].size_bytes == plan(gguf, "Q4_K_M").recipes[0].size_bytes
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "nope"}))  # a config wins, and is checked
    with pytest.raises(QuantdropError, match="unsupported architecture 'nope'"):
        tune(tmp_path, "4bpw")


def test_quantize_refuses_one_shard_of_a_split_model(gguf: Path, tmp_path: Path) -> None:
    """A shard holds only part of the tensors: quantizing it alone would write a partial model."""
    from gguf import GGUFWriter

    from quantdrop.quantize import quantize

    shard = tmp_path / "m-00001-of-00002.gguf"
    w = GGUFWriter(shard, "llama")
    w.add_uint16("split.count", 2)
    w.add_block_count(1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with pytest.raises(QuantdropError, match=r"one shard of a split GGUF .*llama-gguf-split --merge"):
        quantize(shard, tmp_path / "out.gguf", recipe="Q8_0")


LAYERS = {  # module -> the verb modules above it, which it must not import (not even inside a function)
    "demo_model": {"quantdrop.quantize"},
    "report/data": {"quantdrop.proxies"},
    "report/sources": {"quantdrop.proxies"},
    "tune/sensitivity": {"quantdrop.quantize"},
    "tune/command": {"quantdrop.quantize"},
    "inventory": {"quantdrop.plan", "quantdrop.quantize"},
    "ggufio": {"quantdrop.quantize", "quantdrop.plan", "quantdrop.inventory"},
    "kernels": {"quantdrop.quantize"},
    "calibration": {"quantdrop.proxies", "quantdrop.imatrix"},
    "imatrix": {"quantdrop.proxies"},
    "proxies": {"quantdrop.demo_model"},
}
SRC = Path(__file__).parents[2] / "src" / "quantdrop"


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_no_module_imports_a_verb_above_it(module: str) -> None:
    tree = ast.parse((SRC / f"{module}.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert not imported & LAYERS[module]
