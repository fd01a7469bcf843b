"""Layer selectors: the README's recipe examples load as written, the list and table forms agree, and
malformed or out-of-range selectors fail with one line naming the file, the rule and the expected form."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.inventory import ModelInventory, read_gguf_inventory
from quantdrop.recipes import load_recipe, resolve
from tests.hostile.cli import assert_clean_failure, run

README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def demo_inv(demo_model: Path) -> ModelInventory:
    return read_gguf_inventory(demo_model)  # SmolLM2-135M: 30 blocks


def readme_recipes() -> list[tuple[str, str]]:
    """Every ```toml / ```yaml block of README.md, with its suffix."""
    blocks = re.findall(r"^```(toml|yaml)\n(.*?)^```", README.read_text(), flags=re.MULTILINE | re.DOTALL)
    assert blocks, "README.md has no recipe example"
    return blocks


def rule_layers(inv: ModelInventory, recipe_file: Path, rule: int) -> list[int]:
    plan = resolve(load_recipe(recipe_file), inv)
    return sorted(int(e.name.split(".")[1]) for e in plan.entries if e.rule == f"rule {rule}")


@pytest.mark.parametrize("index", range(len(readme_recipes())))
def test_every_readme_recipe_example_loads_and_resolves(tmp_path: Path, demo_inv: ModelInventory, index: int) -> None:
    suffix, text = readme_recipes()[index]
    f = tmp_path / f"readme-{index}.{suffix}"
    f.write_text(text)
    resolve(load_recipe(f), demo_inv)  # the layer ranges are checked against a real model's 30 layers


def test_the_readmes_bare_layer_list_selects_what_it_says(tmp_path: Path, demo_inv: ModelInventory) -> None:
    """The README documents `layers = [0, "10-20"]` on ffn_down: exactly blocks 0 and 10..20."""
    (text,) = [t for _, t in readme_recipes() if 'layers = [0, "10-20"]' in t]
    f = tmp_path / "readme.toml"
    f.write_text(text)
    (i,) = [i for i, r in enumerate(load_recipe(f).rules) if r.pattern == r"ffn_down\.weight$"]
    assert rule_layers(demo_inv, f, i + 1) == [0, *range(10, 21)]


def test_bare_list_equals_the_table_form(tmp_path: Path, demo_inv: ModelInventory) -> None:
    head = 'default = "q4_k"\n[[rules]]\npattern = "ffn_down"\ntype = "q8_0"\n'
    bare, table = tmp_path / "bare.toml", tmp_path / "table.toml"
    bare.write_text(head + 'layers = [0, "10-12", 29]\n')
    table.write_text(head + 'layers = { layers = [0, "10-12", 29] }\n')
    assert rule_layers(demo_inv, bare, 1) == rule_layers(demo_inv, table, 1) == [0, 10, 11, 12, 29]
    yaml = tmp_path / "bare.yaml"
    yaml.write_text("default: q4_k\nrules:\n  - {pattern: ffn_down, type: q8_0, layers: [3, '5-6']}\n")
    assert rule_layers(demo_inv, yaml, 1) == [3, 5, 6]


BAD_YAML = [
    ("layers: 5", 'rule 1: layers = 5 is not a layer selector (expected a list of layers such as [0, "10-20"]'),
    ("layers: abc", "rule 1: layers = 'abc' is not a layer selector"),
    ("layers: []", "rule 1: an empty layer list selects no layer"),
    ("layers: ['20-10']", "rule 1: layer range '20-10' runs backwards"),
    ("layers: [true]", "rule 1: bad layer True (an index or a range like '3-10')"),
    ("layers: ['0-3']", None),  # fine: the control case
    ("layers: {start: n/0}", "rule 1: bad layer bound start='n/0'"),
    ("layers: {start: -2}", "rule 1: bad layer bound start=-2"),
    ("layers: {stop: true}", "rule 1: bad layer bound stop=True"),
    ("layers: {offset: abc, every: 2}", "rule 1: layer selector offset must be an integer >= 0 (got 'abc')"),
    ("layers: {every: 2, offset: 2}", "rule 1: layer selector offset 2 must be below every = 2"),
    ("layers: {every: 0}", "rule 1: layer selector every must be an integer >= 1"),
    ("layers: {first_moe: two}", "rule 1: layer selector first_moe must be an integer >= 0 (got 'two')"),
    ("layers: {skip_first_moe: 1.5}", "rule 1: layer selector skip_first_moe must be an integer >= 0"),
    ("layers: {use_more_bits: 'yes'}", "rule 1: layer selector use_more_bits must be true or false"),
    ("layers: {evry: 2}", "rule 1: unknown layer selector key(s) ['evry']"),
]


@pytest.mark.parametrize(("selector", "message"), BAD_YAML)
def test_malformed_selectors_name_the_file_rule_and_form(tmp_path: Path, selector: str, message: str | None) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(f"default: q4_k\nrules:\n  - pattern: ffn_down\n    type: q8_0\n    {selector}\n")
    if message is None:
        load_recipe(f)
        return
    with pytest.raises(QuantdropError, match=re.escape(f"{f}: {message}")):
        load_recipe(f)


@pytest.mark.parametrize(
    ("selector", "message"),
    [
        ('["0-999999999"]', "rule 1: layer 0-999999999 is out of range (the model has 30 layers, 0-29)"),
        ("[30]", "rule 1: layer 30 is out of range (the model has 30 layers, 0-29)"),
        ("{ start = 30 }", "rule 1: start = 30 is layer 30, out of range (the model has 30 layers, 0-29)"),
        ('{ stop = "2n" }', "rule 1: stop = '2n' is layer 60, beyond the last (the model has 30 layers, 0-29)"),
    ],
)
def test_selectors_are_checked_against_the_models_layer_count(
    tmp_path: Path, demo_inv: ModelInventory, selector: str, message: str
) -> None:
    f = tmp_path / "wide.toml"
    f.write_text(f'default = "q4_k"\n[[rules]]\npattern = "ffn_down"\ntype = "q8_0"\nlayers = {selector}\n')
    t = time.perf_counter()
    with pytest.raises(QuantdropError, match=re.escape(f"{f}: {message}")):
        resolve(load_recipe(f), demo_inv)
    assert time.perf_counter() - t < 1.0  # a huge range is never expanded


@pytest.mark.parametrize("verb", ["plan", "quantize"])
def test_huge_layer_range_is_a_clean_cli_error(tmp_path: Path, demo_model: Path, verb: str) -> None:
    """Issue 10, item 9: `layers = ["0-999999999"]` ran out of memory; now one line, at once."""
    f = tmp_path / "huge.toml"
    f.write_text('default = "q4_k"\n[[rules]]\npattern = "ffn_down"\ntype = "q8_0"\nlayers = ["0-999999999"]\n')
    out = tmp_path / "out"
    out.mkdir()
    args = [demo_model, "--recipe", f] if verb == "plan" else [demo_model, out / "x.gguf", "--recipe", f]
    proc = run(verb, *args, timeout=60)
    assert_clean_failure(proc, str(f), "rule 1", "30 layers", folder=out)
