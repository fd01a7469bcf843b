"""Recipe files: every bad field is one line naming the file, the rule and the field (issue 10, items
8 and 11); a pattern that backtracks catastrophically fails in a second instead of hanging."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.inventory import load as load_model
from quantdrop.recipes import load_recipe, resolve
from tests.synthetic_gguf import write_synthetic


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    return load_model(write_synthetic(tmp_path_factory.mktemp("m") / "m.gguf", "llama", n_layer=4))


def _recipe(tmp_path: Path, text: str, suffix: str = ".toml") -> Path:
    path = tmp_path / f"r{suffix}"
    path.write_text(text)
    return path


# layer selectors' own fields (start 'n/0', offset 'abc', first_moe 'two', layers: 5 ...): test_layer_selectors.py


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('default = "q4_k"\nversion = "two"\n', "version must be an integer >= 1 (got 'two')"),
        ('default = "q4_k"\nversion = 0\n', "version must be an integer >= 1 (got 0)"),
        ("default = 4\n", "default must be a string (got 4)"),
        ('default = "q9_z"\n', "default: unknown ggml type 'q9_z'"),
        ('default = "q4_k"\nrules = "ffn"\n', "rules must be a list of tables ([[rules]]) (got 'ffn')"),
    ],
)
def test_bad_recipe_field_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = _recipe(tmp_path, text)
    with pytest.raises(QuantdropError, match=None) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), err.value


def test_binary_recipe_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(QuantdropError, match="not UTF-8 text"):
        load_recipe(path)


@pytest.mark.parametrize("pattern", [r"(.*){1,32000}[bc]", r"(.*.*.*.*.*.*)*z$"])
def test_backtracking_pattern_is_bounded(tmp_path: Path, model, pattern: str) -> None:
    """Python's re takes minutes on these against a tensor name; resolving takes a second at most."""
    path = _recipe(tmp_path, f'default = "q4_k"\n[[rules]]\npattern = \'{pattern}\'\ntype = "q8_0"\n')
    t0 = time.monotonic()
    try:
        plan = resolve(load_recipe(path), model)
        assert plan.warnings and "matches no tensor" in plan.warnings[0]  # a search that found nothing
    except QuantdropError as err:
        assert f"{path}: rule 1: pattern" in str(err) and "simplify it" in str(err), err
    assert time.monotonic() - t0 < 3


def test_patterns_still_search_like_re(tmp_path: Path, model) -> None:
    path = _recipe(
        tmp_path, 'default = "q4_k"\n[[rules]]\npattern = "blk\\\\.[0-1]\\\\.ffn_(up|gate)"\ntype = "q8_0"\n'
    )
    plan = resolve(load_recipe(path), model)
    chosen = sorted(e.name for e in plan.entries if e.rule == "rule 1")
    assert chosen == ["blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.1.ffn_gate.weight", "blk.1.ffn_up.weight"]
