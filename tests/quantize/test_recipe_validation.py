"""Recipe files: every bad field is one line naming the file, the rule and the field (issue 10, items
8 and 11); a pattern that backtracks catastrophically fails in a second instead of hanging."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.plan import load_model
from quantdrop.recipes import load_recipe, resolve
from tests.quantize.synthetic import write_synthetic

RULE = '[[rules]]\npattern = "ffn_down"\ntype = "q8_0"\n'


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory):
    return load_model(write_synthetic(tmp_path_factory.mktemp("m") / "m.gguf", "llama", n_layer=4))


def _recipe(tmp_path: Path, text: str, suffix: str = ".toml") -> Path:
    path = tmp_path / f"r{suffix}"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("body", "message"), [
    ('layers = { start = "n/0" }', "rule 1: start = 'n/0': expected an integer >= 0, or a fraction"),
    ('layers = { stop = "half" }', "rule 1: stop = 'half': expected an integer >= 0, or a fraction"),
    ('layers = { start = -2 }', "rule 1: start = -2: expected an integer >= 0"),
    ('layers = { every = 2, offset = "abc" }', "rule 1: offset = 'abc': expected an integer >= 0"),
    ('layers = { every = 2, offset = 2 }', "rule 1: offset = 2 never matches with every = 2"),
    ('layers = { first_moe = "two" }', "rule 1: first_moe = 'two': expected an integer >= 0"),
    ('layers = { skip_first_moe = true }', "rule 1: skip_first_moe = True: expected an integer >= 0"),
    ('layers = { use_more_bits = "yes" }', "rule 1: use_more_bits = 'yes': expected true or false"),
    ('layers = { every = 0 }', "rule 1: every = 0: expected an integer >= 1"),
])
def test_bad_layer_selector_names_the_field(tmp_path: Path, body: str, message: str) -> None:
    path = _recipe(tmp_path, f'default = "q4_k"\n{RULE}{body}\n')
    with pytest.raises(QuantdropError) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), err.value


@pytest.mark.parametrize(("text", "message"), [
    ('default = "q4_k"\nversion = "two"\n', "version = 'two': expected an integer >= 1"),
    ('default = "q4_k"\nversion = 0\n', "version = 0: expected an integer >= 1"),
    ("default = 4\n", "default = 4: expected a string"),
    ('default = "q9_z"\n', "default: unknown ggml type 'q9_z'"),
    ('default = "q4_k"\nrules = "ffn"\n', "rules = 'ffn': expected a list of tables"),
])
def test_bad_recipe_field_names_the_field(tmp_path: Path, text: str, message: str) -> None:
    path = _recipe(tmp_path, text)
    with pytest.raises(QuantdropError, match=None) as err:
        load_recipe(path)
    assert str(err.value).startswith(f"{path}: ") and message in str(err.value), err.value


def test_yaml_layers_that_are_not_a_table(tmp_path: Path) -> None:
    path = _recipe(tmp_path, "default: q4_k\nrules:\n  - pattern: ffn_down\n    type: q8_0\n    layers: 5\n",
                   ".yaml")
    with pytest.raises(QuantdropError) as err:
        load_recipe(path)
    assert f"{path}: rule 1: layers = 5: expected a table" in str(err.value)


def test_binary_recipe_file(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(QuantdropError, match="not UTF-8 text"):
        load_recipe(path)


@pytest.mark.parametrize("pattern", [r"(.*){1,32000}[bc]", r"(.*.*.*.*.*.*)*z$"])
def test_backtracking_pattern_is_bounded(tmp_path: Path, model, pattern: str) -> None:
    """Python's re takes minutes on these against a tensor name; resolving takes a second at most."""
    path = _recipe(tmp_path, f"default = \"q4_k\"\n[[rules]]\npattern = '{pattern}'\ntype = \"q8_0\"\n")
    t0 = time.monotonic()
    try:
        plan = resolve(load_recipe(path), model)
        assert plan.warnings and "matches no tensor" in plan.warnings[0]  # a search that found nothing
    except QuantdropError as err:
        assert f"{path}: rule 1: pattern" in str(err) and "simplify it" in str(err), err
    assert time.monotonic() - t0 < 3


def test_patterns_still_search_like_re(tmp_path: Path, model) -> None:
    path = _recipe(tmp_path, 'default = "q4_k"\n[[rules]]\npattern = "blk\\\\.[0-1]\\\\.ffn_(up|gate)"\n'
                   'type = "q8_0"\n')
    plan = resolve(load_recipe(path), model)
    chosen = sorted(e.name for e in plan.entries if e.rule == "rule 1")
    assert chosen == ["blk.0.ffn_gate.weight", "blk.0.ffn_up.weight", "blk.1.ffn_gate.weight",
                      "blk.1.ffn_up.weight"]
