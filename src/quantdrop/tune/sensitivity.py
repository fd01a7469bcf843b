"""How much each tensor loses at each candidate type.

Tier 1 (weight space, any model size): for every quantizable tensor and type, quantize -> dequantize
with ggml's own kernels (the same ggml_quantize_chunk `quantize` uses, with the same imatrix, and
ggml's `to_float`) and sum the squared error of each column weighted by the imatrix (in_sum2/counts:
the mean squared activation of that input), i.e. the expected squared perturbation of the tensor's
output per token. Without an imatrix every column weighs 1 (unweighted, and said so); with one, a
tensor it does not cover weighs the median mean importance of those it covers. The source is
streamed slab by slab (memory bounded by one slab of float32 rows), every type on each slab, rows
spread over threads. An untied token embedding is a lookup (one row per token), so its error is divided
by its row count; expert tensors are scaled by the fraction of experts a token uses.

Priors (a config.json, no weights): loss = class factor x elements x the type's relative error, both
measured on real models and shipped as `priors.json` (see `derive_priors`).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T

from quantdrop import kernels
from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUFHeader, GGUFStreamWriter, TensorEntry, read_header
from quantdrop.imatrix_io import importance_rows
from quantdrop.inventory import ModelInventory, TensorInfo
from quantdrop.recipes.llamacpp import (
    QUANTIZED,
    is_token_embd,
    layer_of,
    requires_imatrix,
    tensor_allows_quantization,
    tensor_type_fallback,
)
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_output, atomic_write, progress_bar

SLAB_BYTES = 32 * 1024 * 1024  # float32 rows in memory at a time
_CACHE_VERSION = "3"
CLASSES = ("attention", "mlp", "experts", "embeddings", "output")


def role_of(name: str) -> str:
    """The tensor's role: its name without the block prefix (`blk.3.ffn_down.weight` -> `ffn_down`)."""
    base = name.split(".", 2)[2] if layer_of(name) is not None else name
    return base.removesuffix(".weight")


def role_class(name: str) -> str:
    """attention, mlp, experts (routed experts), embeddings or output."""
    role = role_of(name)
    if is_token_embd(name):
        return "embeddings"
    if name == "output.weight":
        return "output"
    if role.endswith("_exps"):
        return "experts"
    if role.startswith("attn"):
        return "attention"
    return "mlp"


def scale_for(scales: dict[str, float], name: str) -> float:
    """The tier-2 scale of a tensor: its role's, else its class's (`class:mlp`, or a bare class name as in
    older scale files), else the overall median `*`; 1 without tier 2."""
    cls = role_class(name)
    for key in (role_of(name), f"class:{cls}", cls, "*"):
        if key in scales:
            return scales[key]
    return 1.0


def candidate_types(t: TensorInfo, types: list[T], has_imatrix: bool) -> list[T]:
    """What each requested type becomes for this tensor under llama.cpp's constraints: the shape
    fallback (tensor_type_fallback), and no type that needs an imatrix when there is none."""
    out: list[T] = []
    for qtype in types:
        eff = tensor_type_fallback(t, qtype)
        needs = requires_imatrix(t.name, eff, None) or (eff in QUANTIZED and kernels.requires_imatrix(eff))
        if needs and not has_imatrix:
            continue
        if eff not in out:
            out.append(eff)
    return out


def quantizable(inv: ModelInventory) -> list[TensorInfo]:
    return [t for t in inv.tensors if tensor_allows_quantization(t)]


def token_weight(inv: ModelInventory, t: TensorInfo) -> float:
    """Per-token share of the tensor's output error: 1/rows for a lookup, used/total for experts. A tied
    token embedding is also the output projection (a full matmul every token): weight 1, like output."""
    tied = not any(x.name == "output.weight" for x in inv.tensors)
    if is_token_embd(t.name) and not tied:
        return 1.0 / max(1, t.n_elements // t.shape[0])
    if role_class(t.name) == "experts" and inv.hparams.n_expert:
        return max(1, inv.hparams.n_expert_used) / inv.hparams.n_expert
    return 1.0


@dataclass
class Sensitivity:
    """error[tensor][type] (tier 1's expected squared output perturbation per token), signal[tensor]
    (the same weighting of the weights themselves) and how they were obtained."""

    error: dict[str, dict[str, float]]
    signal: dict[str, float] = field(default_factory=dict)
    source: str = "tier 1"  # "tier 1" or "priors"
    weighted: bool = False  # imatrix-weighted
    seconds: float = 0.0
    bytes_per_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    pool: list[Path] = field(default_factory=list)  # tier 1's quantized tensors, one GGUF per type


def _neutral_importance(imatrix: dict[str, np.ndarray] | None) -> float:
    """The column weight for a tensor the imatrix does not cover (a tied output, token_embd): the median
    over covered tensors of their mean importance, so weighted and unweighted errors share one scale."""
    if not imatrix:
        return 1.0
    return float(np.median([float(v.mean()) for v in imatrix.values()]))


def _slab_errors(
    rows: np.ndarray, types: list[T], imat: np.ndarray | None, pool: ThreadPoolExecutor | None, threads: int
) -> tuple[np.ndarray, float, list[list[np.ndarray]]]:
    """Weighted squared error of each type on a float32 slab, the weighted energy of the slab, and the
    quantized bytes (per type, the row blocks in order)."""
    n_rows, n = rows.shape
    w = np.ones(n, dtype=np.float64) if imat is None else imat.astype(np.float64)
    per = max(1, -(-n_rows // threads))
    starts = list(range(0, n_rows, per))

    def work(start: int) -> tuple[np.ndarray, list[np.ndarray]]:
        block = np.ascontiguousarray(rows[start : start + per])
        errs, bufs = np.zeros(len(types)), []
        for k, qtype in enumerate(types):
            buf = np.empty(block.shape[0] * kernels.row_size(qtype, n), dtype=np.uint8)
            kernels.quantize_rows(qtype, block, buf, imat)
            diff = kernels.dequantize_rows(qtype, buf, n) - block
            errs[k] = float(np.einsum("ij,ij->j", diff, diff, dtype=np.float64) @ w)
            bufs.append(buf)
        return errs, bufs

    parts = list(pool.map(work, starts)) if pool and len(starts) > 1 else [work(s) for s in starts]
    energy = float(np.einsum("ij,ij->j", rows, rows, dtype=np.float64) @ w)
    quantized = [[bufs[k] for _, bufs in parts] for k in range(len(types))]
    return np.sum([e for e, _ in parts], axis=0), energy, quantized


class _Pool:
    """Tier 1's quantized bytes kept as one GGUF per type (no metadata), so tier 2 assembles its trial
    files from them (`quantize(reuse_from=...)`) instead of quantizing every tensor again."""

    def __init__(self, folder: Path, header: GGUFHeader, types: dict[str, list[T]], stack: ExitStack) -> None:
        shapes = {t.name: tuple(t.shape) for t in header.tensors}
        self.paths: list[Path] = []
        self.writers: dict[T, GGUFStreamWriter] = {}
        folder.mkdir(parents=True, exist_ok=True)
        for qtype in sorted({q for v in types.values() for q in v}):
            path = folder / f"pool-{qtype.name}.gguf"
            tensors = [(name, shapes[name], qtype) for name, cands in types.items() if qtype in cands]
            self.writers[qtype] = GGUFStreamWriter(stack.enter_context(atomic_output(path)), [], tensors)
            self.paths.append(path)

    def keep(self, qtype: T, data: np.ndarray) -> None:
        self.writers[qtype].write(data)

    def end_tensor(self, types: list[T]) -> None:
        for qtype in types:
            self.writers[qtype].end_tensor()

    def finish(self) -> None:
        for writer in self.writers.values():
            writer.finish()


def _progress(enabled: bool, total: int):
    if not enabled:
        return nullcontext(None)
    return progress_bar(unit="bytes", transient=True)


def _cache_key(path: Path, types: dict[str, list[T]], imatrix_digest: str) -> str:
    from quantdrop.fingerprint import file_fingerprint

    spec = json.dumps({k: [t.name for t in v] for k, v in types.items()}, sort_keys=True)
    raw = f"{_CACHE_VERSION}|{file_fingerprint(path)}|{imatrix_digest}|{spec}"
    return hashlib.sha256(raw.encode()).hexdigest()[:20]


def _tensor_errors(
    fh: int,
    src: object,
    t: TensorInfo,
    types: list[T],
    imatrix: dict | None,
    pool,
    threads: int,
    advance,
    keep: Callable[[T, np.ndarray], object] | None = None,
) -> tuple[list[float], float]:
    from quantdrop.kernels import to_f32

    n = t.shape[0]
    n_rows = t.n_elements // n
    src_row = src.nbytes // n_rows  # type: ignore[attr-defined]
    imat = importance_rows(imatrix, t.name, t.shape)
    per_expert = t.shape[1] if len(t.shape) > 2 else n_rows
    slab = max(1, SLAB_BYTES // (4 * n))
    errs, energy, r = np.zeros(len(types)), 0.0, 0
    while r < n_rows:
        stop = min(n_rows, r + slab, (r // per_expert + 1) * per_expert)
        raw = os.pread(fh, (stop - r) * src_row, src.offset + r * src_row)  # type: ignore[attr-defined]
        if len(raw) != (stop - r) * src_row:
            raise QuantdropError(f"unexpected end of file in {t.name}")
        rows = to_f32(np.frombuffer(raw, dtype=np.uint8), t.type, n)
        e, s, quantized = _slab_errors(rows, types, None if imat is None else imat[r // per_expert], pool, threads)
        if keep is not None:
            for qtype, bufs in zip(types, quantized, strict=True):
                for buf in bufs:
                    keep(qtype, buf)
        errs += e
        energy += s
        advance(len(raw))
        r = stop
    return list(errs), energy


def tier1(
    path: str | os.PathLike[str],
    inv: ModelInventory,
    types: dict[str, list[T]],
    imatrix: dict[str, np.ndarray] | None = None,
    *,
    imatrix_digest: str = "",
    threads: int | None = None,
    cache_dir: Path | None = None,
    pool_dir: Path | None = None,
    progress: bool = False,
) -> Sensitivity:
    """Tier 1 for every tensor in `types` (tensor -> its candidate types), cached by model and imatrix.
    With `pool_dir` (and not from the cache), the quantized tensors are kept there too (`_Pool`)."""
    path = Path(path)
    cache = None if cache_dir is None else cache_dir / f"tier1-{_cache_key(path, types, imatrix_digest)}.json"
    if cache is not None and cache.is_file():
        return _cached_tier1(cache, imatrix is not None)
    header = read_header(path)
    sources = {t.name: t for t in header.tensors}
    _check_float_sources(path, inv, types)
    for qtype in {q for v in types.values() for q in v}:
        kernels.prepare(qtype)
    threads = max(1, threads or os.cpu_count() or 1)
    total = sum(sources[n].nbytes for n in types)
    t0 = time.perf_counter()
    with ExitStack() as stack:
        kept = _Pool(pool_dir, header, types, stack) if pool_dir is not None else None
        error, signal = _tier1_errors(path, inv, types, imatrix, sources, threads, total, progress, kept)
    seconds = time.perf_counter() - t0
    result = Sensitivity(error, signal, "tier 1", imatrix is not None, seconds, total / max(seconds, 1e-9))
    result.pool = kept.paths if kept else []
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(cache.parent)
        atomic_write(
            cache, json.dumps({"error": error, "signal": signal, "seconds": seconds, "bytes_per_s": result.bytes_per_s})
        )
    return result


def _cached_tier1(cache: Path, weighted: bool) -> Sensitivity:
    d = json.loads(cache.read_text())
    return Sensitivity(
        d["error"], d["signal"], "tier 1", weighted, d["seconds"], d["bytes_per_s"], ["tier 1 from cache " + str(cache)]
    )


def _check_float_sources(path: Path, inv: ModelInventory, types: dict[str, list[T]]) -> None:
    """Tier 1 measures against float weights only."""
    from quantdrop.kernels import FLOAT_SOURCES

    by_name = {t.name: t for t in inv.tensors}
    for name in types:
        if by_name[name].type not in FLOAT_SOURCES:
            raise QuantdropError(
                f"{path}: {name} is {by_name[name].type.name}; tier 1 needs an F32/F16/BF16 "
                "source (the error against an already quantized weight means little)"
            )


def _tier1_errors(
    path: Path,
    inv: ModelInventory,
    types: dict[str, list[T]],
    imatrix: dict[str, np.ndarray] | None,
    sources: dict[str, TensorEntry],
    threads: int,
    total: int,
    progress: bool,
    kept: _Pool | None = None,
) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """Every tensor's scaled error per candidate type and its signal, streamed from the file (`total` bytes)."""
    by_name = {t.name: t for t in inv.tensors}
    error: dict[str, dict[str, float]] = {}
    signal: dict[str, float] = {}
    with ThreadPoolExecutor(threads) as pool, open(path, "rb", buffering=0) as f, _progress(progress, total) as bar:
        title = f"[bold]tier 1[/bold] ({sum(len(v) for v in types.values())} tensor-types)"
        task = bar.add_task(title, total=total) if bar else None

        def advance(n: int) -> None:
            if bar:
                bar.update(task, advance=n)

        neutral = _neutral_importance(imatrix)
        for name, cands in types.items():
            t = by_name[name]
            errs, energy = _tensor_errors(
                f.fileno(), sources[name], t, cands, imatrix, pool, threads, advance, kept.keep if kept else None
            )
            if kept:
                kept.end_tensor(cands)
            scale = token_weight(inv, t) * (neutral if importance_rows(imatrix, t.name, t.shape) is None else 1.0)
            error[name] = {q.name: e * scale for q, e in zip(cands, errs, strict=True)}
            signal[name] = energy * scale
    if kept:
        kept.finish()
    return error, signal


# ------------------------------------------------------------------------------------------ priors


def load_priors() -> dict:
    return json.loads(resources.files("quantdrop.tune").joinpath("priors.json").read_text())


def prior_sensitivity(inv: ModelInventory, types: dict[str, list[T]]) -> Sensitivity:
    """Loss from shipped priors: class factor x elements x the type's relative error x token weight."""
    pri = load_priors()
    rel, factor = pri["relative_error"], pri["class_factor"]
    by_name = {t.name: t for t in inv.tensors}
    error = {}
    for name, cands in types.items():
        t = by_name[name]
        base = factor[role_class(name)] * t.n_elements * token_weight(inv, t)
        missing = [q.name for q in cands if q.name not in rel]
        if missing:
            raise QuantdropError(f"no prior for type(s) {', '.join(missing)} (priors know: {', '.join(rel)})")
        error[name] = {q.name: base * rel[q.name] for q in cands}
    note = f"sensitivity from per-class priors shipped with quantdrop ({pri['derived_from']}), not measured"
    return Sensitivity(error, {}, "priors", False, notes=[note])


def derive_priors(measured: list[tuple[ModelInventory, Sensitivity, dict[str, float]]], label: str) -> dict:
    """priors.json from measured models: per type, the median relative error (error / signal); per class,
    the median calibrated loss per element at unit relative error, normalised to the MLP's."""
    rel: dict[str, list[float]] = {}
    per_class: dict[str, list[float]] = {c: [] for c in CLASSES}
    for inv, sens, scale in measured:
        by_name = {t.name: t for t in inv.tensors}
        for name, errs in sens.error.items():
            sig = sens.signal.get(name) or 0.0
            if sig <= 0:
                continue
            for q, e in errs.items():
                rel.setdefault(q, []).append(e / sig)
            t = by_name[name]
            cls = role_class(name)
            per_class[cls].append(scale_for(scale, name) * sig / (t.n_elements * token_weight(inv, t)))
    med = {c: float(np.median(v)) for c, v in per_class.items() if v}
    ref = med.get("mlp") or 1.0
    factor = {c: med.get(c, ref) / ref for c in CLASSES}
    return {
        "derived_from": label,
        "relative_error": {q: float(np.median(v)) for q, v in sorted(rel.items())},
        "class_factor": factor,
    }
