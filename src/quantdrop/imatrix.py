"""`quantdrop imatrix MODEL -o imatrix.gguf`: an importance matrix computed through llama.cpp.

What llama.cpp's tools/imatrix/imatrix.cpp collects (the version llama-cpp-python 0.3.36 vendors),
through the same hook: the scheduler's eval callback (`cb_eval` in llama_context_params) is asked
about every graph node; it takes the MUL_MAT nodes whose weight (src0) is a `blk.*` tensor and whose
activations (src1) are F32 with at least 16 rows, and every MUL_MAT_ID node (MoE, per expert). For
each weight it sums the squared activations per input column and counts the rows seen. The text is
tokenized with the model's tokenizer and cut into `ctx`-token chunks, each starting with BOS, all
logits requested (so the last layer sees every row), as `compute_imatrix` does.

Sums are accumulated in float64 (llama.cpp: float32), which is the cause of the small differences
to llama-imatrix's file; the file itself is llama.cpp's GGUF imatrix (see imatrix_io).
Partial sums are checkpointed every few chunks (`OUT.partial.npz`), so `--resume` after a kill
gives the same file as an uninterrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quantdrop.errors import QuantdropError
from quantdrop.ggml_graph import GGML_TYPE_F32, GGMLTensor, ggml
from quantdrop.imatrix_io import Imatrix, write_imatrix
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_output, progress_bar

MIN_ROWS = 16  # imatrix.cpp: "why are small batches ignored (<16 tokens)?"
CHECKPOINT_EVERY = 4
_CHECKPOINT_VERSION = 1


def filter_tensor_name(name: str) -> str:
    """imatrix.cpp filter_tensor_name: CUDA0#blk.0.attn_k.weight#0 -> blk.0.attn_k.weight."""
    if "#" not in name:
        return name
    rest = name.split("#", 1)[1]
    return rest.split("#", 1)[0]


class Collector:
    """imatrix.cpp IMatrixCollector::collect_imatrix, as a ctypes eval callback."""

    def __init__(self, process_output: bool = False) -> None:
        self.g = ggml()
        self.process_output = process_output
        self.sums: dict[str, np.ndarray] = {}  # float64 (n_mat, n_cols)
        self.counts: dict[str, np.ndarray] = {}  # int64 (n_mat,)
        self.error: BaseException | None = None
        import llama_cpp

        self.c_callback = llama_cpp.ggml_backend_sched_eval_callback(self._callback)

    def _callback(self, addr: int, ask: bool, _user_data: int) -> bool:
        try:
            t = GGMLTensor.from_address(addr)
            return self._ask(t) if ask else self._collect(t)
        except BaseException as err:  # never let an exception unwind through C
            self.error = err
            return False

    def _ask(self, t: GGMLTensor) -> bool:
        if t.op == self.g.op_mul_mat_id:
            return True
        if t.op != self.g.op_mul_mat:
            return False
        src1 = t.src[1].contents
        if src1.ne[1] < MIN_ROWS or src1.type != GGML_TYPE_F32:
            return False
        name = filter_tensor_name(t.src[0].contents.name.decode("utf-8", "replace"))
        return name.startswith("blk.") or (self.process_output and name == "output.weight")

    def _entry(self, name: str, n_mat: int, n_cols: int) -> tuple[np.ndarray, np.ndarray]:
        if name not in self.sums:
            self.sums[name] = np.zeros((n_mat, n_cols), dtype=np.float64)
            self.counts[name] = np.zeros(n_mat, dtype=np.int64)
        sums = self.sums[name]
        if sums.shape != (n_mat, n_cols):
            raise QuantdropError(f"inconsistent size for {name}: {sums.shape} vs {(n_mat, n_cols)}")
        return sums, self.counts[name]

    def _collect(self, t: GGMLTensor) -> bool:
        src0, src1 = t.src[0].contents, t.src[1].contents
        name = filter_tensor_name(src0.name.decode("utf-8", "replace"))
        if src1.nb[0] != 4:
            raise QuantdropError(f"{name}: activations are not contiguous F32 rows")
        keep: list[np.ndarray] = []
        x = self.g.array(src1, np.float32, keep)  # (ne3, ne2, ne1, ne0)
        if t.op == self.g.op_mul_mat_id:
            self._collect_experts(t, name, src0, x, keep)
        else:
            self._collect_dense(name, src0, x)
        return True

    def _collect_dense(self, name: str, src0: GGMLTensor, x: np.ndarray) -> None:
        n_mat = src0.ne[2] * src0.ne[3]
        sums, counts = self._entry(name, n_mat, x.shape[3])
        for i3 in range(x.shape[0]):
            for i2 in range(x.shape[1]):
                mat_id = (i3 % src0.ne[3]) * src0.ne[2] + (i2 % src0.ne[2])
                rows = x[i3, i2].astype(np.float64)
                sums[mat_id] += np.einsum("ij,ij->j", rows, rows)
        if not np.isfinite(sums).all():
            raise QuantdropError(f"non-finite activations in {name}")
        counts += x.shape[0] * x.shape[1] * x.shape[2] // n_mat

    def _collect_experts(
        self, t: GGMLTensor, name: str, src0: GGMLTensor, x: np.ndarray, keep: list[np.ndarray]
    ) -> None:
        """MUL_MAT_ID: ids (n_tokens, n_used) pick the expert of each (token, slot); src1 is
        (n_tokens, n_used or 1, n_cols). Sums and counts per expert."""
        ids = self.g.array(t.src[2].contents, np.int32, keep)[0, 0]  # (n_tokens, n_used)
        n_as = src0.ne[2]
        if x.shape[0] != 1 or ids.shape[0] != x.shape[1]:
            raise QuantdropError(f"{name}: MUL_MAT_ID with more than 3 dimensions")
        n_tokens, n_used = ids.shape
        slots = np.arange(n_used) % x.shape[2]
        rows = x[0][:, slots, :].astype(np.float64).reshape(n_tokens * n_used, -1)
        experts = ids.reshape(-1).astype(np.int64)
        if experts.size and (experts.min() < 0 or experts.max() >= n_as):
            raise QuantdropError(f"{name}: expert id out of range")
        sums, counts = self._entry(name, n_as, rows.shape[1])
        order = np.argsort(experts, kind="stable")
        uniq, starts = np.unique(experts[order], return_index=True)
        sq = rows[order]
        sums[uniq] += np.add.reduceat(sq * sq, starts, axis=0)
        counts += np.bincount(experts, minlength=n_as)
        if not np.isfinite(sums[uniq]).all():
            raise QuantdropError(f"non-finite activations in {name}")


# ---------------------------------------------------------------------------------- llama.cpp model


@contextmanager
def _quiet() -> Iterator[None]:
    from quantdrop.util import quiet_stderr

    with quiet_stderr():
        yield


class Model:
    """A GGUF loaded through llama-cpp-python's low-level API with the collector's callback."""

    def __init__(self, path: Path, n_ctx: int, threads: int, collector: Collector) -> None:
        import llama_cpp as lc

        self.lc = lc
        lc.llama_backend_init()
        mparams = lc.llama_model_default_params()
        with _quiet():
            self.model = lc.llama_model_load_from_file(str(path).encode(), mparams)
        if not self.model:
            raise QuantdropError(f"llama.cpp could not load {path} (set QUANTDROP_DEBUG=1 for its log)")
        cparams = lc.llama_context_default_params()
        cparams.n_ctx, cparams.n_batch, cparams.n_ubatch = n_ctx, n_ctx, min(n_ctx, 512)
        cparams.n_seq_max = 1
        cparams.n_threads = cparams.n_threads_batch = threads
        cparams.cb_eval = collector.c_callback
        cparams.cb_eval_user_data = None
        cparams.no_perf = True
        with _quiet():
            self.ctx = lc.llama_init_from_model(self.model, cparams)
        if not self.ctx:
            lc.llama_model_free(self.model)
            raise QuantdropError(f"llama.cpp could not create a context for {path}")
        self.collector = collector
        self.n_ctx = n_ctx
        self.vocab = lc.llama_model_get_vocab(self.model)
        self.add_bos = bool(lc.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(lc.llama_vocab_bos(self.vocab))
        self.batch = lc.llama_batch_init(n_ctx, 0, 1)

    def tokenize(self, text: str) -> np.ndarray:
        """common_tokenize(ctx, text, add_special=true, parse_special=false), as llama-imatrix does."""
        raw = text.encode("utf-8")
        n_max = len(raw) + 8
        buf = (self.lc.llama_token * n_max)()
        n = self.lc.llama_tokenize(self.vocab, raw, len(raw), buf, n_max, True, False)
        if n < 0:
            raise QuantdropError("llama.cpp's tokenizer failed on the text")
        return np.ctypeslib.as_array(buf)[:n].astype(np.int32)

    def eval_chunk(self, chunk: np.ndarray) -> None:
        """One chunk from an empty cache, BOS in its first position, every position an output."""
        lc, batch = self.lc, self.batch
        lc.llama_memory_clear(lc.llama_get_memory(self.ctx), True)
        batch.n_tokens = len(chunk)
        for k, tok in enumerate(chunk.tolist()):
            batch.token[k] = self.bos if (k == 0 and self.add_bos) else tok
            batch.pos[k] = k
            batch.n_seq_id[k] = 1
            batch.seq_id[k][0] = 0
            batch.logits[k] = True
        rc = lc.llama_decode(self.ctx, batch)
        if self.collector.error is not None:
            err, self.collector.error = self.collector.error, None
            raise err
        if rc != 0:
            raise QuantdropError(f"llama.cpp failed to evaluate a chunk (llama_decode returned {rc})")

    def close(self) -> None:
        self.lc.llama_batch_free(self.batch)
        with _quiet():
            self.lc.llama_free(self.ctx)
            self.lc.llama_model_free(self.model)


# ------------------------------------------------------------------------------------ the run


@dataclass(frozen=True)
class ImatrixResult:
    path: Path
    n_chunks: int
    n_ctx: int
    n_tokens: int
    seconds: float  # evaluation time of this run (not counting resumed chunks)
    tokens_per_second: float
    entries: int
    resumed_from: int
    dataset: str
    notes: tuple[str, ...] = ()


def _check_model(path: Path) -> list[str]:
    """A GGUF llama.cpp can load; a note when its weights are already quantized."""
    from gguf import GGMLQuantizationType as T

    from quantdrop.ggufio import check_gguf_file, read_header

    header = read_header(check_gguf_file(path))
    floats = {T.F32, T.F16, T.BF16}
    quantized = sorted({t.type.name for t in header.tensors if len(t.shape) >= 2 and t.type not in floats})
    if quantized:
        return [
            f"{path.name} is quantized ({', '.join(quantized)}): the statistics are allowed but an "
            "F16/BF16 source gives the reference ones"
        ]
    return []


def _chunks_of(tokens: np.ndarray, n_ctx: int, chunks: int | None, skip: int, label: str) -> np.ndarray:
    """compute_imatrix's chunking: drop `skip` chunks, need 2 x n_ctx tokens, cut into n_ctx chunks."""
    if skip > 0:
        if (skip + 2) * n_ctx >= len(tokens):
            raise QuantdropError(
                f"{label}: not enough tokens left after skipping {skip} chunks "
                f"({len(tokens)} tokens, need more than {(skip + 2) * n_ctx})"
            )
        tokens = tokens[skip * n_ctx :]
    if len(tokens) < 2 * n_ctx:
        raise QuantdropError(
            f"{label} tokenizes to only {len(tokens)} tokens; an imatrix with --ctx {n_ctx} "
            f"needs at least {2 * n_ctx} (2 x ctx, as llama-imatrix)"
        )
    n = len(tokens) // n_ctx if chunks is None else min(chunks, len(tokens) // n_ctx)
    return tokens[: n * n_ctx].reshape(n, n_ctx)


def _checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + ".partial.npz")


def _run_key(model: Path, label: str, text: str, n_ctx: int, skip: int, process_output: bool) -> dict:
    from quantdrop.fingerprint import file_fingerprint

    return {
        "version": _CHECKPOINT_VERSION,
        "model": file_fingerprint(model),
        "dataset": label,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
        "ctx": n_ctx,
        "skip": skip,
        "process_output": process_output,
    }


def _save_checkpoint(path: Path, key: dict, done: int, c: Collector) -> None:
    arrays = {f"s:{n}": v for n, v in c.sums.items()} | {f"c:{n}": v for n, v in c.counts.items()}
    sweep_stale(path.parent)
    with atomic_output(path) as fh:
        np.savez(fh, __meta__=np.array(json.dumps({**key, "done": done})), **arrays)


def _load_checkpoint(path: Path, key: dict, c: Collector) -> int:
    """Chunks already done (their sums restored into `c`), or 0 when there is no checkpoint."""
    if not path.is_file():
        return 0
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["__meta__"]))
            arrays = {k: z[k] for k in z.files if k != "__meta__"}
    except (OSError, ValueError, KeyError) as err:
        raise QuantdropError(f"{path}: unreadable checkpoint ({err}); delete it to start over") from None
    differs = [k for k in key if meta.get(k) != key[k]]
    if differs:
        raise QuantdropError(f"{path}: checkpoint of another run ({differs[0]} differs); delete it or drop --resume")
    c.sums = {k[2:]: v.astype(np.float64) for k, v in arrays.items() if k.startswith("s:")}
    c.counts = {k[2:]: v.astype(np.int64) for k, v in arrays.items() if k.startswith("c:")}
    return int(meta["done"])


@contextmanager
def _progress_bar(enabled: bool, total: int, done: int, n_ctx: int) -> Iterator:
    if not enabled:
        yield lambda n_done, tps: None
        return
    with progress_bar("chunks", "{task.fields[tps]:>8.1f} tok/s", clock="both") as bar:
        task = bar.add_task("[bold]imatrix", total=total, completed=done, tps=0.0)
        yield lambda n_done, tps: bar.update(task, completed=n_done, tps=tps)


def _as_imatrix(c: Collector, dataset: str, n_ctx: int) -> Imatrix:
    most = max((int(v.max()) for v in c.counts.values() if v.size), default=0)
    return Imatrix(
        sums=dict(c.sums), counts=dict(c.counts), datasets=[dataset], chunk_count=most // n_ctx, chunk_size=n_ctx
    )


def imatrix(
    model: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    text: str | os.PathLike[str] | None = None,
    dataset: str | None = None,
    chunks: int | None = None,
    ctx: int = 512,
    threads: int | None = None,
    resume: bool = False,
    skip_chunks: int = 0,
    process_output: bool = False,
    force: bool = False,
    checkpoint_every: int = CHECKPOINT_EVERY,
    progress: bool = False,
) -> ImatrixResult:
    """Compute an importance matrix of `model` on calibration text and write it to `output`
    (llama.cpp's GGUF imatrix). `text` is a file; `dataset` a built-in name (see calibration)."""
    from quantdrop.calibration import calibration_text

    model_path, out = Path(model), Path(output)
    notes = _check_model(model_path)
    _check_run(out, ctx, chunks, resume, force)
    body, label, text_notes = calibration_text(text, dataset)
    notes += text_notes
    collector = Collector(process_output)
    runner = Model(model_path, ctx, threads or os.cpu_count() or 1, collector)
    try:
        table = _chunks_of(runner.tokenize(body), ctx, chunks, skip_chunks, label)
        key = _run_key(model_path, label, body, ctx, skip_chunks, process_output)
        ckpt = _checkpoint_path(out)
        start = _load_checkpoint(ckpt, key, collector) if resume else 0
        seconds = _run_chunks(
            runner, table, start, progress, checkpoint_every, lambda done: _save_checkpoint(ckpt, key, done, collector)
        )
    finally:
        runner.close()
    if not collector.sums:
        raise QuantdropError(f"{model_path}: no matrix multiplication of a blk.* weight was seen")
    write_imatrix(_as_imatrix(collector, label, ctx), out)
    ckpt.unlink(missing_ok=True)
    n_new = (len(table) - start) * ctx
    return ImatrixResult(
        out,
        len(table),
        ctx,
        len(table) * ctx,
        seconds,
        n_new / max(seconds, 1e-9),
        len(collector.sums),
        start,
        label,
        tuple(notes),
    )


def _check_run(out: Path, ctx: int, chunks: int | None, resume: bool, force: bool) -> None:
    """The run's options and its output path, before the model is loaded."""
    if ctx < MIN_ROWS:
        raise QuantdropError(f"--ctx {ctx} is too small: llama.cpp ignores batches under {MIN_ROWS} tokens")
    if chunks is not None and chunks < 1:
        raise QuantdropError(f"--chunks must be at least 1, not {chunks}")
    if out.exists() and not force and not (resume and _checkpoint_path(out).exists()):
        raise QuantdropError(f"{out} exists (pass --force to overwrite)")
    if not out.parent.is_dir():
        raise QuantdropError(f"{out.parent}: no such directory")


def _run_chunks(
    runner: Model,
    table: np.ndarray,
    start: int,
    progress: bool,
    checkpoint_every: int,
    checkpoint: Callable[[int], None],
) -> float:
    """Evaluate the chunks from `start` on, `checkpoint(done)` every few; the seconds it took."""
    n_ctx = table.shape[1]
    t0 = time.perf_counter()
    with _progress_bar(progress, len(table), start, n_ctx) as update:
        for i in range(start, len(table)):
            runner.eval_chunk(table[i])
            elapsed = time.perf_counter() - t0
            update(i + 1, (i + 1 - start) * n_ctx / max(elapsed, 1e-9))
            if (i + 1) % checkpoint_every == 0 and i + 1 < len(table):
                checkpoint(i + 1)
    return time.perf_counter() - t0


# ------------------------------------------------------------------------------- statistics (--show)


@dataclass(frozen=True)
class TensorStats:
    """imatrix.cpp compute_statistics, per weight, over sums / count of the experts with a count."""

    name: str
    total: float  # Σ(Act²)
    mean: float
    maximum: float
    top1_share: float  # share of Σ held by the top 1% columns
    count: int  # largest count (rows seen)
    experts_seen: int
    n_experts: int
    elements: int


def tensor_stats(im: Imatrix) -> list[TensorStats]:
    """Worst covered first (fewest experts seen, then fewest rows), then by name."""
    gguf = im.to_gguf_counts(im.chunk_size or 512)
    out = []
    for name in sorted(gguf.sums):
        s, c = gguf.sums[name].astype(np.float64), gguf.counts[name]
        seen = c > 0
        act = (s[seen] / c[seen, None]).reshape(-1) if seen.any() else np.zeros(0)
        total = float(act.sum())
        top = np.sort(act)[::-1][: max(1, act.size // 100)] if act.size else act
        out.append(
            TensorStats(
                name,
                total,
                float(act.mean()) if act.size else 0.0,
                float(act.max()) if act.size else 0.0,
                float(top.sum() / total) if total > 0 else 0.0,
                int(c.max(initial=0)),
                int(seen.sum()),
                len(c),
                int(act.size),
            )
        )
    return sorted(out, key=lambda t: (t.experts_seen / max(t.n_experts, 1), t.count, t.name))


def uncovered(im: Imatrix, model: str | os.PathLike[str]) -> list[str]:
    """Matrix weights of `model` the file has no entry for (e.g. DeepSeek's attn_k_b/attn_v_b when
    the imatrix predates the MLA split, llama.cpp issue #14749)."""
    from quantdrop.ggufio import read_header

    names = [
        t.name
        for t in read_header(model).tensors
        if len(t.shape) >= 2 and t.name.startswith("blk.") and t.name.endswith(".weight")
    ]
    return [n for n in names if n not in im.sums]


def format_stats(im: Imatrix, path: str | os.PathLike[str], model: str | os.PathLike[str] | None) -> str:
    stats = tensor_stats(im)
    head = f"{'tensor':<40} {'Σ(Act²)':>12} {'mean':>10} {'max':>10} {'top1%':>7} {'count':>9} {'experts':>9}"
    kind = "legacy .dat" if im.legacy else "GGUF"
    lines = [
        f"{path}: {kind} imatrix, {len(stats)} entries, {im.chunk_count} chunks of {im.chunk_size}, "
        f"datasets {im.datasets}",
        head,
        "-" * len(head),
    ]
    for t in stats:
        lines.append(
            f"{t.name[:40]:<40} {t.total:>12.4g} {t.mean:>10.4g} {t.maximum:>10.4g} "
            f"{100 * t.top1_share:>6.2f}% {t.count:>9d} {t.experts_seen:>4d}/{t.n_experts:<4d}"
        )
        if t.experts_seen < t.n_experts:
            lines.append(f"warning: {t.name}: only {t.experts_seen} of {t.n_experts} experts have data")
    if model is not None:
        for name in uncovered(im, model):
            lines.append(f"warning: {name} of {Path(model).name} is not covered by this imatrix")
    return "\n".join(lines)
