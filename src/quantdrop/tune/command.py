"""`quantdrop tune MODEL --budget BUDGET`: the per-tensor mix that loses least within a budget.

MODEL is an F16/BF16/F32 GGUF (tier 1 sensitivity from its weights, optionally tier 2 measured) or a
config.json / HF model directory (shipped per-class priors, said in the output). The result is an
ordinary recipe file (`quantize`, `plan` and `recipes show` read it like a preset).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGMLQuantizationType as T

from quantdrop.errors import QuantdropError
from quantdrop.inventory import ModelInventory, load, locate, tensor_bytes, type_from_name
from quantdrop.recipes.llamacpp import tensor_allows_quantization
from quantdrop.tempfiles import sweep_stale
from quantdrop.tune.budget import Budget, byte_budget, fit_devices, parse_budget
from quantdrop.tune.emit import render_recipe
from quantdrop.tune.measure import CALIBRATION_CHUNKS, N_CTX
from quantdrop.tune.sensitivity import (
    Sensitivity,
    candidate_types,
    prior_sensitivity,
    quantizable,
    role_class,
    scale_for,
    tier1,
)
from quantdrop.tune.solve import Item, Solution, minimum_bytes, solve
from quantdrop.util import atomic_write, comma_list, fmt_bytes

DEFAULT_TYPES = "q2_k,q3_k,q4_k,q5_k,q6_k,q8_0"


@dataclass
class TuneResult:
    recipe_text: str
    path: Path | None
    budget: str
    budget_bytes: int  # what the tensors may occupy in all
    size_bytes: int
    n_params: int
    solution: Solution
    sensitivity: Sensitivity
    decisions: list[dict[str, Any]]
    scales: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    fingerprint: str = ""
    text_hash: str = ""
    measurements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def bits_per_weight(self) -> float:
        return self.size_bytes * 8 / max(1, self.n_params)

    def to_dict(self) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "budget_bytes": self.budget_bytes,
            "size_bytes": self.size_bytes,
            "bits_per_weight": round(self.bits_per_weight, 4),
            "predicted_loss": self.solution.loss,
            "optimality_gap": self.solution.gap,
            "sensitivity": self.sensitivity.source,
            "imatrix_weighted": self.sensitivity.weighted,
            "scales": self.scales,
            "model_fingerprint": self.fingerprint,
            "text_hash": self.text_hash,
            "notes": self.notes,
            "recipe_path": str(self.path) if self.path else None,
            "measurements": self.measurements,
            "tensors": self.decisions,
        }


def parse_types(types: str | list[str]) -> list[T]:
    out = [type_from_name(x) for x in comma_list(types)]
    if not out:
        raise QuantdropError("--types: give at least one type (e.g. q2_k,q4_k,q8_0)")
    return out


def _candidates(inv: ModelInventory, types: list[T], has_imatrix: bool) -> dict[str, list[T]]:
    out = {}
    for t in quantizable(inv):
        cands = candidate_types(t, types, has_imatrix)
        if not cands:
            raise QuantdropError(
                f"--types: none of {', '.join(q.name.lower() for q in types)} is usable for "
                f"{t.name} (they need an imatrix: pass --imatrix FILE or add e.g. q4_k)"
            )
        out[t.name] = cands
    return out


def _items(inv: ModelInventory, cands: dict[str, list[T]], sens: Sensitivity, scales: dict[str, float]) -> list[Item]:
    by_name = {t.name: t for t in inv.tensors}
    return [
        Item(
            n,
            tuple(q.name for q in qs),
            tuple(tensor_bytes(q, by_name[n].shape) for q in qs),
            tuple(scale_for(scales, n) * sens.error[n][q.name] for q in qs),
        )
        for n, qs in cands.items()
    ]


def _fixed_bytes(inv: ModelInventory) -> int:
    return sum(t.nbytes for t in inv.tensors if not tensor_allows_quantization(t))


def _gib(n: int) -> str:
    return fmt_bytes(n)  # the one byte formatter (quantdrop.util)


def _check_floor(items: list[Item], fixed: int, budget: int, what: str) -> None:
    least = minimum_bytes(items) + fixed
    if budget < least:
        raise QuantdropError(
            f"--budget {what} ({budget} bytes, {_gib(budget)}) is below the smallest possible mix "
            f"of the allowed types: {least} bytes ({_gib(least)})"
        )


def _render(inv: ModelInventory, items: list[Item], sol: Solution, header: list[str], name: str) -> str:
    by = {it.name: it for it in items}
    decisions = {n: type_from_name(q) for n, q in sol.choice.items()}
    nbytes = {n: by[n].nbytes[by[n].types.index(q)] for n, q in sol.choice.items()}
    loss = {n: by[n].loss[by[n].types.index(q)] for n, q in sol.choice.items()}
    return render_recipe(name, decisions, nbytes, loss, header, f"tuned by quantdrop for {inv.name}")


def _fits_devices(inv: ModelInventory, text: str, spec: str, ctx: int) -> bool:
    from quantdrop.plan import plan

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "trial.toml"
        path.write_text(text)
        return all(f.fits for f in plan(inv, str(path), devices=spec, ctx=ctx).recipes[0].devices)


def _device_upper_bound(inv: ModelInventory, spec: str, ctx: int) -> int:
    """Summed free memory for weights: capacity - headroom - everything else plan puts on the devices,
    plus what stays on the host; an upper bound (the tied-output copy can only make less room)."""
    from quantdrop.plan import plan

    p = plan(inv, "Q8_0", devices=spec, ctx=ctx).recipes[0]
    fit = p.devices[0]
    on_devices = sum(fit.per_device_bytes)
    weights_on_devices = p.size_bytes - fit.host_bytes
    fixed = on_devices - weights_on_devices
    return fit.capacity_bytes * fit.count - fixed - fit.count * (1 << 30) + fit.host_bytes


def _solve_budget(
    inv: ModelInventory, bud: Budget, items: list[Item], fixed: int, ctx: int, attempt: Any, notes: list[str]
) -> tuple[int, Solution, str]:
    """(the byte budget, the solution, its recipe text): direct for a size, bisected with plan for devices."""
    least = minimum_bytes(items) + fixed
    if bud.kind != "devices":
        total = byte_budget(bud, inv.n_params)
        _check_floor(items, fixed, total, bud.spec)
        _, (sol, body) = attempt(total, items)
        return total, sol, body
    hi = max(_device_upper_bound(inv, bud.spec, ctx), least)
    fit = fit_devices(lambda b: attempt(b, items), least, hi)
    sol, body = fit.result  # type: ignore[misc]
    notes.append(
        f"device budget {bud.spec} at ctx {ctx}: {fit.budget_bytes} bytes of tensors fit "
        f"(found by plan in {fit.trials} trials)"
    )
    return fit.budget_bytes, sol, body


def _check_arguments(
    is_config: bool,
    measure: int,
    ctx: int,
    out: str | os.PathLike[str] | None,
    imatrix: str | os.PathLike[str] | None,
) -> None:
    """Validate before any work (is_config: MODEL is a config.json, no weights)."""
    if measure < 0 or ctx < 1:
        raise QuantdropError("--measure must be >= 0 and --ctx positive")
    if out is not None and not Path(out).parent.is_dir():
        raise QuantdropError(f"--out {out}: no such directory {Path(out).parent}")
    if is_config and imatrix:
        raise QuantdropError("--imatrix needs the model's weights (a GGUF), not a config.json")


def _sensitivity(
    path: Path,
    inv: ModelInventory,
    cands: dict[str, list[T]],
    is_config: bool,
    imat: Any,
    imatrix: str | os.PathLike[str] | None,
    threads: int | None,
    progress: bool,
    cache_dir: str | os.PathLike[str] | None,
    pool_dir: Path | None = None,
) -> tuple[Sensitivity, str, list[str]]:
    """Tier 1 (weights) or the shipped priors (a config): the sensitivity, the model fingerprint, notes."""
    if is_config:
        fingerprint = "config-" + hashlib.sha256(path.read_bytes() if path.is_file() else b"").hexdigest()[:16]
        return prior_sensitivity(inv, cands), fingerprint, []
    from quantdrop.fingerprint import file_fingerprint
    from quantdrop.util import cache_dir as default_cache

    digest = file_fingerprint(imatrix) if imatrix else ""
    sens = tier1(
        path,
        inv,
        cands,
        imat,
        imatrix_digest=digest,
        threads=threads,
        progress=progress,
        cache_dir=Path(cache_dir) if cache_dir else default_cache() / "tune",
        pool_dir=pool_dir,
    )
    notes = [] if sens.weighted else ["tier 1 is unweighted (no --imatrix): every input column counts the same"]
    return sens, file_fingerprint(path), notes


def _decisions(inv: ModelInventory, items: list[Item], sol: Solution) -> list[dict[str, Any]]:
    """The per-tensor decision of `--json`: type, bytes, predicted loss, tensor class."""
    by_name = {t.name: t for t in inv.tensors}
    by_item = {it.name: it for it in items}
    return [
        {
            "name": n,
            "type": q.lower(),
            "bytes": tensor_bytes(type_from_name(q), by_name[n].shape),
            "predicted_loss": by_item[n].loss[by_item[n].types.index(q)],
            "class": role_class(n),
        }
        for n, q in sol.choice.items()
    ]


def _tier2(
    problem: _Problem,
    items: list[Item],
    sol: Solution,
    measure: int,
    text: str | os.PathLike[str] | None,
    imatrix: str | os.PathLike[str] | None,
    chunking: tuple[int, int],
    progress: bool,
) -> tuple[dict[str, float], list[dict[str, Any]], str]:
    """Tier 2: measure `measure` groups' KL divergence around the tier-1 solution; the scales per role
    (also recorded in the problem's header), the measurements and the calibration text's hash."""
    from quantdrop.tune.measure import calibrate

    header = problem.header

    def render(choice: dict[str, str]) -> str:
        return _render(problem.inv, items, Solution(choice, 0, 0.0, 0.0), header, "tier2-trial")

    measure_ctx, measure_chunks = chunking
    scales, measurements, text_hash = calibrate(
        problem.path,
        items,
        sol,
        render,
        measure,
        problem.inv.hparams.n_layer,
        text=text,
        imatrix=imatrix,
        n_ctx=measure_ctx,
        chunks=measure_chunks,
        progress=progress,
        pool=problem.sens.pool,
    )
    header.append(
        f"calibration text sha256 = {text_hash}; tier 2 scales: "
        + ", ".join(f"{k} {v:.3g}" for k, v in sorted(scales.items()))
    )
    return scales, measurements, text_hash


def tune(
    model: str | os.PathLike[str],
    budget: str,
    *,
    ctx: int = 32768,
    types: str | list[str] = DEFAULT_TYPES,
    imatrix: str | os.PathLike[str] | None = None,
    text: str | os.PathLike[str] | None = None,
    measure: int = 0,
    out: str | os.PathLike[str] | None = None,
    threads: int | None = None,
    progress: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    measure_ctx: int = N_CTX,
    measure_chunks: int = CALIBRATION_CHUNKS,
) -> TuneResult:
    """Tune a recipe for MODEL within BUDGET (see the module docstring); writes `out` if given.

    measure_ctx / measure_chunks: tier 2's KL divergence chunks (tokens each, how many)."""
    scales: dict[str, float] = {}
    measurements: list[dict[str, Any]] = []
    text_hash = ""
    with tempfile.TemporaryDirectory(prefix="quantdrop-tune-pool-") as pool:  # tier 1's tensors for tier 2
        problem = _setup(model, budget, types, ctx, imatrix, measure, out, threads, progress, cache_dir, Path(pool))
        items, (total, sol, body), seconds = problem.solve_scaled(scales)
        if measure and not problem.is_config:
            chunking = (measure_ctx, measure_chunks)
            scales, measurements, text_hash = _tier2(problem, items, sol, measure, text, imatrix, chunking, progress)
            problem.notes.append(f"tier 2: {len(measurements)} groups measured on the calibration text")
            items, (total, sol, body), seconds = problem.solve_scaled(scales)
    problem.notes.append(
        f"solved {len(items)} tensors in {seconds:.2f} s (with any plan checks); gap "
        f"<= {sol.gap:.4g} of predicted loss {sol.loss:.4g}"
    )
    dst = Path(out) if out else None
    if dst is not None:
        _write_atomic(dst, body)
    return TuneResult(
        body,
        dst,
        problem.bud.spec,
        total,
        sol.nbytes + problem.fixed,
        problem.inv.n_params,
        sol,
        problem.sens,
        _decisions(problem.inv, items, sol),
        scales,
        problem.notes,
        problem.fingerprint,
        text_hash,
        measurements,
    )


def _setup(
    model: str | os.PathLike[str],
    budget: str,
    types: str | list[str],
    ctx: int,
    imatrix: str | os.PathLike[str] | None,
    measure: int,
    out: str | os.PathLike[str] | None,
    threads: int | None,
    progress: bool,
    cache_dir: str | os.PathLike[str] | None,
    pool: Path,
) -> _Problem:
    """Everything validated before any work, then the model, its candidates and their tier 1 sensitivity
    (keeping tier 1's quantized tensors in `pool` when tier 2 will use them and the disk holds them)."""
    bud: Budget = parse_budget(budget)
    qtypes = parse_types(types)
    source = locate(model)  # a GGUF (also inside a model directory), else a config.json: priors only
    path = source.path
    is_config = source.kind == "config"
    _check_arguments(is_config, measure, ctx, out, imatrix)
    inv = load(path)
    imat = _read_imatrix(imatrix, inv)
    cands = _candidates(inv, qtypes, imat is not None)
    keep = pool if measure and not is_config and _pool_fits(inv, cands, pool) else None
    sens, fingerprint, notes = _sensitivity(
        path, inv, cands, is_config, imat, imatrix, threads, progress, cache_dir, keep
    )
    if measure and is_config:
        notes.append("--measure ignored: a config.json has no weights to run, so tier 1 priors only")
    notes += sens.notes
    header = _header(bud, fingerprint, sens)
    return _Problem(path, is_config, inv, bud, cands, sens, fingerprint, _fixed_bytes(inv), header, ctx, notes)


def _pool_fits(inv: ModelInventory, cands: dict[str, list[T]], folder: Path) -> bool:
    """Whether `folder`'s disk holds every tensor at every candidate type (`sensitivity._Pool`), with 20% spare."""
    shapes = {t.name: t.shape for t in inv.tensors}
    need = sum(tensor_bytes(q, shapes[n]) for n, qs in cands.items() for q in qs)
    return shutil.disk_usage(folder).free > 1.2 * need


def _read_imatrix(imatrix: str | os.PathLike[str] | None, inv: ModelInventory) -> Any:
    """The imatrix normalized to the model's tensors (a wrong model fails here), or None."""
    if not imatrix:
        return None
    from quantdrop.imatrix_io import read_normalized

    return read_normalized(imatrix, {t.name: t.shape for t in inv.tensors})


def _header(bud: Budget, fingerprint: str, sens: Sensitivity) -> list[str]:
    """The recipe file's opening comments: what it was tuned for and from."""
    return [
        f"quantdrop.tune: budget = {bud.spec}",
        f"model fingerprint = {fingerprint}",
        f"sensitivity = {sens.source}{' (imatrix-weighted)' if sens.weighted else ''}",
    ]


@dataclass
class _Problem:
    """One budget to fill: the model, the tensors' candidate types and sensitivity, the bytes that stay as
    they are, the recipe header (tier 2 adds its scales) and the notes the solver adds to."""

    path: Path
    is_config: bool  # MODEL is a config.json: shipped priors, no weights to measure
    inv: ModelInventory
    bud: Budget
    cands: dict[str, list[T]]
    sens: Sensitivity
    fingerprint: str
    fixed: int
    header: list[str]
    ctx: int
    notes: list[str]

    def attempt(self, total: int, items: list[Item]) -> tuple[bool, tuple[Solution, str]]:
        """The best mix within `total` bytes, its recipe text, and whether it fits (devices: by plan)."""
        sol = solve(items, total - self.fixed)
        body = _render(self.inv, items, sol, [*self.header, f"byte budget = {total}"], f"tuned-{self.bud.spec}")
        fits = _fits_devices(self.inv, body, self.bud.spec, self.ctx) if self.bud.kind == "devices" else True
        return fits, (sol, body)

    def solve_scaled(self, scales: dict[str, float]) -> tuple[list[Item], tuple[int, Solution, str], float]:
        """The items with losses scaled per role, the budget's solution and the seconds it took."""
        items = _items(self.inv, self.cands, self.sens, scales)
        t0 = time.perf_counter()
        solved = _solve_budget(self.inv, self.bud, items, self.fixed, self.ctx, self.attempt, self.notes)
        return items, solved, time.perf_counter() - t0


def _write_atomic(path: Path, content: str) -> None:
    if not path.parent.exists():
        raise QuantdropError(f"{path.parent}: no such directory")
    sweep_stale(path.parent)
    try:
        atomic_write(path, content)
    except OSError as err:
        raise QuantdropError(f"writing {path} failed: {err.strerror or err}") from None
