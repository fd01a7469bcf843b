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
_RANGE = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")
SELECTOR_FORMS = (
    'a list of layers such as [0, "10-20"], or a table such as { first_moe = 2 } '
    'or { start = "n/8", stop = "7n/8", every = 4 }'
)


def _bound(value: int | str | None, n_layer: int, what: str) -> int | None:
    """A layer bound: an int, or "n/8", "7n/8", "n" evaluated with C integer division."""
    if value is None or isinstance(value, int):
        return value
    m = _FRACTION.match(str(value))
    if not m or (m.group(2) is not None and int(m.group(2)) == 0):
        raise QuantdropError(f"bad layer bound {what}={value!r} (an integer, or like 'n/8', '7n/8')")
    mul = int(m.group(1) or 1)
    div = int(m.group(2) or 1)
    return mul * n_layer // div


def field_value(
    d: dict[str, Any],
    key: str,
    where: str,
    kind: type,
    *,
    minimum: int | None = None,
    default: Any = None,
    what: str = "",
) -> Any:
    """The one check of a recipe field: `d[key]` (or `default`) is a `kind` (a bool is not an int) and,
    for an integer, at least `minimum`; otherwise one line naming the file, the rule and the field."""
    value = d.get(key, default)
    if value is None:
        return None
    wrong_type = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
    if wrong_type or (minimum is not None and value < minimum):
        expected = {int: "an integer", bool: "true or false", str: "a string"}.get(kind, kind.__name__)
        expected += f" >= {minimum}" if minimum is not None else ""
        raise QuantdropError(f"{where}: {what}{key} must be {expected} (got {value!r})")
    return value


def _count(d: dict[str, Any], key: str, where: str, minimum: int) -> int | None:
    """An optional integer selector field of at least `minimum`."""
    return field_value(d, key, where, int, minimum=minimum, what="layer selector ")


def _ranges(value: Any, where: str) -> tuple[tuple[int, int], ...]:
    """`[0, "10-20"]` (or one item) -> ((0, 0), (10, 20)), inclusive, never expanded (no huge sets)."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise QuantdropError(f'{where}: an empty layer list selects no layer (expected e.g. [0, "10-20"])')
    out = []
    for item in items:
        m = None if isinstance(item, bool) else _RANGE.fullmatch(str(item))
        if not m:
            raise QuantdropError(f"{where}: bad layer {item!r} (an index or a range like '3-10')")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise QuantdropError(f"{where}: layer range {item!r} runs backwards (expected LOW-HIGH)")
        out.append((lo, hi))
    return tuple(out)


@dataclass(frozen=True)
class LayerSelector:
    """Which layers a rule applies to. Every given constraint must hold (they are ANDed):

    - `layers`: explicit indices and inclusive ranges, e.g. [0, 1, "10-20"]; a rule's `layers` may be
      this list itself (`layers = [0, "10-20"]`) or a table with the keys below
    - `start`/`stop`: half-open range of layer indices; ints or 'n/8'-style fractions of n_layer
    - `every`/`offset`: (layer - start) % every == offset (start defaults to 0)
    - `first_moe`: only the first N MoE layers (layers that hold expert tensors)
    - `skip_first_moe`: not the first N MoE layers
    - `use_more_bits`: llama.cpp's use_more_bits(layer, n_layer) is true (or false)
    Indices and bounds are checked against the model's layer count when the recipe is resolved
    (`check`): a selector naming a layer the model does not have is an error, not a silent no-op.
    """

    layers: tuple[tuple[int, int], ...] | None = None
    start: int | str | None = None
    stop: int | str | None = None
    every: int | None = None
    offset: int = 0
    first_moe: int | None = None
    skip_first_moe: int | None = None
    use_more_bits: bool | None = None

    @classmethod
    def parse(cls, value: Any, where: str) -> LayerSelector:
        """A rule's `layers` value: a list of layers/ranges, or a table of selector keys."""
        if isinstance(value, list):
            return cls.from_dict({"layers": value}, where)
        if isinstance(value, dict):
            return cls.from_dict(value, where)
        raise QuantdropError(f"{where}: layers = {value!r} is not a layer selector (expected {SELECTOR_FORMS})")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str) -> LayerSelector:
        known = {"layers", "start", "stop", "every", "offset", "first_moe", "skip_first_moe", "use_more_bits"}
        unknown = set(d) - known
        if unknown:
            raise QuantdropError(
                f"{where}: unknown layer selector key(s) {sorted(unknown)} "
                f'(known: {sorted(known)}; or a bare list such as layers = [0, "10-20"])'
            )
        every = _count(d, "every", where, 1)
        offset = _count(d, "offset", where, 0) or 0
        if every is not None and offset >= every:
            raise QuantdropError(f"{where}: layer selector offset {offset} must be below every = {every}")
        use_more_bits = field_value(d, "use_more_bits", where, bool, what="layer selector ")
        for bound in ("start", "stop"):
            value = d.get(bound)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | str | None)
                or (isinstance(value, int) and value < 0)
            ):
                raise QuantdropError(
                    f"{where}: bad layer bound {bound}={value!r} (a non-negative integer, or like 'n/8', '7n/8')"
                )
            try:
                _bound(value, 64, bound)  # validate the syntax now
            except QuantdropError as err:
                raise QuantdropError(f"{where}: {err}") from None
        return cls(
            layers=_ranges(d["layers"], where) if "layers" in d else None,
            start=d.get("start"),
            stop=d.get("stop"),
            every=every,
            offset=offset,
            first_moe=_count(d, "first_moe", where, 0),
            skip_first_moe=_count(d, "skip_first_moe", where, 0),
            use_more_bits=use_more_bits,
        )

    def check(self, n_layer: int, where: str) -> None:
        """Refuse indices and bounds beyond the model's `n_layer` blocks (0 .. n_layer - 1)."""
        last = f"the model has {n_layer} layers, 0-{n_layer - 1}"
        for lo, hi in self.layers or ():
            if hi >= n_layer:
                raise QuantdropError(f"{where}: layer {lo if lo == hi else f'{lo}-{hi}'} is out of range ({last})")
        start, stop = _bound(self.start, n_layer, "start"), _bound(self.stop, n_layer, "stop")
        if start is not None and start >= n_layer:
            raise QuantdropError(f"{where}: start = {self.start!r} is layer {start}, out of range ({last})")
        if stop is not None and stop > n_layer:
            raise QuantdropError(f"{where}: stop = {self.stop!r} is layer {stop}, beyond the last ({last})")

    def matches(self, layer: int | None, n_layer: int, moe_layers: list[int]) -> bool:
        if layer is None:
            return False
        if self.layers is not None and not any(lo <= layer <= hi for lo, hi in self.layers):
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
            parts.append("layers " + ", ".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in self.layers))
        if self.start is not None or self.stop is not None:
            parts.append(
                f"layers [{self.start if self.start is not None else 0}, {self.stop if self.stop is not None else 'n'})"
            )
        if self.every is not None:
            parts.append(f"every {self.every} (offset {self.offset})")
        if self.first_moe is not None:
            parts.append(f"first {self.first_moe} MoE layers")
        if self.skip_first_moe is not None:
            parts.append(f"after the first {self.skip_first_moe} MoE layers")
        if self.use_more_bits is not None:
            parts.append(f"use_more_bits={self.use_more_bits}")
        return ", ".join(parts)


MATCH_BUDGET_S = 1.0  # one pattern against all of a model's tensor names


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
                raise QuantdropError(
                    f"pattern {self.pattern!r} takes more than {MATCH_BUDGET_S:g} s to match "
                    "the tensor names (nested repetition such as (.*)*?): simplify it"
                ) from None
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
            raise QuantdropError(f"{origin}: rules must be a list of tables ([[rules]]) (got {d['rules']!r})")
        for i, r in enumerate(d.get("rules") or []):
            where = f"{origin}: rule {i + 1}"
            if not isinstance(r, dict) or "pattern" not in r or "type" not in r:
                raise QuantdropError(f"{where}: a rule needs 'pattern' and 'type'")
            extra = set(r) - {"pattern", "type", "layers"}
            if extra:
                raise QuantdropError(f"{where}: unknown key(s) {sorted(extra)}")
            try:
                qtype = type_from_name(str(r["type"]))
            except QuantdropError as err:
                raise QuantdropError(f"{where}: {err}") from None
            sel = LayerSelector.parse(r["layers"], where) if r.get("layers") is not None else None
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
