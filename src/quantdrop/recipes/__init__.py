"""Recipes: presets (llama.cpp's ftype mixes and the paper's mixes) and user files, as data,
resolved per tensor by one resolver that quantize, plan and `recipes show` all share."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

import yaml

from quantdrop.errors import QuantdropError
from quantdrop.recipes.llamacpp import FTYPES
from quantdrop.recipes.model import LayerSelector, Recipe, Rule
from quantdrop.recipes.resolve import ResolvedPlan, TensorPlan, resolve

__all__ = ["LayerSelector", "Recipe", "ResolvedPlan", "Rule", "TensorPlan", "list_recipes", "load_recipe", "resolve"]

# llama.cpp's presets: its own heuristic for that ftype, nothing else
LLAMA_CPP_PRESETS = ("Q8_0", "Q6_K", "Q5_K_M", "Q5_K_S", "Q4_K_M", "Q4_K_S", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K")
PAPER_PRESETS = ("Q4_K", "Q3_K", "DQ3_K_M", "Q2_K_L", "UD-Q2_K_XL")


def _llama_cpp_preset(name: str) -> Recipe:
    return Recipe(
        name=name,
        default=FTYPES[name][1],
        base=name,
        file_type=name,
        description=f"llama.cpp's {name} (its own per-tensor rules, src/llama-quant.cpp)",
    )


@cache
def _builtin(name: str) -> Recipe:
    if name in LLAMA_CPP_PRESETS:
        return _llama_cpp_preset(name)
    text = resources.files("quantdrop.recipes").joinpath("presets", f"{name}.toml").read_text()
    return Recipe.from_dict(tomllib.loads(text), origin="builtin")


def list_recipes() -> list[Recipe]:
    return [_builtin(n) for n in LLAMA_CPP_PRESETS + PAPER_PRESETS]


def _read_file(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise QuantdropError(f"{path}: cannot read recipe file ({err.strerror})") from None
    except UnicodeDecodeError:
        raise QuantdropError(f"{path}: not a recipe file (not UTF-8 text; expected TOML or YAML)") from None
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise QuantdropError(f"{path}: not a valid recipe file ({first})") from None
    if not isinstance(data, dict):
        raise QuantdropError(f"{path}: a recipe file must be a table/mapping of keys")
    return data


def load_recipe(recipe: str | Path | Recipe) -> Recipe:
    """A preset name (case-insensitive) or a path to a TOML/YAML recipe file."""
    if isinstance(recipe, Recipe):
        return recipe
    text = str(recipe)
    names = {n.upper(): n for n in LLAMA_CPP_PRESETS + PAPER_PRESETS}
    if text.upper() in names:
        return _builtin(names[text.upper()])
    path = Path(text)
    if path.suffix.lower() in (".toml", ".yaml", ".yml") or path.exists():
        if not path.exists():
            raise QuantdropError(f"{path}: no such recipe file")
        return Recipe.from_dict(_read_file(path), origin=str(path))
    raise QuantdropError(f"unknown recipe {text!r} (presets: {', '.join(names.values())}; or a .toml/.yaml file)")
