"""Quality proxies of a quantized GGUF against its reference: perplexity, KL divergence, top-1 agreement.

Mirrors llama.cpp's `llama-perplexity --kl-divergence-base` / `--kl-divergence`
(tools/perplexity/perplexity.cpp, `perplexity()` and `kl_divergence()`):

- the text is tokenized once with the reference's tokenizer (BOS added if the vocab says so) and cut
  into chunks of `n_ctx` tokens; the first token of each chunk is replaced by BOS when the vocab adds one;
- only the second half of each chunk is scored: logits at positions `first = n_ctx/2 .. n_ctx-2`
  predict tokens `first+1 .. n_ctx-1` (`n_ctx - 1 - first` tokens per chunk);
- the reference's log-probabilities are streamed to disk chunk by chunk in llama-perplexity's own
  format (uint16 log-probs over the range [max-16, max] with a float scale and offset per token, so
  the file is interchangeable with `--kl-divergence-base`), and reused from the cache;
- per token: KL(P_ref || P_q) = sum over tokens with log P_ref > -16 of P_ref (log P_ref - log P_q),
  "Same top p" = the argmaxes agree; PPL ± and the other uncertainties use llama.cpp's formulas.

The file is keyed by the reference's fingerprint, the text's hash, n_ctx and the number of chunks; an
interrupted reference pass resumes after its last complete chunk. Results per variant are cached too.
Flash attention stays off; `llama-perplexity -fa off` then prints the same numbers from our file and
writes the same quantized log-probs (tests/proxies/test_against_llama_perplexity.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantdrop.calibration import load_text
from quantdrop.errors import QuantdropError
from quantdrop.fingerprint import file_fingerprint
from quantdrop.ggufio import check_gguf_file
from quantdrop.proxy_result import ProxyResult
from quantdrop.tempfiles import sweep_stale
from quantdrop.util import atomic_write, cache_dir, progress_bar, quiet_stderr

DEFAULT_N_CTX = 512
LOGITS_MAGIC = b"_logits_"  # llama-perplexity's --kl-divergence-base file header
LOG_PROB_FLOOR = -16.0  # llama.cpp keeps reference log-probs within 16 nats of the maximum
_FORMAT_VERSION = "1"
_ROWS_PER_BLOCK = 32  # rows of logits processed at once (bounds the temporaries to a few MB)


# --------------------------------------------------------------------------------------------- text


def default_cache_dir() -> Path:
    return cache_dir() / "proxies"


# ---------------------------------------------------------------------------------- llama.cpp logits


class ChunkLogits:
    """One GGUF loaded with llama.cpp; `logits(chunk)` returns the scored rows of a chunk's logits."""

    def __init__(self, model: str | Path, n_ctx: int, n_threads: int | None = None) -> None:
        import llama_cpp

        from quantdrop.kernels import check_threads

        self._llama_cpp = llama_cpp
        threads = check_threads(n_threads) or os.cpu_count() or 1
        with quiet_stderr():
            try:
                self.llm = llama_cpp.Llama(
                    str(model),
                    n_ctx=n_ctx,
                    n_batch=n_ctx,
                    n_ubatch=min(n_ctx, 512),
                    n_threads=threads,
                    n_gpu_layers=-1,  # all layers on the GPU when llama.cpp was built with one
                    n_threads_batch=threads,
                    logits_all=False,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as err:
                raise QuantdropError(f"llama.cpp could not load {model}: {err}") from err
        self.n_ctx = n_ctx
        self.n_vocab = self.llm.n_vocab()
        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.add_bos = bool(llama_cpp.llama_vocab_get_add_bos(vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(vocab))
        self._batch = llama_cpp.llama_batch_init(n_ctx, 0, 1)

    def tokenize(self, text: str) -> list[int]:
        # common_tokenize(ctx, text, add_special=true, parse_special=false), as llama-perplexity does
        return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)

    def logits(self, chunk: Sequence[int]) -> np.ndarray:
        """Logits at positions n_ctx/2 .. n_ctx-2 (float32, shape (n_ctx-1-n_ctx/2, n_vocab))."""
        lc, n_ctx = self._llama_cpp, self.n_ctx
        first = n_ctx // 2
        batch = self._batch
        lc.llama_memory_clear(lc.llama_get_memory(self.llm.ctx), True)
        batch.n_tokens = n_ctx
        for k in range(n_ctx):
            # add BOS for the first token of each chunk (perplexity.cpp: `if (add_bos && j == 0)`)
            batch.token[k] = self.bos if (k == 0 and self.add_bos) else int(chunk[k])
            batch.pos[k] = k
            batch.n_seq_id[k] = 1
            batch.seq_id[k][0] = 0
            batch.logits[k] = first <= k < n_ctx - 1
        if lc.llama_decode(self.llm.ctx, batch) != 0:
            raise QuantdropError("llama.cpp failed to decode a chunk")
        rows = n_ctx - 1 - first
        ptr = lc.llama_get_logits(self.llm.ctx)
        return np.ctypeslib.as_array(ptr, shape=(rows * self.n_vocab,)).reshape(rows, self.n_vocab).copy()

    def close(self) -> None:
        if self._batch is not None:
            self._llama_cpp.llama_batch_free(self._batch)
            self._batch = None
        self.llm.close()


# ------------------------------------------------------------- log-prob encoding (llama.cpp format)


def row_width(n_vocab: int) -> int:
    """uint16 values a token occupies in the file: 2 floats (scale, min log-prob) + n_vocab, padded even."""
    return 2 * ((n_vocab + 1) // 2) + 4


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, float32 exp with a float64 sum like perplexity.cpp's log_softmax."""
    mx = logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(logits - mx).sum(axis=1, keepdims=True, dtype=np.float64)).astype(np.float32)
    return logits - mx - lse


def encode_log_probs(logits: np.ndarray) -> np.ndarray:
    """perplexity.cpp's `log_softmax(n_vocab, logits, uint16_t * log_prob, tok)`, vectorized over rows."""
    rows, n_vocab = logits.shape
    out = np.zeros((rows, row_width(n_vocab)), dtype=np.uint16)
    mx = logits.max(axis=1, keepdims=True)
    mn = np.maximum(logits.min(axis=1, keepdims=True), mx + np.float32(LOG_PROB_FLOOR))
    lse = np.log(np.exp(logits - mx).sum(axis=1, keepdims=True, dtype=np.float64)).astype(np.float32)
    min_log_prob = (mn - mx - lse).astype(np.float32)
    scale = ((mx - mn) / np.float32(65535)).astype(np.float32)
    header = np.concatenate([scale, min_log_prob], axis=1).astype(np.float32)
    out[:, :4] = header.view(np.uint16)
    inv = np.divide(np.float32(1), scale, out=np.zeros_like(scale), where=scale != 0)
    q = np.rint(inv * (logits - mn))  # nearest_int(): round half to even
    out[:, 4 : 4 + n_vocab] = np.where(logits > mn, q, 0).astype(np.uint16)
    return out


def decode_log_probs(rows: np.ndarray, n_vocab: int) -> np.ndarray:
    """The reference's log-probs back from the uint16 rows: scale * q + min_log_prob (float32)."""
    header = np.ascontiguousarray(rows[:, :4]).view(np.float32)
    return header[:, :1] * rows[:, 4 : 4 + n_vocab].astype(np.float32) + header[:, 1:2]


# ------------------------------------------------------------------------------ per-token statistics


@dataclass
class TokenStats:
    """Per-token values of one comparison (KL and Δp kept for the median / percentiles, like llama.cpp)."""

    nll: list[np.ndarray]
    nll_base: list[np.ndarray]
    kld: list[np.ndarray]
    p_diff: list[np.ndarray]
    same_top: int = 0

    @classmethod
    def empty(cls) -> TokenStats:
        return cls([], [], [], [])

    def add(self, logits: np.ndarray, base_rows: np.ndarray, targets: np.ndarray) -> None:
        """perplexity.cpp's `log_softmax(..., base_log_prob, tok, kld)` for every row of a chunk."""
        n_vocab = logits.shape[1]
        for s in range(0, len(logits), _ROWS_PER_BLOCK):
            x, tok = logits[s : s + _ROWS_PER_BLOCK], targets[s : s + _ROWS_PER_BLOCK]
            idx = np.arange(len(x))
            logp = log_softmax(x)
            base = decode_log_probs(base_rows[s : s + _ROWS_PER_BLOCK], n_vocab)
            nll = -logp[idx, tok].astype(np.float64)
            nll_base = -base[idx, tok].astype(np.float64)
            p_base = np.where(base > LOG_PROB_FLOOR, np.exp(base), np.float32(0))
            kld = (p_base.astype(np.float64) * (base - logp)).sum(axis=1)
            self.same_top += int((x.argmax(axis=1) == base.argmax(axis=1)).sum())
            self.nll.append(nll)
            self.nll_base.append(nll_base)
            self.kld.append(kld)
            self.p_diff.append(np.exp(-nll) - np.exp(-nll_base))


def _mean_and_uncertainty(values: np.ndarray) -> tuple[float, float]:
    """perplexity.cpp's mean_and_uncertainty: mean and sqrt(var / (n - 1)), 0 for n <= 10."""
    n = len(values)
    if n < 1:
        return 0.0, 0.0
    mean = float(values.mean())
    var = float((values * values).mean()) - mean * mean
    return mean, math.sqrt(var / (n - 1)) if var > 0 and n > 10 else 0.0


def _percentile(sorted_values: np.ndarray, fraction: float) -> float:
    """perplexity.cpp's percentile(): linear interpolation at fraction * (n - 1)."""
    return float(np.percentile(sorted_values, 100.0 * fraction, method="linear"))


# ----------------------------------------------------------------------------------------- results


def summarize(stats: TokenStats, **labels: Any) -> ProxyResult:
    """Aggregate per-token values with llama-perplexity's formulas (kl_divergence() in perplexity.cpp)."""
    nll, nll_base = np.concatenate(stats.nll), np.concatenate(stats.nll_base)
    kld, p_diff = np.sort(np.concatenate(stats.kld)), np.concatenate(stats.p_diff)
    count = len(nll)
    log_ppl, log_ppl_err = _mean_and_uncertainty(nll)
    log_base, log_base_err = _mean_and_uncertainty(nll_base)
    cov = 0.0
    if count >= 10:  # covariance(): (E[ab] - E[a]E[b]) / (n - 1)
        cov = (float((nll * nll_base).mean()) - log_ppl * log_base) / (count - 1)
    ratio_err = math.sqrt(max(0.0, log_ppl_err**2 + log_base_err**2 - 2.0 * cov))
    kld_mean, kld_err = _mean_and_uncertainty(kld)
    same = stats.same_top / count
    return ProxyResult(
        **labels,
        n_tokens=count,
        ppl=math.exp(log_ppl),
        ppl_err=math.exp(log_ppl) * log_ppl_err,
        ppl_base=math.exp(log_base),
        ppl_base_err=math.exp(log_base) * log_base_err,
        ln_ppl_ratio=log_ppl - log_base,
        ln_ppl_ratio_err=ratio_err,
        kld_mean=kld_mean,
        kld_mean_err=kld_err,
        kld_median=float(np.median(kld)),
        kld_p99=_percentile(kld, 0.99),
        kld_max=float(kld[-1]),
        rms_dp=math.sqrt(float((p_diff * p_diff).mean())),
        same_top=same,
        same_top_err=math.sqrt(same * (1 - same) / (count - 1)) if count > 1 else 0.0,
    )


# ---------------------------------------------------------------------------- the reference file


@dataclass(frozen=True)
class ReferenceLogProbs:
    """A finished reference file: header (n_ctx, n_vocab, n_chunk, tokens) then one block per chunk."""

    path: Path
    n_ctx: int
    n_vocab: int
    n_chunks: int
    fingerprint: str
    text: str

    @property
    def rows(self) -> int:
        return self.n_ctx - 1 - self.n_ctx // 2

    @property
    def header_bytes(self) -> int:
        return len(LOGITS_MAGIC) + 12 + 4 * self.n_ctx * self.n_chunks

    @property
    def chunk_bytes(self) -> int:
        return self.rows * row_width(self.n_vocab) * 2

    def tokens(self) -> np.ndarray:
        return np.fromfile(
            self.path, dtype=np.int32, count=self.n_ctx * self.n_chunks, offset=len(LOGITS_MAGIC) + 12
        ).reshape(self.n_chunks, self.n_ctx)

    def chunk(self, i: int) -> np.ndarray:
        """The uint16 rows of chunk i, read from disk (one chunk in memory at a time)."""
        count = self.rows * row_width(self.n_vocab)
        offset = self.header_bytes + i * self.chunk_bytes
        data = np.fromfile(self.path, dtype=np.uint16, count=count, offset=offset)
        return data.reshape(self.rows, row_width(self.n_vocab))


def read_reference_header(path: Path) -> tuple[int, int, int]:
    """(n_ctx, n_vocab, n_chunk) of a llama-perplexity log-probs file."""
    with path.open("rb") as f:
        if f.read(8) != LOGITS_MAGIC:
            raise QuantdropError(f"{path} is not a llama-perplexity log-probs file")
        n_ctx, n_vocab, n_chunk = np.frombuffer(f.read(12), dtype=np.int32)
    return int(n_ctx), int(n_vocab), int(n_chunk)


def reference_log_probs(
    reference: str | Path,
    *,
    text: str | Path | None = None,
    n_ctx: int = DEFAULT_N_CTX,
    chunks: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> ReferenceLogProbs:
    """Compute (or reuse) the reference's log-probs file; resumes an interrupted pass chunk by chunk."""
    reference = check_gguf_file(reference)
    where = _reference_file(reference, text, n_ctx, chunks, cache_dir)
    return _log_probs_at(reference, where, n_ctx, chunks, progress)


def _log_probs_at(
    reference: Path, where: tuple[Path, str, str, str], n_ctx: int, chunks: int | None, progress: bool
) -> ReferenceLogProbs:
    """The reference's log-probs in `where`'s file (see _reference_file): reused when whole, else computed."""
    final, fingerprint, body, label = where
    cached = _cached_reference(final, n_ctx, fingerprint, label)
    if cached is not None:
        return cached
    model = ChunkLogits(reference, n_ctx)
    try:
        tokens = np.asarray(model.tokenize(body), dtype=np.int32)
        if len(tokens) < 2 * n_ctx:  # llama-perplexity's own requirement
            raise QuantdropError(
                f"the text tokenizes to {len(tokens)} tokens; n_ctx={n_ctx} needs at least "
                f"{2 * n_ctx} (use a smaller --ctx or a longer --text)"
            )
        n_chunk = len(tokens) // n_ctx if chunks is None else min(chunks, len(tokens) // n_ctx)
        ref = ReferenceLogProbs(final, n_ctx, model.n_vocab, n_chunk, fingerprint, label)
        _write_reference(model, ref, tokens, f"reference log-probs ({Path(reference).name})", progress)
    finally:
        model.close()
    return ReferenceLogProbs(final, n_ctx, ref.n_vocab, n_chunk, fingerprint, label)


def _reference_file(
    reference: Path, text: str | Path | None, n_ctx: int, chunks: int | None, cache_dir: str | Path | None
) -> tuple[Path, str, str, str]:
    """Where the reference's log-probs for these settings live (named by the model's fingerprint, the
    text, n_ctx and chunks), with the fingerprint, the text and its label; the settings checked."""
    if n_ctx < 16 or n_ctx % 2:
        raise QuantdropError(f"--ctx must be an even number >= 16, got {n_ctx}")
    if chunks is not None and chunks < 1:
        raise QuantdropError(f"--chunks must be >= 1, got {chunks}")
    body, label = load_text(text)
    fingerprint = file_fingerprint(reference)
    key = hashlib.sha256(
        f"{_FORMAT_VERSION}|{fingerprint}|{hashlib.sha256(body.encode()).hexdigest()}|{n_ctx}|{chunks}".encode()
    ).hexdigest()[:20]
    folder = _cache_folder(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    return folder / f"ref-{key}.logprobs", fingerprint, body, label


def _write_reference(
    model: ChunkLogits, ref: ReferenceLogProbs, tokens: np.ndarray, title: str, progress: bool
) -> None:
    """Write `ref.path` through a `.partial` file that an interrupted run resumes, renamed when whole."""
    n_ctx, n_chunk = ref.n_ctx, ref.n_chunks
    partial = ref.path.with_name(ref.path.name + ".partial")
    done = _resume_point(partial, ref)
    mode = "r+b" if done is not None else "wb"
    with partial.open(mode) as f:
        if done is None:
            f.write(LOGITS_MAGIC)
            f.write(np.array([n_ctx, ref.n_vocab, n_chunk], dtype=np.int32).tobytes())
            f.write(tokens[: n_ctx * n_chunk].tobytes())
            done = 0
        f.seek(ref.header_bytes + done * ref.chunk_bytes)
        f.truncate()
        grid = tokens[: n_ctx * n_chunk].reshape(n_chunk, n_ctx)
        for i in _progress(range(done, n_chunk), title, n_chunk, done, progress):
            f.write(encode_log_probs(model.logits(grid[i])).tobytes())
            f.flush()
        os.fsync(f.fileno())
    os.replace(partial, ref.path)


def _cache_folder(folder: Path) -> Path:
    """The cache folder, created if needed, with the temporaries of killed runs swept."""
    if folder.exists() and not folder.is_dir():
        raise QuantdropError(f"--cache-dir {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise QuantdropError(f"--cache-dir {folder}: cannot create the folder ({err.strerror})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise QuantdropError(f"--cache-dir {folder} is not writable")
    sweep_stale(folder)
    return folder


def _cached_reference(final: Path, n_ctx: int, fingerprint: str, label: str) -> ReferenceLogProbs | None:
    """A finished reference file, if it is whole: a damaged one (truncated, foreign) is removed and rebuilt."""
    if not final.is_file():
        return None
    try:
        n_ctx_f, n_vocab, n_chunk = read_reference_header(final)
    except (QuantdropError, ValueError):
        n_ctx_f = n_vocab = n_chunk = 0
    ref = ReferenceLogProbs(final, n_ctx_f, n_vocab, n_chunk, fingerprint, label)
    if (
        n_ctx_f == n_ctx
        and n_vocab > 0
        and n_chunk > 0
        and final.stat().st_size == ref.header_bytes + n_chunk * ref.chunk_bytes
    ):
        return ref
    print(f"warning: {final} is damaged (truncated or not ours); computing it again", file=sys.stderr)
    final.unlink(missing_ok=True)
    return None


def _resume_point(partial: Path, ref: ReferenceLogProbs) -> int | None:
    """Complete chunks in an interrupted file with the same header, or None to start afresh."""
    if not partial.is_file() or partial.stat().st_size < ref.header_bytes:
        return None
    try:
        if read_reference_header(partial) != (ref.n_ctx, ref.n_vocab, ref.n_chunks):
            return None
    except QuantdropError:
        return None
    return min(ref.n_chunks, (partial.stat().st_size - ref.header_bytes) // ref.chunk_bytes)


# ----------------------------------------------------------------------------------- comparisons


def compare(ref: ReferenceLogProbs, variant: str | Path, *, progress: bool = True) -> ProxyResult:
    """Score one variant's logits on the reference's tokens against the stored log-probs."""
    variant = check_gguf_file(variant)
    model = ChunkLogits(variant, ref.n_ctx)
    try:
        if model.n_vocab != ref.n_vocab:
            raise QuantdropError(
                f"{variant} has {model.n_vocab} tokens in its vocabulary, "
                f"the reference {ref.n_vocab}: not the same model family"
            )
        tokens = ref.tokens()
        first = ref.n_ctx // 2
        stats = TokenStats.empty()
        title = f"KL divergence ({Path(variant).name})"
        for i in _progress(range(ref.n_chunks), title, ref.n_chunks, 0, progress):
            logits = model.logits(tokens[i])
            stats.add(logits, ref.chunk(i), tokens[i, first + 1 :].astype(np.int64))
    finally:
        model.close()
    return summarize(
        stats,
        variant=Path(variant).name,
        fingerprint=file_fingerprint(variant),
        reference=ref.fingerprint,
        text=ref.text,
        n_ctx=ref.n_ctx,
        n_chunks=ref.n_chunks,
    )


def proxies(
    reference: str | Path,
    variants: Sequence[str | Path],
    *,
    text: str | Path | None = None,
    ctx: int = DEFAULT_N_CTX,
    chunks: int | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
) -> list[ProxyResult]:
    """PPL, KL divergence (mean, median, p99) and top-1 agreement of each variant against the reference,
    over `chunks` chunks of `ctx` tokens (llama-perplexity's n_ctx).

    Results are cached next to the reference's log-probs, so a rerun only measures new variants; when
    every variant's result is cached the reference is not run again (its log-probs file may be gone)."""
    reference = check_gguf_file(reference)
    variants = [check_gguf_file(v) for v in variants]
    if not variants:
        raise QuantdropError("give at least one VARIANT.gguf to compare with the reference")
    where = _reference_file(reference, text, ctx, chunks, cache_dir)
    final = where[0]
    results = [_cached_result(final, v) for v in variants]
    if all(results):
        return [r for r in results if r is not None]
    ref = _log_probs_at(reference, where, ctx, chunks, progress)
    for k, variant in enumerate(variants):
        results[k] = results[k] or _cached_result(final, variant)  # a repeated variant: measured once
        if results[k] is None:
            results[k] = compare(ref, variant, progress=progress)
            atomic_write(_result_file(final, variant), json.dumps(results[k].to_dict(), indent=1))
    return [r for r in results if r is not None]


def _result_file(reference_file: Path, variant: Path) -> Path:
    return reference_file.with_name(f"{reference_file.stem}-vs-{file_fingerprint(variant)}.json")


def _cached_result(reference_file: Path, variant: Path) -> ProxyResult | None:
    """The variant's stored result against this reference, if it is readable."""
    stored = _result_file(reference_file, variant)
    if stored.is_file():
        with contextlib.suppress(ValueError, TypeError):
            return ProxyResult(**{**json.loads(stored.read_text()), "variant": variant.name})
    return None


def _progress(items: range, title: str, total: int, done: int, enabled: bool) -> Iterator[int]:
    if not enabled:
        yield from items
        return
    with progress_bar() as bar:
        task = bar.add_task(title, total=total, completed=done)
        for i in items:
            yield i
            bar.advance(task)


# ------------------------------------------------------------------------------------ printing


def format_table(results: Sequence[ProxyResult]) -> str:
    """A plain-text table of the results (what the CLI prints)."""
    head = f"{'variant':<28} {'PPL':>18} {'ln(PPL/PPLref)':>18} {'mean KLD':>20} {'median':>9} "
    head += f"{'p99 KLD':>9} {'same top':>16}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.variant[:28]:<28} {r.ppl:>9.4f} ± {r.ppl_err:<6.4f} "
            f"{r.ln_ppl_ratio:>8.5f} ± {r.ln_ppl_ratio_err:<7.5f} "
            f"{r.kld_mean:>9.6f} ± {r.kld_mean_err:<8.6f} {r.kld_median:>9.6f} {r.kld_p99:>9.5f} "
            f"{100 * r.same_top:>7.3f} ± {100 * r.same_top_err:<5.3f}%"
        )
    if results:
        r = results[0]
        lines.append(
            f"reference PPL {r.ppl_base:.4f} ± {r.ppl_base_err:.4f}; {r.n_tokens} tokens scored in "
            f"{r.n_chunks} chunks of {r.n_ctx} ({r.text})"
        )
    return "\n".join(lines)
