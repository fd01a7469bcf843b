"""`quantdrop quantize SRC OUT --recipe R`: stream a GGUF through ggml's own kernels.

Bit-identical to llama.cpp's `llama_model_quantize` where the recipe means the same thing: the
same per-tensor types (one resolver, ported from llama-quant.cpp) and the same kernels
(ggml_quantize_chunk from the libggml that llama-cpp-python built). Memory stays bounded by a slab
of rows, not the model; the output appears only when complete (temporary file, fsync, rename).
"""

from __future__ import annotations

import os
import shutil
import stat
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType, GGUFValueType
from gguf.quants import dequantize

from quantdrop import __version__, kernels
from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUFHeader, GGUFStreamWriter, TensorEntry, field_key, pack_field, read_header
from quantdrop.inventory import read_gguf_inventory
from quantdrop.recipes import ResolvedPlan, TensorPlan, load_recipe, resolve
from quantdrop.recipes.llamacpp import QUANTIZED
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_output, fmt_bytes, progress_bar

FLOAT_SOURCES = (GGMLQuantizationType.F32, GGMLQuantizationType.F16, GGMLQuantizationType.BF16)
SLAB_BYTES = 64 * 1024 * 1024  # float32 rows converted at a time: bounds peak memory per tensor
_SKIPPED_KEYS = {"general.architecture", "general.file_type", "general.quantization_version",
                 "general.alignment", "split.no", "split.count", "split.tensors.count"}
GGML_QNT_VERSION = 2


@dataclass(frozen=True)
class QuantizeResult:
    path: Path | None
    plan: ResolvedPlan
    seconds: float
    bytes_written: int


def _read_imatrix(path: str | os.PathLike[str],
                  shapes: dict[str, tuple[int, ...]] | None = None) -> dict[str, np.ndarray]:
    """An imatrix file (llama.cpp's GGUF or legacy .dat, through the one reader), normalized as
    tools/quantize/quantize.cpp load_imatrix does; checked against the model's tensor `shapes`."""
    from quantdrop.imatrix_io import check_matches, read_imatrix

    normalized = read_imatrix(path).normalized()
    if shapes is not None:
        check_matches(normalized, shapes, path)
    return normalized


def _to_f32(raw: np.ndarray, qtype: GGMLQuantizationType, n_per_row: int) -> np.ndarray:
    """Source rows (as stored) -> C-contiguous float32 rows, exactly as ggml converts them."""
    if qtype == GGMLQuantizationType.F32:
        return np.ascontiguousarray(raw.view(np.float32).reshape(-1, n_per_row))
    if qtype == GGMLQuantizationType.F16:
        return raw.view(np.float16).reshape(-1, n_per_row).astype(np.float32)
    if qtype == GGMLQuantizationType.BF16:
        return (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32).reshape(-1, n_per_row)
    return np.ascontiguousarray(dequantize(raw.view(np.uint8), qtype).reshape(-1, n_per_row), dtype=np.float32)


def _check_sources(plan: ResolvedPlan, allow_requantize: bool) -> None:
    for e in plan.entries:
        if e.type == e.src_type or e.src_type in FLOAT_SOURCES:
            continue
        if not allow_requantize:
            raise QuantdropError(f"{e.name} is {e.src_type.name}: requantizing a quantized source loses "
                                 "accuracy twice; pass --allow-requantize to do it anyway")


def _check_imatrix(plan: ResolvedPlan, imatrix: dict[str, np.ndarray] | None) -> None:
    """Before any work: ggml aborts the whole process on a type that needs an imatrix without one."""
    for e in plan.entries:
        needs = e.requires_imatrix or (e.type in QUANTIZED and kernels.requires_imatrix(e.type))
        if e.type == e.src_type or not needs:
            continue
        if imatrix is None:
            raise QuantdropError(f"{e.name} -> {e.type.name} needs an importance matrix: pass --imatrix FILE "
                                 "(llama.cpp's GGUF imatrix) or choose a type that does not need one")
        if e.name not in imatrix:
            raise QuantdropError(f"the importance matrix has no entry for {e.name}, which {e.type.name} needs")


def check_output_path(out: Path, force: bool, sources: Sequence[Path] = ()) -> None:
    """Refuse an output that is one of the inputs (same file, also through a link), or that exists and
    is anything but a regular file: --force replaces a file, never a FIFO, a device or a folder."""
    if not out.parent.is_dir():
        raise QuantdropError(f"{out.parent}: no such directory")
    if not os.path.lexists(out):
        return
    for src in sources:
        with suppress(OSError):
            if os.path.samefile(out, src):
                raise QuantdropError(f"{out} is the source {src} (the same file): choose another output")
    try:
        mode = os.stat(out).st_mode
    except OSError:  # a dangling symbolic link: replacing the link itself harms nothing
        mode = stat.S_IFREG
    if not stat.S_ISREG(mode):
        raise QuantdropError(f"{out} exists and is {_file_kind(mode)}, not a regular file: refusing to replace it")
    if not force:
        raise QuantdropError(f"{out} exists (pass --force to overwrite)")


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _file_size_estimate(plan: ResolvedPlan, header: GGUFHeader) -> int:
    return sum(-(-e.nbytes // 32) * 32 for e in plan.entries) + header.data_offset + (1 << 20)


def metadata_fields(header: GGUFHeader, plan: ResolvedPlan | None = None, extra: Sequence[bytes] = ()) -> list[bytes]:
    """The source's metadata, byte for byte, minus the keys we (re)write: the architecture first, then
    the source's keys, then ours (the plan's file type and recipe, and `extra`), each key once. A source
    that quantdrop wrote carries our keys already; copying them too would make a file llama.cpp refuses."""
    arch = pack_field("general.architecture", header.fields["general.architecture"], GGUFValueType.STRING)
    ours = [*_plan_fields(plan), *extra] if plan is not None else list(extra)
    rewritten = _SKIPPED_KEYS | {field_key(f) for f in ours}
    return [arch, *(raw for key, raw in header.raw_fields.items() if key not in rewritten), *ours]


def _plan_fields(plan: ResolvedPlan) -> list[bytes]:
    """general.file_type, the quantization version and the recipe, as quantdrop records them."""
    fields = []
    if plan.file_type is not None:
        fields.append(pack_field("general.file_type", plan.file_type, GGUFValueType.UINT32))
    fields.append(pack_field("general.quantization_version", GGML_QNT_VERSION, GGUFValueType.UINT32))
    r = plan.recipe
    fields += [
        pack_field("quantdrop.version", __version__, GGUFValueType.STRING),
        pack_field("quantdrop.recipe.name", r.name, GGUFValueType.STRING),
        pack_field("quantdrop.recipe.version", r.version, GGUFValueType.UINT32),
        pack_field("quantdrop.recipe.default", r.default.name, GGUFValueType.STRING),
        pack_field("quantdrop.recipe.base", r.base or "", GGUFValueType.STRING),
        pack_field("quantdrop.recipe.rules", [rule.describe() for rule in r.rules], GGUFValueType.ARRAY,
                   GGUFValueType.STRING),
    ]
    return fields


class _Quantizer:
    """Quantizes one tensor at a time, slab by slab, with rows spread over a thread pool."""

    def __init__(self, threads: int, imatrix: dict[str, np.ndarray] | None) -> None:
        self.threads = max(1, threads)
        self.pool = ThreadPoolExecutor(self.threads) if self.threads > 1 else None
        self.imatrix = imatrix

    def close(self) -> None:
        if self.pool:
            self.pool.shutdown()

    def _imatrix_for(self, e: TensorPlan) -> np.ndarray | None:
        if self.imatrix is None or e.name not in self.imatrix:
            return None
        im = self.imatrix[e.name]
        n_expert = e.shape[2] if len(e.shape) > 2 else 1
        if im.size != e.shape[0] * n_expert:
            if e.name in ("token_embd.weight", "per_layer_token_embd.weight"):
                return None  # llama.cpp ignores a mismatching token_embd entry too
            raise QuantdropError(f"imatrix size {im.size} does not match {e.name} ({e.shape[0]} x {n_expert})")
        return im.reshape(n_expert, e.shape[0])

    def _convert_block(self, e: TensorPlan, raw: np.ndarray, n_rows: int, imat: np.ndarray | None) -> np.ndarray:
        """Source rows -> e.type, in row chunks spread over the threads: each chunk is converted to
        float32, quantized and validated inside its worker (numpy and ctypes both release the GIL)."""
        n_per_row = e.shape[0]
        src_row = raw.nbytes // n_rows
        dst_row = kernels.row_size(e.type, n_per_row)
        out = np.empty(n_rows * dst_row, dtype=np.uint8)
        per_chunk = max(1, min(-(-n_rows // self.threads), max(1, (1 << 18) // n_per_row)))
        starts = range(0, n_rows, per_chunk)

        def work(start: int) -> None:
            stop = min(n_rows, start + per_chunk)
            f32 = _to_f32(raw[start * src_row: stop * src_row], e.src_type, n_per_row)
            dst = out[start * dst_row: stop * dst_row]
            if e.type == GGMLQuantizationType.F32:
                dst.view(np.float32)[:] = f32.reshape(-1)
            else:  # quantized types, F16 and BF16 all through ggml, for ggml's own rounding
                if kernels.quantize_rows(e.type, f32, dst, imat) != dst.nbytes:
                    raise QuantdropError(f"{e.name}: ggml wrote an unexpected number of bytes")
                if not kernels.validate(e.type, dst):
                    raise QuantdropError(f"{e.name}: quantized data validation failed (non-finite values)")

        if self.pool and len(starts) > 1:
            for _ in self.pool.map(work, starts):
                pass
        else:
            for start in starts:
                work(start)
        return out

    def stream(self, e: TensorPlan, fetch: Callable[[int, int], np.ndarray], src_nbytes: int,
               write: Callable[[object], object], advance: Callable[[int], None]) -> None:
        """Write tensor `e` through `write`, reading its source bytes slab by slab with `fetch(start, n)`."""
        n_rows = e.n_elements // e.shape[0]
        src_row = src_nbytes // n_rows
        if e.type == e.src_type:
            slab_rows = max(1, SLAB_BYTES // src_row)
            for r in range(0, n_rows, slab_rows):
                stop = min(n_rows, r + slab_rows)
                write(fetch(r * src_row, (stop - r) * src_row))
                advance((stop - r) * src_row)
            return
        imat = self._imatrix_for(e)
        rows_per_expert = e.shape[1] if len(e.shape) > 1 else 1
        slab_rows = max(1, SLAB_BYTES // (4 * e.shape[0]))
        r = 0
        while r < n_rows:
            stop = min(n_rows, r + slab_rows)
            expert_imat = None
            if imat is not None:  # a slab never crosses an expert: each has its own importance slice
                expert = r // rows_per_expert
                stop = min(stop, (expert + 1) * rows_per_expert)
                expert_imat = imat[expert]
            raw = fetch(r * src_row, (stop - r) * src_row)
            write(self._convert_block(e, raw, stop - r, expert_imat))
            advance((stop - r) * src_row)
            r = stop


def _progress(enabled: bool):
    return progress_bar(enabled=enabled, unit="bytes", transient=True) if enabled else nullcontext(None)


def quantize(src: str | os.PathLike[str], dst: str | os.PathLike[str] | None, *, recipe: str = "Q4_K_M",
             threads: int | None = None, imatrix: str | os.PathLike[str] | None = None,
             allow_requantize: bool = False, force: bool = False, dry_run: bool = False,
             progress: bool = False, reuse_from: str | os.PathLike[str] | None = None) -> QuantizeResult:
    """Quantize `src` (GGUF, F32/F16/BF16) into `dst` with `recipe` (preset name or recipe file).

    reuse_from: a GGUF this function wrote from the same `src` and `imatrix`; every tensor planned at
    the type and shape it has there is copied from it instead of quantized again (tune's tier 2 trials)."""
    t0 = time.perf_counter()
    kernels.check_threads(threads)
    header = read_header(src)
    the_recipe = load_recipe(recipe)
    inventory = read_gguf_inventory(src, header)
    imat = _read_imatrix(imatrix, {t.name: t.shape for t in header.tensors}) if imatrix else None
    plan = resolve(the_recipe, inventory, has_imatrix=imat is not None)
    _check_sources(plan, allow_requantize)
    kernels.ggml()  # a clear error now if the library is missing, not after the first tensor
    _check_imatrix(plan, imat)
    if dry_run or dst is None:
        return QuantizeResult(None, plan, time.perf_counter() - t0, 0)

    out = Path(dst)
    check_output_path(out, force, sources=[header.path, *([Path(imatrix)] if imatrix else [])])
    need, free = _file_size_estimate(plan, header), shutil.disk_usage(out.parent).free
    if need > free:
        raise QuantdropError(f"not enough free space in {out.parent}: need {fmt_bytes(need)}, "
                             f"have {fmt_bytes(free)}")
    for qtype in {e.type for e in plan.entries if e.type in QUANTIZED}:
        kernels.prepare(qtype)

    sources = {t.name: t for t in header.tensors}
    reusable = _reusable(reuse_from, plan)
    sweep_stale(out.parent)  # temporaries of earlier runs killed with SIGKILL
    quantizer = _Quantizer(threads or os.cpu_count() or 1, imat)
    try:
        with atomic_output(out) as fh, open(header.path, "rb", buffering=0) as src_fh, _progress(progress) as bar, \
                open(reuse_from or header.path, "rb", buffering=0) as reuse_fh:
            writer = GGUFStreamWriter(fh, metadata_fields(header, plan),
                                      [(e.name, e.shape, e.type) for e in plan.entries])
            total = sum(sources[e.name].nbytes for e in plan.entries)
            task = bar.add_task(the_recipe.name, total=total) if bar else None

            def advance(n: int) -> None:
                if bar:
                    bar.update(task, advance=n)

            for e in plan.entries:
                source = reusable.get(e.name) or sources[e.name]
                fh_in = reuse_fh if e.name in reusable else src_fh

                def fetch(start: int, n: int, base: int = source.offset, name: str = e.name,
                          fd: int = fh_in.fileno()) -> np.ndarray:
                    data = os.pread(fd, n, base + start)
                    if len(data) != n:
                        raise QuantdropError(f"{header.path}: unexpected end of file in {name}")
                    return np.frombuffer(data, dtype=np.uint8)

                if e.name in reusable:
                    _copy(fetch, source.nbytes, writer.write, advance)
                else:
                    quantizer.stream(e, fetch, source.nbytes, writer.write, advance)
                writer.end_tensor()
            writer.finish()
    except OSError as err:
        raise QuantdropError(f"writing {out} failed: {err.strerror or err}") from None
    finally:
        quantizer.close()
    return QuantizeResult(out, plan, time.perf_counter() - t0, writer.written)


def _reusable(path: str | os.PathLike[str] | None, plan: ResolvedPlan) -> dict[str, TensorEntry]:
    """The tensors of `path` (an earlier output) that `plan` gives the same type and shape."""
    if path is None:
        return {}
    have = {t.name: t for t in read_header(path).tensors}
    return {e.name: have[e.name] for e in plan.entries
            if e.name in have and have[e.name].type == e.type and tuple(have[e.name].shape) == tuple(e.shape)}


def _copy(fetch: Callable[[int, int], np.ndarray], nbytes: int, write: Callable[[object], object],
          advance: Callable[[int], None]) -> None:
    for start in range(0, nbytes, SLAB_BYTES):
        n = min(SLAB_BYTES, nbytes - start)
        write(fetch(start, n))
        advance(n)


def plan_as_dict(plan: ResolvedPlan) -> dict:
    return {
        "model": plan.model,
        "recipe": plan.recipe.name,
        "file_type": plan.file_type,
        "n_params": plan.n_params,
        "size_bytes": plan.nbytes,
        "bits_per_weight": round(plan.bits_per_weight, 4),
        "bytes_by_type": plan.bytes_by_type,
        "warnings": plan.warnings,
        "tensors": [{"name": e.name, "shape": list(e.shape), "src_type": e.src_type.name, "type": e.type.name,
                     "bytes": e.nbytes, "rule": e.rule} for e in plan.entries],
    }
