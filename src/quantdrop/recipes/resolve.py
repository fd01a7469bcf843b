"""The one resolver: recipe + model inventory -> per-tensor plan. Used by quantize, plan and
`recipes show`; it mirrors llama.cpp's llama_tensor_get_type (manual overrides first, then the
ftype heuristic, then the shape fallback), walking the tensors in llama.cpp's order so that its
position counters advance identically.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field

from gguf import GGMLQuantizationType

from quantdrop.errors import QuantdropError
from quantdrop.inventory import ModelInventory, TensorInfo, tensor_bytes
from quantdrop.recipes.llamacpp import (
    FTYPES,
    QUANTIZED,
    QuantState,
    layer_of,
    llama_order,
    llama_tensor_get_type_impl,
    requires_imatrix,
    tensor_allows_quantization,
    tensor_category,
    tensor_type_fallback,
)
from quantdrop.recipes.model import MATCH_BUDGET_S, Recipe

# general.file_type for a recipe with neither `file_type` nor `base`: the llama.cpp mix of its default
_FTYPE_OF_DEFAULT = {
    "Q8_0": "Q8_0",
    "Q6_K": "Q6_K",
    "Q5_K": "Q5_K_M",
    "Q4_K": "Q4_K_M",
    "Q3_K": "Q3_K_M",
    "Q2_K": "Q2_K",
    "Q4_0": "Q4_0",
    "Q4_1": "Q4_1",
    "Q5_0": "Q5_0",
    "Q5_1": "Q5_1",
    "F16": "F16",
    "BF16": "BF16",
    "F32": "F32",
}


@dataclass(frozen=True)
class TensorPlan:
    name: str
    shape: tuple[int, ...]
    src_type: GGMLQuantizationType
    type: GGMLQuantizationType
    nbytes: int
    rule: str  # why this type: "rule 3", "llama.cpp Q4_K_M", "default", "kept", "fallback from Q4_K"
    requires_imatrix: bool = False

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class ResolvedPlan:
    recipe: Recipe
    model: str
    entries: list[TensorPlan]  # in the order the quantizer writes them (llama.cpp's order)
    file_type: int | None
    warnings: list[str] = field(default_factory=list)

    @property
    def nbytes(self) -> int:
        return sum(e.nbytes for e in self.entries)

    @property
    def n_params(self) -> int:
        return sum(e.n_elements for e in self.entries)

    @property
    def bits_per_weight(self) -> float:
        """llama.cpp's convention: all tensor bytes x 8 / all parameters (F32 tensors included)."""
        return self.nbytes * 8 / self.n_params if self.n_params else 0.0

    @property
    def bytes_by_type(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for e in self.entries:
            totals[e.type.name] += e.nbytes
        return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

    @property
    def count_by_type(self) -> dict[str, int]:
        return dict(Counter(e.type.name for e in self.entries))

    @property
    def needs_imatrix(self) -> list[TensorPlan]:
        return [e for e in self.entries if e.requires_imatrix]

    def share(self, pattern_substring: str) -> dict[str, float]:
        """Parameter share of each type among tensors whose name contains `pattern_substring`."""
        chosen = [e for e in self.entries if pattern_substring in e.name]
        total = sum(e.n_elements for e in chosen)
        counts: Counter[str] = Counter()
        for e in chosen:
            counts[e.type.name] += e.n_elements
        return {k: v / total for k, v in counts.items()} if total else {}


def plan_as_dict(plan: ResolvedPlan) -> dict:
    """The plan as `recipes show --json` and `quantize --json` print it."""
    return {
        "model": plan.model,
        "recipe": plan.recipe.name,
        "file_type": plan.file_type,
        "n_params": plan.n_params,
        "size_bytes": plan.nbytes,
        "bits_per_weight": round(plan.bits_per_weight, 4),
        "bytes_by_type": plan.bytes_by_type,
        "warnings": plan.warnings,
        "tensors": [
            {
                "name": e.name,
                "shape": list(e.shape),
                "src_type": e.src_type.name,
                "type": e.type.name,
                "bytes": e.nbytes,
                "rule": e.rule,
            }
            for e in plan.entries
        ],
    }


def file_type_of(recipe: Recipe) -> int | None:
    name = recipe.file_type or recipe.base or _FTYPE_OF_DEFAULT.get(recipe.default.name)
    return FTYPES[name][0] if name else None


def _rule_matches(recipe: Recipe, names: list[str]) -> list[set[str]]:
    """Each rule's matching tensor names, each rule within its own time budget (MATCH_BUDGET_S): a shared
    budget failed a tuned recipe's hundreds of plain rules on a loaded machine."""
    out = []
    for i, rule in enumerate(recipe.rules):
        try:
            out.append(rule.matching(names, time.monotonic() + MATCH_BUDGET_S))
        except QuantdropError as err:
            raise QuantdropError(f"{recipe.origin}: rule {i + 1}: {err}") from None
    return out


def _check_selectors(recipe: Recipe, n_layer: int) -> None:
    """A selector naming layers the model lacks is an error."""
    for i, rule in enumerate(recipe.rules):
        if rule.layers is not None:
            rule.layers.check(n_layer, f"{recipe.name if recipe.origin == 'builtin' else recipe.origin}: rule {i + 1}")


def _first_rule(recipe: Recipe, name: str, matched: list[set[str]], n_layer: int, moe_layers: list[int]) -> int | None:
    """The index of the first rule whose pattern and layer selector take tensor `name`, if any."""
    layer = layer_of(name)
    for i, rule in enumerate(recipe.rules):
        if name in matched[i] and (rule.layers is None or rule.layers.matches(layer, n_layer, moe_layers)):
            return i
    return None


def _with_fallback(t: TensorInfo, new_type: GGMLQuantizationType, why: str) -> tuple[GGMLQuantizationType, str]:
    """llama.cpp's shape fallback: a type whose blocks do not fit the rows falls back, and says so."""
    fallback = tensor_type_fallback(t, new_type)
    if fallback != new_type:
        return fallback, f"{why}; {new_type.name} does not fit rows of {t.shape[0]}: fallback"
    return new_type, why


def resolve(recipe: Recipe, inventory: ModelInventory, *, has_imatrix: bool = False) -> ResolvedPlan:
    """Decide every tensor's type. Pure: the same recipe and inventory always give the same plan."""
    hp = inventory.hparams
    by_name = {t.name: t for t in inventory.tensors}
    names = list(by_name)
    qs = QuantState.for_tensors(hp, names, has_imatrix)
    moe_layers = sorted({layer for n in names if "_exps" in n and (layer := layer_of(n)) is not None})
    rule_hits = [0] * len(recipe.rules)
    _check_selectors(recipe, hp.n_layer)
    matched = _rule_matches(recipe, names)
    default_quantized = recipe.default in QUANTIZED
    heuristic = f"llama.cpp {recipe.base}" if recipe.base else "default"
    ftype = recipe.base

    entries = []
    for name in llama_order(names):
        t = by_name[name]
        requires = False
        if not tensor_allows_quantization(t):
            new_type, why = t.type, "kept"
        else:
            hit = _first_rule(recipe, name, matched, hp.n_layer, moe_layers)
            if hit is not None:
                new_type, why = recipe.rules[hit].type, f"rule {hit + 1}"
                rule_hits[hit] += 1
            elif default_quantized and ftype:
                new_type = llama_tensor_get_type_impl(qs, recipe.default, t, ftype, tensor_category(name))
                why = heuristic
            else:
                new_type, why = recipe.default, "default"
            new_type, why = _with_fallback(t, new_type, why)
            requires = requires_imatrix(name, new_type, recipe.base)
        entries.append(
            TensorPlan(name, t.shape, t.type, new_type, tensor_bytes(new_type, t.shape), why, requires_imatrix=requires)
        )

    warnings = [
        f"rule {i + 1} ({recipe.rules[i].describe()}) matches no tensor of {inventory.name}"
        for i, hits in enumerate(rule_hits)
        if hits == 0
    ]
    return ResolvedPlan(
        recipe=recipe, model=inventory.name, entries=entries, file_type=file_type_of(recipe), warnings=warnings
    )
