"""The tuned mix as an ordinary recipe file (recipes/model.py's TOML), grouped for a person to read:
one rule per tensor role and type, its layers as ranges, each with a comment giving its share of the
bytes and of the predicted loss. The most common type (by bytes) of the block tensors is the default.
Every quantizable tensor is covered by exactly one rule or the default, with its type already after
llama.cpp's shape fallback, so `resolve` gives back exactly the decided types.
"""

from __future__ import annotations

import re
from collections import defaultdict

from gguf import GGMLQuantizationType as T

from quantdrop.recipes.llamacpp import layer_of
from quantdrop.tune.sensitivity import role_of


def layer_ranges(layers: list[int]) -> list[str]:
    """[0, 1, 2, 5, 7, 8] -> ["0-2", "5", "7-8"]."""
    out: list[str] = []
    run: list[int] = []
    for n in sorted(layers):
        if run and n == run[-1] + 1:
            run.append(n)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [n]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return out


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render_recipe(
    name: str,
    decisions: dict[str, T],
    nbytes: dict[str, int],
    loss: dict[str, float],
    header: list[str],
    description: str,
) -> str:
    """TOML text of the recipe; `header` lines become leading comments (budget, fingerprint, ...)."""
    total_b = sum(nbytes.values()) or 1
    total_l = sum(loss.values()) or 1.0
    block_bytes: dict[T, int] = defaultdict(int)
    for n, q in decisions.items():
        if layer_of(n) is not None:
            block_bytes[q] += nbytes[n]
    default = max(block_bytes, key=lambda q: block_bytes[q]) if block_bytes else T.Q8_0
    groups: dict[tuple[str, T], list[str]] = defaultdict(list)
    for n, q in decisions.items():
        if layer_of(n) is None or q != default:
            groups[(role_of(n), q)].append(n)
    lines = [f"# {h}" for h in header]
    lines += [
        f"name = {_toml_str(name)}",
        f"description = {_toml_str(description)}",
        f"default = {_toml_str(default.name.lower())}",
    ]
    rest = [n for n, q in decisions.items() if layer_of(n) is not None and q == default]
    lines.append(f"# default: {len(rest)} tensors, {_share(rest, nbytes, loss, total_b, total_l)}")
    for (role, q), names in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1].name)):
        lines += ["", f"# {len(names)} tensor(s), {_share(names, nbytes, loss, total_b, total_l)}", "[[rules]]"]
        layers = [layer_of(n) for n in names]
        if layers[0] is None:
            lines.append(f"pattern = '^{re.escape(names[0])}$'")
        else:
            lines.append(f"pattern = '^blk\\.\\d+\\.{re.escape(role)}\\.weight$'")
        lines.append(f"type = {_toml_str(q.name.lower())}")
        if layers[0] is not None:
            items = ", ".join(_toml_str(r) for r in layer_ranges([x for x in layers if x is not None]))
            lines.append(f"layers = {{ layers = [{items}] }}")
    return "\n".join(lines) + "\n"


def _share(names: list[str], nbytes: dict[str, int], loss: dict[str, float], total_b: int, total_l: float) -> str:
    b = sum(nbytes[n] for n in names)
    lo = sum(loss[n] for n in names)
    return f"{100 * b / total_b:.1f}% of bytes ({b / 2**20:.1f} MiB), {100 * lo / total_l:.1f}% of predicted loss"
