"""Tier 2: measured KL divergence, to calibrate tier 1's scale per tensor class.

Tier 1 says how much each tensor's output moves; it does not say how much the model's next-token
distribution cares, which differs by class (attention, MLP, experts, embeddings, output). So, for a
model small enough to run: quantize the tier-1 solution at the budget (the baseline), then for each of
N groups (one tensor role in a block of layers) lower every tensor of the group one step and measure
the mean KL divergence on the calibration text against the source (quantdrop.proxies: llama-perplexity's
method, reference log-probs cached). scale(group) = measured KLD increase / tier-1 predicted error
increase; a class's scale is the median over its groups (unmeasured classes take the median of all).
The N groups are picked round-robin over the classes, least-measured class first, each time the group
whose step down tier 1 predicts to cost most (the strongest signal above measurement noise).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from quantdrop.recipes.llamacpp import layer_of
from quantdrop.tune.sensitivity import CLASSES, role_class, role_of
from quantdrop.tune.solve import Item, Solution

CALIBRATION_CHUNKS = 8
N_CTX = 512
BLOCKS = 4  # a group spans n_layer / BLOCKS consecutive layers


def _step_down(it: Item, current: str) -> str | None:
    order = sorted(range(len(it.types)), key=lambda j: it.nbytes[j])
    pos = [it.types[j] for j in order].index(current)
    return it.types[order[pos - 1]] if pos > 0 else None


def groups(items: list[Item], choice: dict[str, str], n_layer: int) -> dict[tuple[str, int], list[str]]:
    span = max(1, -(-n_layer // BLOCKS))
    out: dict[tuple[str, int], list[str]] = {}
    for it in items:
        if _step_down(it, choice[it.name]) is None:
            continue
        layer = layer_of(it.name)
        out.setdefault((role_of(it.name), -1 if layer is None else layer // span), []).append(it.name)
    return out


def _delta(items: dict[str, Item], names: list[str], choice: dict[str, str]) -> float:
    total = 0.0
    for n in names:
        it = items[n]
        low = _step_down(it, choice[n])
        total += it.loss[it.types.index(low)] - it.loss[it.types.index(choice[n])]  # type: ignore[arg-type]
    return total


def pick_groups(cand: dict[tuple[str, int], list[str]], items: dict[str, Item], choice: dict[str, str],
                n: int) -> list[tuple[str, int]]:
    by_class: dict[str, list[tuple[float, tuple[str, int]]]] = {}
    for key, names in cand.items():
        by_class.setdefault(role_class(names[0]), []).append((_delta(items, names, choice), key))
    for v in by_class.values():
        v.sort(reverse=True)
    picked: list[tuple[str, int]] = []
    while len(picked) < n and any(by_class.values()):
        for cls in sorted(by_class, key=lambda c: sum(role_class(cand[k][0]) == c for k in picked)):
            if by_class[cls] and len(picked) < n:
                picked.append(by_class[cls].pop(0)[1])
    return picked


def calibrate(path: Path, items: list[Item], baseline: Solution, render: Callable[[dict[str, str]], str], n: int,
              n_layer: int, *, text: str | os.PathLike[str] | None = None,
              imatrix: str | os.PathLike[str] | None = None, n_ctx: int = N_CTX,
              chunks: int = CALIBRATION_CHUNKS, progress: bool = False
              ) -> tuple[dict[str, float], list[dict[str, Any]], str]:
    """Class scales (KLD per unit of tier-1 error), the measurements, and the calibration text's sha256."""
    from quantdrop.proxies import compare, load_text, reference_log_probs
    from quantdrop.quantize import quantize

    body, _ = load_text(text)
    text_hash = hashlib.sha256(body.encode()).hexdigest()
    ref = reference_log_probs(path, text=text, n_ctx=n_ctx, chunks=chunks, progress=progress)
    by_name = {it.name: it for it in items}
    choice = dict(baseline.choice)
    cand = groups(items, choice, n_layer)
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="quantdrop-tune-") as tmp:

        def kld(mix: dict[str, str], label: str) -> float:
            recipe = Path(tmp) / f"{label}.toml"
            recipe.write_text(render(mix))
            out = Path(tmp) / f"{label}.gguf"
            quantize(path, out, recipe=str(recipe), imatrix=imatrix, force=True)
            value = compare(ref, out, progress=progress).kld_mean
            out.unlink()
            return value

        base = kld(choice, "baseline")
        for role, block in pick_groups(cand, by_name, choice, n):
            names = cand[(role, block)]
            lowered = {**choice, **{m: _step_down(by_name[m], choice[m]) or choice[m] for m in names}}
            value = kld(lowered, f"{role}-{block}")
            predicted = _delta(by_name, names, choice)
            measured.append({"role": role, "block": block, "class": role_class(names[0]), "tensors": len(names),
                             "kld": value, "baseline_kld": base, "predicted_error": predicted,
                             "scale": max(value - base, 0.0) / predicted if predicted > 0 else 0.0})
    return class_scales(measured), measured, text_hash


def class_scales(measured: list[dict[str, Any]]) -> dict[str, float]:
    """Median measured scale per class; unmeasured classes take the median of all (positive) scales."""
    positive = [m["scale"] for m in measured if m["scale"] > 0]
    if not positive:
        return {}
    overall = float(np.median(positive))
    out = {}
    for cls in CLASSES:
        vals = [m["scale"] for m in measured if m["class"] == cls]
        pos = [v for v in vals if v > 0]
        out[cls] = float(np.median(pos)) if pos else (overall * 0.1 if vals else overall)
    return out
