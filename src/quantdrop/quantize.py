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
from contextlib import ExitStack, nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from gguf import GGML_QUANT_VERSION, GGMLQuantizationType, GGUFValueType, Keys

from quantdrop import __version__, kernels
from quantdrop.errors import QuantdropError
from quantdrop.ggufio import GGUFHeader, GGUFStreamWriter, TensorEntry, pack_field, read_header, rewritten_metadata
from quantdrop.imatrix_io import importance_rows, read_normalized
from quantdrop.inventory import inventory_from_header, split_count
from quantdrop.kernels import FLOAT_SOURCES
from quantdrop.recipes import ResolvedPlan, TensorPlan, load_recipe, resolve
from quantdrop.recipes.llamacpp import QUANTIZED
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_output, fmt_bytes, progress_bar

SLAB_BYTES = 64 * 1024 * 1024  # float32 rows converted at a time: bounds peak memory per tensor


@dataclass(frozen=True)
class QuantizeResult:
    path: Path | None
    plan: ResolvedPlan
    seconds: float
    bytes_written: int


def _check_sources(plan: ResolvedPlan, allow_requantize: bool) -> None:
    for e in plan.entries:
        if e.type == e.src_type or e.src_type in FLOAT_SOURCES:
            continue
        if not allow_requantize:
            raise QuantdropError(
                f"{e.name} is {e.src_type.name}: requantizing a quantized source loses "
                "accuracy twice; pass --allow-requantize to do it anyway"
            )


def _check_imatrix(plan: ResolvedPlan, imatrix: dict[str, np.ndarray] | None) -> None:
    """Before any work: ggml aborts the whole process on a type that needs an imatrix without one."""
    for e in plan.entries:
        needs = e.requires_imatrix or (e.type in QUANTIZED and kernels.requires_imatrix(e.type))
        if e.type == e.src_type or not needs:
            continue
        if imatrix is None:
            raise QuantdropError(
                f"{e.name} -> {e.type.name} needs an importance matrix: pass --imatrix FILE "
                "(llama.cpp's GGUF imatrix) or choose a type that does not need one"
            )
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
    kinds = [
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((name for test, name in kinds if test(mode)), "a special file")


def _file_size_estimate(plan: ResolvedPlan, header: GGUFHeader) -> int:
    return sum(-(-e.nbytes // 32) * 32 for e in plan.entries) + header.data_offset + (1 << 20)


def metadata_fields(header: GGUFHeader, plan: ResolvedPlan | None = None, extra: Sequence[bytes] = ()) -> list[bytes]:
    """The source's metadata (ggufio.rewritten_metadata) with ours: the plan's file type and recipe, and
    `extra`."""
    return rewritten_metadata(header, [*_plan_fields(plan), *extra] if plan is not None else list(extra))


def _plan_fields(plan: ResolvedPlan) -> list[bytes]:
    """general.file_type, the quantization version and the recipe, as quantdrop records them."""
    fields = []
    if plan.file_type is not None:
        fields.append(pack_field(Keys.General.FILE_TYPE, plan.file_type, GGUFValueType.UINT32))
    fields.append(pack_field(Keys.General.QUANTIZATION_VERSION, GGML_QUANT_VERSION, GGUFValueType.UINT32))
    r = plan.recipe
    fields += [
        pack_field("quantdrop.version", __version__, GGUFValueType.STRING),
        pack_field("quantdrop.recipe.name", r.name, GGUFValueType.STRING),
        pack_field("quantdrop.recipe.version", r.version, GGUFValueType.UINT32),
        pack_field("quantdrop.recipe.default", r.default.name, GGUFValueType.STRING),
        pack_field("quantdrop.recipe.base", r.base or "", GGUFValueType.STRING),
        pack_field(
            "quantdrop.recipe.rules", [rule.describe() for rule in r.rules], GGUFValueType.ARRAY, GGUFValueType.STRING
        ),
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
            f32 = kernels.to_f32(raw[start * src_row : stop * src_row], e.src_type, n_per_row)
            dst = out[start * dst_row : stop * dst_row]
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

    def stream(
        self,
        e: TensorPlan,
        fetch: Callable[[int, int], np.ndarray],
        src_nbytes: int,
        write: Callable[[object], object],
        advance: Callable[[int], None],
    ) -> None:
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
        imat = importance_rows(self.imatrix, e.name, e.shape)
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


@dataclass(frozen=True)
class _Job:
    """A checked quantization: the source's header, the resolved plan and the normalized imatrix."""

    header: GGUFHeader
    plan: ResolvedPlan
    imatrix: dict[str, np.ndarray] | None


_ReuseFrom = str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None


def quantize(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str] | None,
    *,
    recipe: str = "Q4_K_M",
    threads: int | None = None,
    imatrix: str | os.PathLike[str] | None = None,
    allow_requantize: bool = False,
    force: bool = False,
    dry_run: bool = False,
    progress: bool = False,
    reuse_from: _ReuseFrom = None,
) -> QuantizeResult:
    """Quantize `src` (GGUF, F32/F16/BF16) into `dst` with `recipe` (preset name or recipe file).

    reuse_from: GGUFs quantized from the same `src` and `imatrix` (by this function, or tune's tier 1
    pool); every tensor planned at the type and shape it has in one of them (the first that has it) is
    copied instead of quantized again (tune's tier 2 trials)."""
    t0 = time.perf_counter()
    job = _prepare(src, recipe, threads, imatrix, allow_requantize)
    if dry_run or dst is None:
        return QuantizeResult(None, job.plan, time.perf_counter() - t0, 0)
    out = Path(dst)
    _check_destination(job, out, force, imatrix)
    written = _write(job, out, threads or os.cpu_count() or 1, progress, reuse_from)
    return QuantizeResult(out, job.plan, time.perf_counter() - t0, written)


def _prepare(
    src: str | os.PathLike[str],
    recipe: str,
    threads: int | None,
    imatrix: str | os.PathLike[str] | None,
    allow_requantize: bool,
) -> _Job:
    """Everything checked before any work: threads, source, recipe, imatrix, the kernels' library."""
    kernels.check_threads(threads)
    header = read_header(src)
    if split_count(header) > 1:
        raise QuantdropError(
            f"{header.path} is one shard of a split GGUF ({split_count(header)} files): "
            "merge it first (llama-gguf-split --merge FIRST-SHARD OUT.gguf)"
        )
    the_recipe = load_recipe(recipe)
    inventory = inventory_from_header(header)
    imat = read_normalized(imatrix, {t.name: t.shape for t in header.tensors}) if imatrix else None
    plan = resolve(the_recipe, inventory, has_imatrix=imat is not None)
    _check_sources(plan, allow_requantize)
    kernels.ggml()  # a clear error now if the library is missing, not after the first tensor
    _check_imatrix(plan, imat)
    return _Job(header, plan, imat)


def _check_destination(job: _Job, out: Path, force: bool, imatrix: str | os.PathLike[str] | None) -> None:
    """The output path and free space checked, and the kernels of every planned type initialized."""
    check_output_path(out, force, sources=[job.header.path, *([Path(imatrix)] if imatrix else [])])
    need, free = _file_size_estimate(job.plan, job.header), shutil.disk_usage(out.parent).free
    if need > free:
        raise QuantdropError(f"not enough free space in {out.parent}: need {fmt_bytes(need)}, have {fmt_bytes(free)}")
    for qtype in {e.type for e in job.plan.entries if e.type in QUANTIZED}:
        kernels.prepare(qtype)


def _write(job: _Job, out: Path, threads: int, progress: bool, reuse_from: _ReuseFrom) -> int:
    """Stream every planned tensor into `out` (atomically); the tensor bytes written."""
    header, plan = job.header, job.plan
    sources = {t.name: t for t in header.tensors}
    donors = _donor_paths(reuse_from)
    reusable = _reusable(donors, plan)
    sweep_stale(out.parent)  # temporaries of earlier runs killed with SIGKILL
    quantizer = _Quantizer(threads, job.imatrix)
    try:
        with (
            atomic_output(out) as fh,
            open(header.path, "rb", buffering=0) as src_fh,
            _progress(progress) as bar,
            ExitStack() as stack,
        ):
            donor_fds = [stack.enter_context(open(p, "rb", buffering=0)).fileno() for p in donors]
            writer = GGUFStreamWriter(
                fh, metadata_fields(header, plan), [(e.name, e.shape, e.type) for e in plan.entries]
            )
            advance = _advancer(bar, plan.recipe.name, sum(sources[e.name].nbytes for e in plan.entries))
            for e in plan.entries:
                if e.name in reusable:
                    donor, entry = reusable[e.name]
                    fetch = _reader(donor_fds[donor], entry.offset, donors[donor], e.name)
                    _copy(fetch, entry.nbytes, writer.write, advance)
                else:
                    fetch = _reader(src_fh.fileno(), sources[e.name].offset, header.path, e.name)
                    quantizer.stream(e, fetch, sources[e.name].nbytes, writer.write, advance)
                writer.end_tensor()
            writer.finish()
    except OSError as err:
        raise QuantdropError(f"writing {out} failed: {err.strerror or err}") from None
    finally:
        quantizer.close()
    return writer.written


def _advancer(bar: object | None, label: str, total: int) -> Callable[[int], None]:
    """`advance(n)`: n more source bytes done, on the progress bar when there is one."""
    task = bar.add_task(label, total=total) if bar else None  # type: ignore[attr-defined]

    def advance(n: int) -> None:
        if bar:
            bar.update(task, advance=n)  # type: ignore[attr-defined]

    return advance


def _reader(fd: int, base: int, path: Path, name: str) -> Callable[[int, int], np.ndarray]:
    """`fetch(start, n)`: n bytes of tensor `name`'s data (at `base` in the open file `fd`), with pread."""

    def fetch(start: int, n: int) -> np.ndarray:
        data = os.pread(fd, n, base + start)
        if len(data) != n:
            raise QuantdropError(f"{path}: unexpected end of file in {name}")
        return np.frombuffer(data, dtype=np.uint8)

    return fetch


def _donor_paths(reuse_from: _ReuseFrom) -> list[Path]:
    if reuse_from is None:
        return []
    if isinstance(reuse_from, (str, os.PathLike)):
        return [Path(reuse_from)]
    return [Path(p) for p in reuse_from]


def _reusable(donors: list[Path], plan: ResolvedPlan) -> dict[str, tuple[int, TensorEntry]]:
    """For each tensor of `plan` that a donor (an earlier output) holds at the same type and shape: the
    first such donor's index and its entry."""
    found: dict[str, tuple[int, TensorEntry]] = {}
    planned = {e.name: e for e in plan.entries}
    for i, path in enumerate(donors):
        for t in read_header(path).tensors:
            e = planned.get(t.name)
            if e is not None and t.name not in found and t.type == e.type and tuple(t.shape) == tuple(e.shape):
                found[t.name] = (i, t)
    return found


def _copy(
    fetch: Callable[[int, int], np.ndarray],
    nbytes: int,
    write: Callable[[object], object],
    advance: Callable[[int], None],
) -> None:
    for start in range(0, nbytes, SLAB_BYTES):
        n = min(SLAB_BYTES, nbytes - start)
        write(fetch(start, n))
        advance(n)
