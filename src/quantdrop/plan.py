"""`quantdrop plan`: size, bits per weight, memory at a context length and device fit, before quantizing.

MODEL is a GGUF (only its header is read), an HF model directory or its config.json. Each recipe is
resolved by the one recipe resolver (`quantdrop.recipes.resolve`), so the planned size is the size
`quantdrop quantize` writes. Memory per device follows llama.cpp's layer split (src/llama-model.cpp,
`load_tensors`): the input embedding stays in host memory; blocks and then the output layer go to the
devices in order, each device taking a share proportional to its memory; each device then holds its
blocks' weights and KV cache, its compute buffer and the runtime overhead (`quantdrop.memory`).

JSON schema (`--json`), stable; sizes in bytes:
  {"model": str, "n_params": int, "source_bytes": int, "ctx": int, "parallel": int, "kv_type": str,
   "kv_layout": str, "flash_attn": bool, "n_ubatch": int, "swa_full": bool, "mmap": bool,
   "recipes": [{"recipe": str, "size_bytes": int, "bits_per_weight": float, "bytes_by_type": {str: int},
                "kv_cache_bytes": int, "compute_buffer_bytes": int, "total_bytes": int,
                "devices": [{"spec": str, "count": int, "bytes_per_device": int, "fits": bool,
                             "capacity_bytes": int, "total_bytes": int, "host_bytes": int,
                             "per_device_bytes": [int], "cpu_repack_bytes": int}]}],
   "recommendation": [{"devices": str, "recipe": str | null, "alternatives": [str], "fits": [str],
                       "reason": str}]}
`total_bytes` of a recipe = weights + KV cache + one compute buffer (everything on one device, no
runtime overhead); `bytes_per_device` = the fullest device of the set (what decides `fits`, with
`headroom_gib` to spare); a set's `total_bytes` = the sum over its devices, `host_bytes` = what stays
in host memory (the input embedding; 0 on a CPU host, which holds everything), `cpu_repack_bytes` =
llama.cpp's CPU_REPACK buffer on a CPU host (`--devices cpu`, `cpu-32G`; 0 elsewhere; counted in
`bytes_per_device` on top of the weights with `--mmap yes`, within them with `--mmap no`). Recipe "as-is"
plans a GGUF as it is (the default for a quantized GGUF).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from gguf import GGMLQuantizationType as T

from quantdrop.devices import Device, DeviceSet, GiB, parse_devices
from quantdrop.errors import QuantdropError
from quantdrop.inventory import ModelInventory, load
from quantdrop.memory import (
    KV_TYPES,
    check_kv_heads,
    compute_buffer_bytes,
    cpu_repack_bytes,
    kv_bytes_per_layer,
    layer_shapes,
    resolve_layout,
)
from quantdrop.recipes.llamacpp import layer_of
from quantdrop.recommend import Candidate, Placement, Recommendation
from quantdrop.recommend import DeviceSet as Fleet
from quantdrop.recommend import recommend as policy
from quantdrop.util import fmt_bytes, name_list

DEFAULT_RECIPES = ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K")
AS_IS = "as-is"  # the pseudo-recipe "the GGUF as it is" (the default for an already quantized GGUF)


@dataclass
class DeviceFit:
    spec: str
    count: int
    bytes_per_device: int
    fits: bool
    capacity_bytes: int
    total_bytes: int
    host_bytes: int
    per_device_bytes: list[int]
    cpu_repack_bytes: int = 0


@dataclass
class RecipePlan:
    recipe: str
    size_bytes: int
    bits_per_weight: float
    bytes_by_type: dict[str, int]
    kv_cache_bytes: int
    compute_buffer_bytes: int
    total_bytes: int
    devices: list[DeviceFit] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    model: str
    n_params: int
    source_bytes: int
    ctx: int
    parallel: int
    kv_type: str
    kv_layout: str
    flash_attn: bool
    n_ubatch: int
    swa_full: bool
    recipes: list[RecipePlan]
    recommendation: list[Recommendation]
    mmap: bool = True

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for r in d["recipes"]:
            r.pop("warnings")
        d["recommendation"] = [
            {
                "devices": r.device_set,
                "recipe": r.recipe,
                "alternatives": r.alternatives,
                "fits": r.fits,
                "reason": r.reason,
            }
            for r in self.recommendation
        ]
        return d


# ---------------------------------------------------------------------------------------------
# layer split (llama.cpp: llama_model::load_tensors, split_mode = layer)
# ---------------------------------------------------------------------------------------------


def layer_devices(n_layer: int, weights: list[float]) -> list[int]:
    """Device index of each block and, last, of the output layer, as llama.cpp assigns them.

    splits = cumulative shares of `weights` (llama.cpp: each device's free memory), normalised; block
    il goes to upper_bound(splits, il / (n_layer + 1)). Computed in float32 like llama.cpp's floats.
    """
    splits = np.cumsum(np.asarray(weights, dtype=np.float32), dtype=np.float32)
    splits = (splits / splits[-1]).astype(np.float32)
    n_gpu_layers = n_layer + 1
    out = []
    for il in range(n_layer + 1):
        x = np.float32(il) / np.float32(n_gpu_layers)
        out.append(min(int(np.searchsorted(splits, x, side="right")), len(weights) - 1))
    return out


@dataclass(frozen=True)
class _Placement:
    """A device set with everything that does not depend on the recipe: layer split, KV, buffers."""

    devices: list[Device]
    where: list[int]  # device of each block, then of the output layer
    fixed: list[int]  # per device: overhead + KV cache of its blocks + its compute buffer


def _place(
    inv: ModelInventory,
    dset: DeviceSet,
    kv_layers: list[int],
    *,
    shapes: list,
    flash_attn: bool,
    kv_type: str,
    overhead_gib: float | None,
    memory: dict[str, Any],
) -> _Placement:
    devices: list[Device] = dset.devices
    overhead = [round(overhead_gib * GiB) if overhead_gib is not None else d.overhead_bytes for d in devices]
    # llama.cpp splits by each device's free memory: its capacity less the runtime's share
    free = [d.memory_bytes - o for d, o in zip(devices, overhead, strict=True)]
    for d, f in zip(devices, free, strict=True):
        if f <= 0:
            raise QuantdropError(f"device {d.name} has {_gib(d.memory_bytes)}, no more than its runtime overhead")
    where = layer_devices(inv.hparams.n_layer, free)
    fixed = list(overhead)
    for il, kv in enumerate(kv_layers):
        fixed[where[il]] += kv
    for i in range(len(devices)):
        mine = [s for s in shapes if where[s.index] == i]
        fixed[i] += compute_buffer_bytes(
            inv, mine, has_output=i == where[-1], flash_attn=flash_attn, kv_type_name=kv_type, **memory
        )
    return _Placement(devices, where, fixed)


Entry = tuple[str, int, T, tuple[int, ...]]  # a weight as a recipe writes it: name, bytes, type, ggml shape


def _fit(spec: str, place: _Placement, entries: list[Entry], headroom_gib: float, mmap: bool = True) -> DeviceFit:
    """Add one recipe's weights to a placement: blocks to their devices, the output layer to the last.

    A CPU host holds everything: the weights once (a tied embedding too: both uses read the same
    bytes) and, with mmap (llama.cpp's default), llama.cpp's CPU_REPACK copy of the weights its SIMD
    kernels repack (memory.cpu_repack_bytes) on top of the mapped file span that still covers them.
    Without mmap those weights are read straight into CPU_REPACK: extra bytes only for a repacked copy
    of a tied embedding (the output layer's duplicate; token_embd itself stays for GET_ROWS)."""
    devices, where = place.devices, place.where
    out_dev = where[-1]
    per_dev = list(place.fixed)
    host = 0
    repack = 0
    cpu = devices[0].cpu_features if devices[0].is_cpu else None
    tied = not any(name == "output.weight" for name, *_ in entries)
    for name, nbytes, _, _ in entries:
        il = layer_of(name)
        if il is not None and il < len(where) - 1:
            per_dev[where[il]] += nbytes
        elif name == "token_embd.weight" and cpu is None:
            host += nbytes  # the input layer always stays on the CPU
            if tied:  # llama.cpp duplicates a tied embedding as the output layer on the output device
                per_dev[out_dev] += nbytes
        else:
            per_dev[out_dev] += nbytes
    if cpu is not None:
        weights = [(name, qtype, shape) for name, _, qtype, shape in entries]
        repack = cpu_repack_bytes(weights, cpu)
        # without mmap only a tied embedding's repacked output duplicate is extra (token_embd stays too)
        tied_copy = cpu_repack_bytes([w for w in weights if w[0] == "token_embd.weight"], cpu) if tied else 0
        per_dev[0] += repack if mmap else tied_copy
    headroom = round(headroom_gib * GiB)
    fits = all(b + headroom <= d.memory_bytes for b, d in zip(per_dev, devices, strict=True))
    return DeviceFit(
        spec=spec,
        count=len(devices),
        bytes_per_device=max(per_dev),
        fits=fits,
        capacity_bytes=min(d.memory_bytes for d in devices),
        total_bytes=sum(per_dev),
        host_bytes=host,
        per_device_bytes=per_dev,
        cpu_repack_bytes=repack,
    )


# ---------------------------------------------------------------------------------------------
# recommendation (the paper's section 4.4: the best recipe that fits each device set)
# ---------------------------------------------------------------------------------------------

_gib = fmt_bytes  # the one byte formatter (quantdrop.util)


def recommend(recipes: list[RecipePlan], accuracy: dict[str, float] | None = None) -> list[Recommendation]:
    """Per device set: the one policy (`quantdrop.recommend`) on the plan's fit and measured scores."""
    sets = [Fleet(d.spec, d.count, d.capacity_bytes) for d in recipes[0].devices] if recipes else []
    scores = accuracy or {}
    candidates = [
        Candidate(
            r.recipe,
            r.size_bytes,
            r.bits_per_weight,
            {d.spec: Placement(d.total_bytes, d.bytes_per_device, d.fits) for d in r.devices},
            accuracy=scores.get(r.recipe),
        )
        for r in recipes
    ]
    return policy(sets, candidates)


# ---------------------------------------------------------------------------------------------
# the API
# ---------------------------------------------------------------------------------------------


def load_accuracy(accuracy: str | dict[str, float] | None) -> dict[str, float] | None:
    """`Q4_K_M=85.24,DQ3_K_M=85.53`, a JSON file {recipe: score}, or a dict."""
    if accuracy is None or isinstance(accuracy, dict):
        return accuracy
    p = Path(accuracy)
    if p.suffix == ".json" or p.is_file():
        try:
            data = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise QuantdropError(f"{p}: cannot read accuracy file ({err})") from None
        if not isinstance(data, dict):
            raise QuantdropError(f"{p}: an accuracy file maps recipe names to scores")
        return {str(k): float(v) for k, v in data.items()}
    out = {}
    for item in accuracy.split(","):
        name, sep, score = item.partition("=")
        try:
            out[name.strip()] = float(score)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise QuantdropError(f"malformed --accuracy item {item!r} (expected RECIPE=SCORE)")
    return out


def _switch(value: bool, name: str) -> bool:
    """A bool option; the old "yes"/"no" strings are refused ("no" would be truthy), not guessed."""
    if not isinstance(value, bool):
        raise QuantdropError(f"{name} must be True or False (got {value!r})")
    return value


def check_options(
    *,
    kv_type: str,
    flash_attn: bool,
    ctx: int,
    parallel: int,
    n_ubatch: int,
    headroom_gib: float = 1.0,
    overhead_gib: float | None = None,
) -> None:
    """The one check of a memory configuration (plan, tune and the study all pass through it): what
    llama.cpp itself refuses is refused here, with llama.cpp's reason."""
    if kv_type.lower() not in KV_TYPES:
        raise QuantdropError(f"unknown --kv-type {kv_type!r} (one of: {', '.join(KV_TYPES)})")
    # llama.cpp, src/llama-context.cpp, llama_init_from_model: a quantized type_v with flash_attn_type
    # disabled returns no context ("quantized V cache requires flash_attn to be enabled")
    if not flash_attn and kv_type.lower() != "f16":
        raise QuantdropError(
            f"--kv-type {kv_type.lower()} with --flash-attn no: llama.cpp refuses it "
            "(quantized V cache requires flash_attn to be enabled); use --flash-attn yes "
            "or --kv-type f16"
        )
    if ctx < 1 or parallel < 1 or n_ubatch < 1:
        raise QuantdropError("--ctx, --parallel and --n-ubatch must be positive")
    for flag, value in (("--headroom-gib", headroom_gib), ("--overhead-gib", overhead_gib)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise QuantdropError(f"{flag} must be a finite number of GiB, 0 or more (got {value})")


def _named_recipes(recipes: str | list[str] | None) -> dict[str, Any]:
    """The recipes given, loaded before any work (AS_IS: the model as it is); none given: {}."""
    from quantdrop.recipes import load_recipe

    names = name_list(recipes, (), "no recipe given (expected e.g. --recipes Q4_K_M,Q3_K_M)")
    return {n: None if n.lower() == AS_IS else load_recipe(n) for n in names}


def _default_recipes(inv: ModelInventory) -> dict[str, Any]:
    """No recipe given: a quantized GGUF is planned as it is; a float model with the usual presets."""
    from quantdrop.recipes import load_recipe

    quantized = any(t.type not in (T.F32, T.F16, T.BF16) for t in inv.tensors)
    return {AS_IS: None} if quantized else {n: load_recipe(n) for n in DEFAULT_RECIPES}


def _weights(name: str, recipe: Any, inv: ModelInventory) -> tuple[str, list[Entry], int, float, dict[str, int], list]:
    """A recipe's tensors (or the model's own, for AS_IS): name, entries, bytes, bpw, bytes by type, warnings."""
    from quantdrop.recipes import resolve

    if recipe is None:  # the model as it is: its own tensors and types
        by_type: dict[str, int] = {}
        for t in inv.tensors:
            by_type[t.type.name] = by_type.get(t.type.name, 0) + t.nbytes
        entries: list[Entry] = [(t.name, t.nbytes, t.type, t.shape) for t in inv.tensors]
        return name, entries, inv.nbytes, inv.nbytes * 8 / max(1, inv.n_params), by_type, []
    rp = resolve(recipe, inv)
    entries = [(e.name, e.nbytes, e.type, e.shape) for e in rp.entries]
    return recipe.name, entries, rp.nbytes, rp.bits_per_weight, dict(rp.bytes_by_type), rp.warnings


def plan(
    model: str | os.PathLike[str] | ModelInventory,
    recipes: str | list[str] | None = None,
    *,
    ctx: int = 32768,
    kv_type: str = "f16",
    mla_split: bool = True,
    kv_layout: str = "auto",
    parallel: int = 1,
    devices: str | list[str] | None = None,
    n_ubatch: int = 512,
    flash_attn: bool = True,
    swa_full: bool = False,
    overhead_gib: float | None = None,
    headroom_gib: float = 1.0,
    accuracy: str | dict[str, float] | None = None,
    mmap: bool = True,
) -> Plan:
    """Size, bits per weight, memory and device fit of each recipe for MODEL (see the module docstring).

    ctx: context per sequence, parallel: sequences (the KV cache holds ctx x parallel cells).
    kv_layout: full|latent|auto (DeepSeek: auto = latent when attn_kv_b is split, i.e. mla_split).
    devices: device sets, e.g. "8xH100-80G,8x910B-64G" (comma = alternatives, + = one mixed set).
    overhead_gib: runtime overhead per device (default: each device's, devices.toml).
    headroom_gib: free memory a device must keep to count as fitting.
    mmap: llama.cpp maps the file (its default); on a CPU host the repacked weights then count twice.
    accuracy: measured scores per recipe (RECIPE=SCORE,... or a JSON file) for the recommendation.
    """
    split = _switch(mla_split, "mla_split")
    fa = _switch(flash_attn, "flash_attn")
    swa = _switch(swa_full, "swa_full")
    mapped = _switch(mmap, "mmap")
    check_options(
        kv_type=kv_type,
        flash_attn=fa,
        ctx=ctx,
        parallel=parallel,
        n_ubatch=n_ubatch,
        headroom_gib=headroom_gib,
        overhead_gib=overhead_gib,
    )
    chosen = _named_recipes(recipes)
    sets = parse_devices(devices)
    scores = load_accuracy(accuracy)
    inv = model if isinstance(model, ModelInventory) else load(model, mla_split=split)
    chosen = chosen or _default_recipes(inv)
    memory = dict(ctx=ctx, parallel=parallel, n_ubatch=n_ubatch, swa_full=swa)
    shared = _shared_memory(inv, sets, kv_layout, kv_type, fa, overhead_gib, memory)
    plans = [_recipe_plan(name, r, inv, shared, headroom_gib, mapped) for name, r in chosen.items()]
    return Plan(
        model=inv.name,
        n_params=inv.n_params,
        source_bytes=inv.nbytes,
        ctx=ctx,
        parallel=parallel,
        kv_type=kv_type.lower(),
        kv_layout=shared.layout,
        flash_attn=fa,
        n_ubatch=n_ubatch,
        swa_full=swa,
        recipes=plans,
        recommendation=recommend(plans, scores),
        mmap=mapped,
    )


@dataclass(frozen=True)
class _SharedMemory:
    """What every recipe's plan shares: KV layout and cache, one compute buffer, each device set's placement."""

    layout: str
    kv_cache_bytes: int
    compute_buffer_bytes: int
    places: list[tuple[str, _Placement]]  # (device set spec, placement)


def _shared_memory(
    inv: ModelInventory,
    sets: list[DeviceSet],
    kv_layout: str,
    kv_type: str,
    flash_attn: bool,
    overhead_gib: float | None,
    memory: dict[str, Any],
) -> _SharedMemory:
    """The memory that does not depend on the recipe: KV cache by layer, compute buffers, placements."""
    layout = resolve_layout(inv, kv_layout)  # type: ignore[arg-type]
    shapes = layer_shapes(inv, kv_layout)  # type: ignore[arg-type]
    check_kv_heads(shapes, kv_type)
    kv_layers = kv_bytes_per_layer(inv, kv_type_name=kv_type, shapes=shapes, **memory)
    compute_one = compute_buffer_bytes(
        inv, shapes, has_output=True, flash_attn=flash_attn, kv_type_name=kv_type, **memory
    )
    places = [
        (
            s.spec,
            _place(
                inv,
                s,
                kv_layers,
                shapes=shapes,
                flash_attn=flash_attn,
                kv_type=kv_type,
                overhead_gib=overhead_gib,
                memory=memory,
            ),
        )
        for s in sets
    ]
    return _SharedMemory(layout, sum(kv_layers), compute_one, places)


def _recipe_plan(
    name: str, recipe: Any, inv: ModelInventory, shared: _SharedMemory, headroom_gib: float, mmap: bool
) -> RecipePlan:
    """One recipe's size, bits per weight and fit on each device set."""
    name, entries, size, bpw, by_type, warnings = _weights(name, recipe, inv)
    fits = [_fit(spec, place, entries, headroom_gib, mmap) for spec, place in shared.places]
    return RecipePlan(
        recipe=name,
        size_bytes=size,
        bits_per_weight=round(bpw, 4),
        bytes_by_type=by_type,
        kv_cache_bytes=shared.kv_cache_bytes,
        compute_buffer_bytes=shared.compute_buffer_bytes,
        total_bytes=size + shared.kv_cache_bytes + shared.compute_buffer_bytes,
        devices=fits,
        warnings=list(warnings),
    )


# ---------------------------------------------------------------------------------------------
# the table `quantdrop plan` prints (quantdrop.cli.plan)
# ---------------------------------------------------------------------------------------------


def size_label(nbytes: int) -> str:
    """A size the way `ls -h` prints it: GiB (or MiB below 1 GiB), rounded up, e.g. 377G."""
    for unit, label in ((GiB, "G"), (1 << 20, "M"), (1 << 10, "K")):
        if nbytes >= unit:
            value = nbytes / unit
            return f"{math.ceil(value * 10) / 10:.1f}{label}" if value < 10 else f"{math.ceil(value)}{label}"
    return f"{nbytes}B"


def render_table(p: Plan) -> str:
    from io import StringIO

    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{p.model}: {p.n_params / 1e9:.2f} B parameters, "
        f"source {size_label(p.source_bytes)}; ctx {p.ctx} x {p.parallel}, "
        f"KV {p.kv_type} ({p.kv_layout}), "
        f"flash attention {'on' if p.flash_attn else 'off'}"
    )
    for col in ("recipe", "size", "bpw", "KV cache", "compute", "total"):
        table.add_column(col, justify="left" if col == "recipe" else "right")
    specs = [d.spec for d in p.recipes[0].devices] if p.recipes else []
    for spec in specs:
        table.add_column(f"{spec} per device", justify="right")
    for r in p.recipes:
        cells = [
            r.recipe,
            size_label(r.size_bytes),
            f"{r.bits_per_weight:.2f}",
            _gib(r.kv_cache_bytes),
            _gib(r.compute_buffer_bytes),
            _gib(r.total_bytes),
        ]
        cells += [f"{_gib(d.bytes_per_device)} {'fits' if d.fits else 'NO'}" for d in r.devices]
        table.add_row(*cells)
    buf = StringIO()
    Console(file=buf, width=200, force_terminal=False).print(table)
    lines = [buf.getvalue().rstrip()]
    lines += [f"recommendation: {rec.line()}" for rec in p.recommendation]
    for r in p.recipes:
        repacked = [f"{d.spec} {_gib(d.cpu_repack_bytes)}" for d in r.devices if d.cpu_repack_bytes]
        if repacked:
            how = "on top of the mapped file, included above" if p.mmap else "read into it instead (--mmap no)"
            lines.append(
                f"CPU_REPACK ({r.recipe}, the weights llama.cpp repacks for the CPU's SIMD, {how}): "
                f"{', '.join(repacked)}"
            )
        lines += [f"warning ({r.recipe}): {w}" for w in r.warnings]
    return "\n".join(lines)
