"""Tier 2: measured KL divergence, to calibrate tier 1's scale per tensor role.

Tier 1 says how much each tensor's output moves; it does not say how much the model's next-token
distribution cares, which differs by role (an ffn_down writes into the residual stream, an ffn_up feeds
a gate; attn_v, the output projection...). So, for a model small enough to run: quantize the tier-1
solution at the budget (the baseline), then for each of N groups (one tensor role in a block of layers)
move every tensor of the group one type step (down, or up when the group is already at its smallest
type) and measure the mean KL divergence on the calibration text against the source (quantdrop.proxies:
llama-perplexity's method, reference log-probs cached). scale(group) = |measured KLD change| / |tier-1
predicted error change|; a role's scale is the median over its groups; an unmeasured role takes its
class's median (attention, mlp, experts, embeddings, output), else the median of all.
The N groups are picked round-robin over the roles, least-measured role first and, among those, the
role whose step tier 1 predicts to matter most; within a role the group with the largest predicted
change (the strongest signal above measurement noise). Each trial file copies the baseline's bytes
for every tensor it does not change and, when tier 1 kept its quantized tensors (`sensitivity._Pool`),
the changed ones from there (`quantize(reuse_from=...)`), so a trial costs little more than its KL pass.
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
from quantdrop.tune.sensitivity import role_class, role_of
from quantdrop.tune.solve import Item, Solution

CALIBRATION_CHUNKS = 4  # 2,048 tokens; on the 1.5B, 8 gave the same scales within noise (BENCHMARKS)
N_CTX = 512
BLOCKS = 4  # a group spans n_layer / BLOCKS consecutive layers


def _step(it: Item, current: str, direction: int) -> str | None:
    """The next type by size below (direction -1) or above (+1) `current`, or None at the end."""
    order = [it.types[j] for j in sorted(range(len(it.types)), key=lambda j: it.nbytes[j])]
    pos = order.index(current) + direction
    return order[pos] if 0 <= pos < len(order) else None


Group = tuple[str, int]  # (role, block of layers)


def groups(items: list[Item], choice: dict[str, str], n_layer: int) -> dict[Group, tuple[list[str], int]]:
    """Every (role, block) group with the direction all its tensors can move: down if they can, else up."""
    span = max(1, -(-n_layer // BLOCKS))
    members: dict[Group, list[Item]] = {}
    for it in items:
        layer = layer_of(it.name)
        members.setdefault((role_of(it.name), -1 if layer is None else layer // span), []).append(it)
    out: dict[Group, tuple[list[str], int]] = {}
    for key, its in members.items():
        for direction in (-1, 1):
            if all(_step(it, choice[it.name], direction) for it in its):
                out[key] = ([it.name for it in its], direction)
                break
    return out


def moved(items: dict[str, Item], names: list[str], choice: dict[str, str], direction: int) -> dict[str, str]:
    return {**choice, **{n: _step(items[n], choice[n], direction) or choice[n] for n in names}}


def _delta(items: dict[str, Item], names: list[str], choice: dict[str, str], direction: int) -> float:
    """Tier 1's predicted change of loss when the group moves one step (positive = more loss)."""
    new = moved(items, names, choice, direction)
    return sum(
        items[n].loss[items[n].types.index(new[n])] - items[n].loss[items[n].types.index(choice[n])] for n in names
    )


def pick_groups(
    cand: dict[Group, tuple[list[str], int]], items: dict[str, Item], choice: dict[str, str], n: int
) -> list[Group]:
    by_role: dict[str, list[tuple[float, Group]]] = {}
    for key, (names, direction) in cand.items():
        by_role.setdefault(key[0], []).append((abs(_delta(items, names, choice, direction)), key))
    for v in by_role.values():
        v.sort(reverse=True)
    picked: list[Group] = []
    while len(picked) < n and any(by_role.values()):
        count = {r: sum(k[0] == r for k in picked) for r in by_role}
        role = min((r for r in by_role if by_role[r]), key=lambda r: (count[r], -by_role[r][0][0]))
        picked.append(by_role[role].pop(0)[1])
    return picked


def calibrate(
    path: Path,
    items: list[Item],
    baseline: Solution,
    render: Callable[[dict[str, str]], str],
    n: int,
    n_layer: int,
    *,
    text: str | os.PathLike[str] | None = None,
    imatrix: str | os.PathLike[str] | None = None,
    n_ctx: int = N_CTX,
    chunks: int = CALIBRATION_CHUNKS,
    progress: bool = False,
    pool: list[Path] | None = None,
) -> tuple[dict[str, float], list[dict[str, Any]], str]:
    """Role scales (KLD per unit of tier-1 error), the measurements, and the calibration text's sha256.

    pool: tier 1's quantized tensors (`sensitivity._Pool`), from which every trial file is assembled."""
    from quantdrop.calibration import load_text
    from quantdrop.proxies import reference_log_probs

    body, _ = load_text(text)
    text_hash = hashlib.sha256(body.encode()).hexdigest()
    ref = reference_log_probs(path, text=text, n_ctx=n_ctx, chunks=chunks, progress=progress)
    by_name = {it.name: it for it in items}
    choice = dict(baseline.choice)
    cand = groups(items, choice, n_layer)
    measured: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="quantdrop-tune-") as tmp:
        trial = _Trials(path, Path(tmp), ref, render, imatrix, progress, pool or [])
        base = trial.kld(choice, "baseline", keep=True)
        for role, block in pick_groups(cand, by_name, choice, n):
            names, direction = cand[(role, block)]
            value = trial.kld(moved(by_name, names, choice, direction), f"{role}-{block}")
            predicted = _delta(by_name, names, choice, direction)
            measured.append(
                {
                    "role": role,
                    "block": block,
                    "class": role_class(names[0]),
                    "tensors": len(names),
                    "direction": "down" if direction < 0 else "up",
                    "kld": value,
                    "baseline_kld": base,
                    "predicted_error": predicted,
                    "scale": _scale(value - base, predicted),
                }
            )
    return role_scales(measured), measured, text_hash


def _scale(measured_change: float, predicted_change: float) -> float:
    """KLD per unit of tier-1 error; 0 when the measurement moved against the prediction (noise)."""
    if predicted_change == 0 or measured_change * predicted_change <= 0:
        return 0.0
    return measured_change / predicted_change


class _Trials:
    """Quantizes trial mixes next to a kept baseline file (copying its unchanged tensors) and scores them."""

    def __init__(
        self,
        path: Path,
        folder: Path,
        ref: Any,
        render: Callable[[dict[str, str]], str],
        imatrix: str | os.PathLike[str] | None,
        progress: bool,
        pool: list[Path],
    ) -> None:
        self.path, self.folder, self.ref, self.render = path, folder, ref, render
        self.imatrix, self.progress, self.pool = imatrix, progress, pool
        self.baseline: Path | None = None

    def kld(self, mix: dict[str, str], label: str, keep: bool = False) -> float:
        from quantdrop.proxies import compare
        from quantdrop.quantize import quantize

        recipe = self.folder / f"{label}.toml"
        recipe.write_text(self.render(mix))
        out = self.folder / f"{label}.gguf"
        donors = [*([self.baseline] if self.baseline else []), *self.pool]
        quantize(self.path, out, recipe=str(recipe), imatrix=self.imatrix, force=True, reuse_from=donors)
        value = compare(self.ref, out, progress=self.progress).kld_mean
        if keep:
            self.baseline = out
        else:
            out.unlink()
        return value


def role_scales(measured: list[dict[str, Any]]) -> dict[str, float]:
    """Median measured scale per role; an unmeasured role (absent here) is filled by
    `sensitivity.scale_for`.
    A role measured only without a visible change gets a tenth of the overall median, not zero."""
    positive = [m["scale"] for m in measured if m["scale"] > 0]
    if not positive:
        return {}
    overall = float(np.median(positive))
    out: dict[str, float] = {}
    for key in {m["role"] for m in measured}:
        pos = [m["scale"] for m in measured if m["role"] == key and m["scale"] > 0]
        out[key] = float(np.median(pos)) if pos else overall * 0.1
    for cls in {m["class"] for m in measured}:
        pos = [m["scale"] for m in measured if m["class"] == cls and m["scale"] > 0]
        out[f"class:{cls}"] = float(np.median(pos)) if pos else overall * 0.1
    out["*"] = overall
    return out
