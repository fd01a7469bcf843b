"""A recipe is data: ordered rules (tensor-name regex + optional layer selector -> ggml type), a
default type, and optionally llama.cpp's heuristic for an ftype as the base for unmatched tensors.

Recipe files are TOML or YAML with the same keys as the built-in presets in `presets/`:

    name = "my-mix"
    default = "q4_k"          # type of every quantizable tensor no rule names
    base = "Q4_K_M"           # optional: llama.cpp's rules for that ftype decide unmatched tensors
    file_type = "Q4_K_M"      # optional: general.file_type to write (default: base, else from `default`)
    [[rules]]
    pattern = 'ffn_down_exps\\.weight$'   # searched in the GGUF tensor name, like --tensor-type
    type = "q6_k"
    layers = { first_moe = 2 }          # optional selector, see LayerSelector
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import regex
from gguf import GGMLQuantizationType

from quantdrop.errors import QuantdropError
from quantdrop.inventory import type_from_name

_FRACTION = re.compile(r"^\s*(\d*)\s*n\s*(?:/\s*(\d+))?\s*$")


def _bound(value: int | str | None, n_layer: int, what: str) -> int | None:
    """A layer bound: an int >= 0, or "n/8", "7n/8", "n" evaluated with C integer division."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    m = _FRACTION.match(value) if isinstance(value, str) else None
    if not m or int(m.group(2) or 1) == 0:
        raise QuantdropError(f"{what} = {value!r}: expected an integer >= 0, or a fraction "
                             "of the layer count like 'n/8' or '7n/8' (not divided by 0)")
    mul = int(m.group(1) or 1)
    div = int(m.group(2) or 1)
    return mul * n_layer // div


def field_value(d: dict[str, Any], key: str, where: str, kind: type, *, minimum: int | None = None,
                default: Any = None) -> Any:
    """The one check of a recipe field: `d[key]` (or `default`) is a `kind` (bool is not an int), an
    integer at least `minimum`; otherwise a one-line error naming the file, the rule and the field."""
    value = d.get(key, default)
    if value is None:
        return None
    wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    if wrong_type or (minimum is not None and value < minimum):
        expected = {int: "an integer", bool: "true or false", str: "a string"}.get(kind, kind.__name__)
        if minimum is not None:
            expected += f" >= {minimum}"
        raise QuantdropError(f"{where}: {key} = {value!r}: expected {expected}")
    return value


@dataclass(frozen=True)
class LayerSelector:
    """Which layers a rule applies to. Every given constraint must hold (they are ANDed):

    - `layers`: explicit indices and ranges, e.g. [0, 1, "10-20"]
    - `start`/`stop`: half-open range of layer indices; ints or 'n/8'-style fractions of n_layer
    - `every`/`offset`: (layer - start) % every == offset (start defaults to 0)
    - `first_moe`: only the first N MoE layers (layers that hold expert tensors)
    - `skip_first_moe`: not the first N MoE layers
    - `use_more_bits`: llama.cpp's use_more_bits(layer, n_layer) is true (or false)
    """

    layers: frozenset[int] | None = None
    start: int | str | None = None
    stop: int | str | None = None
    every: int | None = None
    offset: int = 0
    first_moe: int | None = None
    skip_first_moe: int | None = None
    use_more_bits: bool | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> LayerSelector:
        known = {"layers", "start", "stop", "every", "offset", "first_moe", "skip_first_moe", "use_more_bits"}
        unknown = set(d) - known
        if unknown:
            raise QuantdropError(f"{where}: unknown layer selector key(s) {sorted(unknown)} "
                                 f"(known: {sorted(known)})")
        layers = None
        if "layers" in d:
            items = d["layers"] if isinstance(d["layers"], list) else [d["layers"]]
            chosen: set[int] = set()
            for item in items:
                m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", str(item))
                if not m:
                    raise QuantdropError(f"{where}: bad layer {item!r} (an index or a range like '3-10')")
                lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
                chosen.update(range(lo, hi + 1))
            layers = frozenset(chosen)
        every = field_value(d, "every", where, int, minimum=1)
        offset = field_value(d, "offset", where, int, minimum=0, default=0)
        if every is not None and offset >= every:
            raise QuantdropError(f"{where}: offset = {offset} never matches with every = {every} "
                                 f"(expected 0 to {every - 1})")
        sel = cls(layers=layers, start=d.get("start"), stop=d.get("stop"), every=every, offset=offset,
                  first_moe=field_value(d, "first_moe", where, int, minimum=0),
                  skip_first_moe=field_value(d, "skip_first_moe", where, int, minimum=0),
                  use_more_bits=field_value(d, "use_more_bits", where, bool))
        for bound in ("start", "stop"):
            _bound(getattr(sel, bound), 64, f"{where}: {bound}")  # validate the syntax now
        return sel

    def matches(self, layer: int | None, n_layer: int, moe_layers: list[int]) -> bool:
        if layer is None:
            return False
        if self.layers is not None and layer not in self.layers:
            return False
        start = _bound(self.start, n_layer, "start")
        stop = _bound(self.stop, n_layer, "stop")
        if start is not None and layer < start:
            return False
        if stop is not None and layer >= stop:
            return False
        if self.every is not None and (layer - (start or 0)) % self.every != self.offset:
            return False
        if self.first_moe is not None and layer not in moe_layers[: self.first_moe]:
            return False
        if self.skip_first_moe is not None and layer in moe_layers[: self.skip_first_moe]:
            return False
        if self.use_more_bits is not None:
            from quantdrop.recipes.llamacpp import use_more_bits

            if use_more_bits(layer, n_layer) != self.use_more_bits:
                return False
        return True

    def describe(self) -> str:
        parts = []
        if self.layers is not None:
            parts.append(f"layers {sorted(self.layers)}")
        if self.start is not None or self.stop is not None:
            parts.append(f"layers [{self.start if self.start is not None else 0}, "
                         f"{self.stop if self.stop is not None else 'n'})")
        if self.every is not None:
            parts.append(f"every {self.every} (offset {self.offset})")
        if self.first_moe is not None:
            parts.append(f"first {self.first_moe} MoE layers")
        if self.skip_first_moe is not None:
            parts.append(f"after the first {self.skip_first_moe} MoE layers")
        if self.use_more_bits is not None:
            parts.append(f"use_more_bits={self.use_more_bits}")
        return ", ".join(parts)


MATCH_BUDGET_S = 1.0  # all of a recipe's patterns against all of a model's tensor names


@dataclass(frozen=True)
class Rule:
    """A pattern is compiled with `regex` (the `re` syntax, V0), whose matching can be stopped: a pattern
    that backtracks catastrophically, like `(.*){1,32000}x`, fails in a second instead of hanging."""

    pattern: str
    type: GGMLQuantizationType
    layers: LayerSelector | None = None
    regex: regex.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "regex", regex.compile(self.pattern))
        except (regex.error, OverflowError, RecursionError) as err:
            raise QuantdropError(f"invalid regex {self.pattern!r}: {err}") from None

    def matching(self, names: Iterable[str], deadline: float) -> set[str]:
        """The names the pattern is found in (a search, like llama-quant's --tensor-type), by `deadline`
        (time.monotonic()); past it, a one-line error naming the pattern."""
        found = set()
        for name in names:
            left = deadline - time.monotonic()
            try:
                if left <= 0:
                    raise TimeoutError
                if self.regex.search(name, timeout=left):
                    found.add(name)
            except TimeoutError:
                raise QuantdropError(f"pattern {self.pattern!r} takes more than {MATCH_BUDGET_S:g} s to match "
                                     "the tensor names (nested repetition such as (.*)*?): simplify it") from None
        return found

    def describe(self) -> str:
        sel = f" [{self.layers.describe()}]" if self.layers else ""
        return f"/{self.pattern}/{sel} -> {self.type.name.lower()}"


@dataclass(frozen=True)
class Recipe:
    name: str
    default: GGMLQuantizationType
    rules: tuple[Rule, ...] = ()
    base: str | None = None  # llama.cpp ftype whose heuristic decides unmatched tensors
    file_type: str | None = None
    description: str = ""
    version: int = 1
    origin: str = "builtin"  # "builtin" or the file it was read from

    @classmethod
    def from_dict(cls, d: dict[str, Any], origin: str) -> Recipe:
        from quantdrop.recipes.llamacpp import FTYPES

        known = {"name", "default", "rules", "base", "file_type", "description", "version"}
        unknown = set(d) - known
        if unknown:
            raise QuantdropError(f"{origin}: unknown recipe key(s) {sorted(unknown)} (known: {sorted(known)})")
        if "default" not in d:
            raise QuantdropError(f"{origin}: a recipe needs a 'default' type (e.g. default = \"q4_k\")")
        for key in ("base", "file_type"):
            if d.get(key) is not None and str(d[key]).upper() not in FTYPES:
                raise QuantdropError(f"{origin}: unknown {key} {d[key]!r} (one of: {', '.join(FTYPES)})")
        rules = []
        if not isinstance(d.get("rules") or [], list):
            raise QuantdropError(f"{origin}: rules = {d['rules']!r}: expected a list of tables ([[rules]])")
        for i, r in enumerate(d.get("rules") or []):
            where = f"{origin}: rule {i + 1}"
            if not isinstance(r, dict) or "pattern" not in r or "type" not in r:
                raise QuantdropError(f"{where}: a rule needs 'pattern' and 'type'")
            extra = set(r) - {"pattern", "type", "layers"}
            if extra:
                raise QuantdropError(f"{where}: unknown key(s) {sorted(extra)}")
            if r.get("layers") is not None and not isinstance(r["layers"], dict):
                raise QuantdropError(f"{where}: layers = {r['layers']!r}: expected a table of selector keys, "
                                     "e.g. layers = { start = 0, stop = 8 }")
            try:
                qtype = type_from_name(str(r["type"]))
            except QuantdropError as err:
                raise QuantdropError(f"{where}: {err}") from None
            sel = LayerSelector.from_dict(r["layers"], where) if r.get("layers") else None
            try:
                rules.append(Rule(pattern=str(r["pattern"]), type=qtype, layers=sel))
            except QuantdropError as err:
                raise QuantdropError(f"{where}: {err}") from None
        default_name = field_value(d, "default", origin, str)
        try:
            default = type_from_name(default_name)
        except QuantdropError as err:
            raise QuantdropError(f"{origin}: default: {err}") from None
        return cls(
            name=str(d.get("name") or origin),
            default=default,
            rules=tuple(rules),
            base=str(d["base"]).upper() if d.get("base") else None,
            file_type=str(d["file_type"]).upper() if d.get("file_type") else None,
            description=str(d.get("description", "")),
            version=field_value(d, "version", origin, int, minimum=1, default=1),
            origin=origin,
        )
