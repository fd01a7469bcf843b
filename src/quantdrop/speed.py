"""`quantdrop speed`: what a variant costs to run, as prompt-processing and generation throughput.

In-process it mirrors llama-bench (tools/llama-bench/llama-bench.cpp of the llama.cpp that
llama-cpp-python 0.3.36 vendors): `pp512` decodes 512 random tokens (BOS first when the vocab adds
one) in batches of `n_batch`; `tg128` decodes 128 single random tokens one at a time; one warm-up run
of each is excluded, the KV cache is cleared before every repeat, and each repeat gives one tokens/s
sample (mean +/- sample std over the repeats, as llama-bench's avg_ts/stdev_ts). Through an
OpenAI-compatible endpoint it streams a fixed prompt and times the first token (TTFT: queueing,
network and prompt processing) and the decode rate after it; with `--concurrency N`, N requests run
at once and the aggregate generated tokens/s is what the server's users get. Results are cached per
model fingerprint, machine and options.

The in-process measurement runs in a child process with the user's OpenMP wait policy (quantdrop.omp:
unset, llama.cpp's spinning default, unless the user set one), whichever verb asked for it: eval's
and study's PASSIVE keeps their worker processes fed but costs a quiet machine 3x in tg.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from quantdrop import omp
from quantdrop.errors import QuantdropError

SCHEMA = 1


@dataclass(frozen=True)
class SpeedOptions:
    """The test, as llama-bench names it: pp{prompt} and tg{gen}, `repeat` samples each."""

    prompt: int = 512
    gen: int = 128
    repeat: int = 5
    ctx: int | None = None  # default: prompt + gen, as llama-bench
    threads: int | None = None  # default: every core
    batch: int = 2048
    ubatch: int = 512
    concurrency: int = 1  # endpoints only

    def __post_init__(self) -> None:
        for name in ("prompt", "gen"):
            if getattr(self, name) < 0:
                raise QuantdropError(f"--{name} must be >= 0, got {getattr(self, name)}")
        if self.prompt == 0 and self.gen == 0:
            raise QuantdropError("--prompt and --gen are both 0: nothing to measure")
        for name in ("repeat", "batch", "ubatch", "concurrency"):
            if not 1 <= getattr(self, name) <= 100_000:
                raise QuantdropError(f"--{name} must be between 1 and 100000, got {getattr(self, name)}")
        if self.threads is not None and not 1 <= self.threads <= 1024:
            raise QuantdropError(f"--threads must be between 1 and 1024, got {self.threads}")
        if self.ctx is not None and self.ctx < self.prompt + self.gen:
            raise QuantdropError(f"--ctx {self.ctx} is smaller than --prompt + --gen ({self.prompt + self.gen})")


@dataclass
class Throughput:
    """Tokens per second over the repeats of one test (warm-up excluded)."""

    test: str
    samples: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else 0.0

    @property
    def std(self) -> float:
        return statistics.stdev(self.samples) if len(self.samples) > 1 else 0.0

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.std:.2f}"


@dataclass
class SpeedResult:
    label: str
    source: str  # the GGUF's path or the endpoint's URL
    kind: str  # "gguf" or "endpoint"
    machine: dict[str, Any]
    options: dict[str, Any]
    pp: Throughput | None = None
    tg: Throughput | None = None
    ttft_s: Throughput | None = None  # endpoints: seconds to the first token (samples in seconds)
    aggregate_tg: Throughput | None = None  # endpoints at concurrency > 1
    fingerprint: str = ""
    cached: bool = field(default=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "cached"}
        for key in ("pp", "tg", "ttft_s", "aggregate_tg"):
            t = getattr(self, key)
            out[key] = None if t is None else {"test": t.test, "mean": t.mean, "std": t.std, "samples": t.samples}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SpeedResult:
        parts = {
            k: None if data.get(k) is None else Throughput(data[k]["test"], list(data[k]["samples"]))
            for k in ("pp", "tg", "ttft_s", "aggregate_tg")
        }
        plain = {k: data[k] for k in ("label", "source", "kind", "machine", "options", "fingerprint")}
        return cls(**plain, **parts, cached=True)


# ------------------------------------------------------------------------------------ the machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_names() -> list[str]:
    """NVIDIA GPUs by name, from nvidia-smi when it is there (nothing else is asked)."""
    import shutil

    if not shutil.which("nvidia-smi"):
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in out.splitlines() if line.strip()]


def machine_info(threads: int | None = None) -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, GPUs, offload and the llama.cpp build."""
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "threads": threads,
        "gpus": gpu_names(),
        "host": platform.node(),
        **omp.describe(omp.measuring_environ()),
    }
    try:
        import llama_cpp

        info["llama_cpp_python"] = llama_cpp.__version__
        info["gpu_offload"] = bool(llama_cpp.llama_supports_gpu_offload())
        info["system"] = llama_cpp.llama_print_system_info().decode(errors="replace").strip(" |")
    except ImportError:
        pass
    return info


def machine_key(machine: dict[str, Any]) -> str:
    names = (
        "cpu",
        "cores",
        "threads",
        "gpus",
        "host",
        "llama_cpp_python",
        "system",
        "omp_wait_policy",
        "gomp_spincount",
    )
    keep = {k: machine.get(k) for k in names}
    return json.dumps(keep, sort_keys=True)


# ------------------------------------------------------------------------------- in-process (GGUF)


class LlamaBench:
    """llama-bench's test_prompt/test_gen on one llama.cpp context (llama-cpp-python's bindings)."""

    def __init__(self, model: Path, opts: SpeedOptions) -> None:
        import llama_cpp

        from quantdrop.util import quiet_stderr

        self.lc = llama_cpp
        self.threads = opts.threads or os.cpu_count() or 1
        n_ctx = opts.ctx or max(opts.prompt + opts.gen, 1)
        with quiet_stderr():
            try:
                self.llm = llama_cpp.Llama(
                    str(model),
                    n_ctx=n_ctx,
                    n_batch=opts.batch,
                    n_ubatch=opts.ubatch,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    n_gpu_layers=-1,  # every layer on the GPU when llama.cpp has a GPU backend (llama-bench's -ngl 99)
                    logits_all=False,
                    verbose=False,
                )
            except (ValueError, RuntimeError) as err:
                raise QuantdropError(f"llama.cpp could not load {model}: {err}") from None
        vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(vocab))
        self.bos = int(llama_cpp.llama_vocab_bos(vocab)) if llama_cpp.llama_vocab_get_add_bos(vocab) else None
        self.n_batch = opts.batch
        self.rng = random.Random(0)
        offload = bool(llama_cpp.llama_supports_gpu_offload())
        self.gpu_layers = int(llama_cpp.llama_model_n_layer(self.llm.model)) + 1 if offload else 0

    def _decode(self, tokens: list[int], pos0: int) -> None:
        lc = self.lc
        arr = (lc.llama_token * len(tokens))(*tokens)
        batch = lc.llama_batch_get_one(arr, len(tokens))
        if lc.llama_decode(self.llm.ctx, batch) != 0:
            raise QuantdropError(f"llama.cpp failed to decode a batch at position {pos0}")

    def _random(self, n: int) -> list[int]:
        return [self.rng.randrange(self.n_vocab) for _ in range(n)]

    def prompt(self, n_prompt: int) -> None:
        done = 0
        while done < n_prompt:
            n = min(n_prompt - done, self.n_batch)
            tokens = self._random(n)
            if done == 0 and self.bos is not None:
                tokens[0] = self.bos
            self._decode(tokens, done)
            done += n
        self.lc.llama_synchronize(self.llm.ctx)

    def gen(self, n_gen: int) -> None:
        token = self.bos if self.bos is not None else self._random(1)[0]
        for i in range(n_gen):
            self._decode([token], i)
            self.lc.llama_synchronize(self.llm.ctx)
            token = self._random(1)[0]

    def clear(self) -> None:
        self.lc.llama_memory_clear(self.lc.llama_get_memory(self.llm.ctx), False)

    def run(self, test: str, n: int, repeat: int) -> Throughput:
        """One warm-up (a full prompt run, or one generated token, as llama-bench), then `repeat` samples."""
        step = self.prompt if test == "pp" else self.gen
        self.clear()
        step(n if test == "pp" else 1)
        samples = []
        for _ in range(repeat):
            self.clear()
            start = time.perf_counter_ns()
            step(n)
            samples.append(n / ((time.perf_counter_ns() - start) / 1e9))
        return Throughput(f"{test}{n}", samples)


def measure_child() -> None:
    """The measuring child's body: a JSON request on stdin, a JSON result as stdout's last line."""
    request = json.loads(sys.stdin.read())
    opts = SpeedOptions(**request["opts"])
    try:
        bench = LlamaBench(Path(request["model"]), opts)
        out: dict[str, Any] = {"gpu_layers": bench.gpu_layers, "omp": omp.describe(os.environ)}
        if opts.prompt:
            out["pp"] = bench.run("pp", opts.prompt, opts.repeat).samples
        if opts.gen:
            out["tg"] = bench.run("tg", opts.gen, opts.repeat).samples
    except QuantdropError as err:
        out = {"error": str(err)}
    print(json.dumps(out), flush=True)


def _measure(model: Path, opts: SpeedOptions) -> dict[str, Any]:
    """LlamaBench in a fresh process under omp.measuring_environ(): OpenMP reads its wait policy when
    llama.cpp loads, and this process may have loaded it already under eval's or study's PASSIVE."""

    env = omp.measuring_environ()
    src = str(Path(__file__).resolve().parents[1])  # this very quantdrop, however it was imported
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    request = json.dumps({"model": str(model), "opts": asdict(opts)})
    code = "from quantdrop.speed import measure_child; measure_child()"
    proc = subprocess.run([sys.executable, "-c", code], input=request, capture_output=True, text=True, env=env)
    try:
        out = json.loads(proc.stdout.strip().splitlines()[-1])
    except (IndexError, ValueError):
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:]) or "no output"
        raise QuantdropError(f"measuring {model} failed (exit {proc.returncode}): {tail}") from None
    if "error" in out:
        raise QuantdropError(out["error"])
    return out


def bench_gguf(
    model: Path, opts: SpeedOptions, label: str | None = None, machine: dict[str, Any] | None = None
) -> SpeedResult:
    """pp/tg of one GGUF in-process (in a measuring child: _measure); `machine`: machine_info() when the
    caller already has it."""
    from quantdrop.fingerprint import sampled_digest

    if not model.is_file():
        raise QuantdropError(f"no GGUF model at {model}")
    out = _measure(model, opts)
    machine = dict(machine or machine_info(opts.threads or os.cpu_count() or 1))
    machine.update(gpu_layers=out["gpu_layers"], **out["omp"])  # the policy the child measured under
    result = SpeedResult(
        label or model.stem, str(model), "gguf", machine, asdict(opts), fingerprint=str(sampled_digest(model))
    )
    if "pp" in out:
        result.pp = Throughput(f"pp{opts.prompt}", out["pp"])
    if "tg" in out:
        result.tg = Throughput(f"tg{opts.gen}", out["tg"])
    return result


# ------------------------------------------------------------------------------------- endpoints

# A fixed English text: a prompt of about `prompt` tokens is this, repeated, behind a unique nonce
# (so no server's prefix cache can answer a repeat from the last one).
FILLER = (
    "The quick brown fox jumps over the lazy dog while the committee reviews the quarterly "
    "report on regional rainfall, bridge maintenance and the price of wheat. "
)


def endpoint_prompt(n_tokens: int, nonce: str) -> str:
    words_per_token = 0.75  # English text: about 4 tokens for 3 words with BPE vocabularies
    words = FILLER.split()
    want = max(1, int(n_tokens * words_per_token))
    return f"[{nonce}] " + " ".join(words[i % len(words)] for i in range(want))


@dataclass
class StreamTiming:
    ttft_s: float
    decode_s: float
    prompt_tokens: int
    completion_tokens: int


def _chunk_text(event: dict[str, Any]) -> str:
    choices = event.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    text = choices[0].get("text")
    return text if isinstance(text, str) else ""


def _usage_tokens(event: dict[str, Any], key: str) -> int | None:
    usage = event.get("usage")
    value = usage.get(key) if isinstance(usage, dict) else None
    return value if isinstance(value, int) and value >= 0 else None


async def stream_once(session: Any, url: str, body: dict[str, Any], timeout: float) -> StreamTiming:
    """POST a streaming completion; time the first token and the rest."""
    import aiohttp

    start = time.perf_counter()
    first = last = None
    chunks, prompt_tokens, completion_tokens = 0, None, None
    try:
        async with session.post(
            f"{url}/v1/completions", json=body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as resp:
            if resp.status != 200:
                raise QuantdropError(f"{url}: HTTP {resp.status}: {(await resp.text())[:200]}")
            async for raw in resp.content:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:") or line == "data: [DONE]":
                    continue
                try:
                    event = json.loads(line[5:])
                except json.JSONDecodeError:
                    continue
                now = time.perf_counter()
                if _chunk_text(event):
                    chunks += 1
                    first = first or now
                    last = now
                prompt_tokens = _usage_tokens(event, "prompt_tokens") or prompt_tokens
                completion_tokens = _usage_tokens(event, "completion_tokens") or completion_tokens
    except (TimeoutError, aiohttp.ClientError) as err:
        raise QuantdropError(f"{url}: streaming request failed ({type(err).__name__}: {err})") from None
    if first is None or last is None:
        raise QuantdropError(f"{url}: the stream carried no generated text")
    return StreamTiming(first - start, last - first, prompt_tokens or 0, completion_tokens or chunks)


def stream_body(opts: SpeedOptions, model_name: str | None, nonce: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "prompt": endpoint_prompt(opts.prompt, nonce),
        "max_tokens": opts.gen,
        "temperature": 0.0,
        "stream": True,
        "stream_options": {"include_usage": True},
        "ignore_eos": True,  # llama-server, vLLM and SGLang: generate all `gen` tokens
        "cache_prompt": False,  # llama-server: no prompt reuse between repeats
    }
    if model_name:
        body["model"] = model_name
    return body


async def _model_name(session: Any, url: str) -> str | None:
    try:
        async with session.get(f"{url}/v1/models") as resp:
            data = await resp.json(content_type=None)
        return str(data["data"][0]["id"])
    except Exception:  # a server without /v1/models: send no model name
        return None


async def _bench_endpoint(
    url: str, opts: SpeedOptions, model_name: str | None, timeout: float
) -> dict[str, Throughput]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        name = model_name or await _model_name(session, url)
        await stream_once(session, url, stream_body(opts, name, "warm-up"), timeout)  # excluded, as in-process
        ttft, pp, tg, agg = [], [], [], []
        for rep in range(opts.repeat):
            nonces = [f"r{rep}c{c}-{random.randrange(1 << 30)}" for c in range(opts.concurrency)]
            start = time.perf_counter()
            runs = await asyncio.gather(
                *(stream_once(session, url, stream_body(opts, name, n), timeout) for n in nonces)
            )
            wall = time.perf_counter() - start
            for r in runs:
                ttft.append(r.ttft_s)
                if r.prompt_tokens:
                    pp.append(r.prompt_tokens / r.ttft_s)
                if r.completion_tokens > 1 and r.decode_s > 0:
                    tg.append((r.completion_tokens - 1) / r.decode_s)
            agg.append(sum(r.completion_tokens for r in runs) / wall)
    out = {
        "ttft_s": Throughput("ttft", ttft),
        "tg": Throughput(f"tg{opts.gen}", tg),
        "aggregate_tg": Throughput(f"tg{opts.gen}x{opts.concurrency}", agg),
    }
    if pp:
        out["pp"] = Throughput(f"pp{opts.prompt}", pp)
    return out


def bench_endpoint(
    label: str, url: str, opts: SpeedOptions, model_name: str | None = None, timeout: float = 600.0
) -> SpeedResult:
    from quantdrop.eval.backends.openai_compat import normalize_endpoint

    url = normalize_endpoint(url)
    parts = asyncio.run(_bench_endpoint(url, opts, model_name, timeout))
    machine = {"endpoint": url, "measured_from": platform.node()}
    return SpeedResult(label, url, "endpoint", machine, asdict(opts), fingerprint=url, **parts)


# ----------------------------------------------------------------------------------- the verb


def default_cache_dir() -> Path:
    from quantdrop.demo_model import cache_dir

    return cache_dir() / "speed"


def cache_key(fingerprint: str, machine: dict[str, Any], opts: SpeedOptions) -> str:
    text = json.dumps([SCHEMA, fingerprint, machine_key(machine), asdict(opts)], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cached_gguf(model: Path, opts: SpeedOptions, folder: Path, label: str | None = None) -> SpeedResult:
    """bench_gguf, or its result from an earlier run with the same file, machine and options."""
    from quantdrop.fingerprint import sampled_digest
    from quantdrop.util import atomic_write

    if not model.is_file():
        raise QuantdropError(f"no GGUF model at {model}")
    machine = machine_info(opts.threads or os.cpu_count() or 1)
    path = folder / f"{cache_key(str(sampled_digest(model)), machine, opts)}.json"
    if path.is_file():
        try:
            result = SpeedResult.from_dict(json.loads(path.read_text()))
            result.label, result.source = label or model.stem, str(model)
            return result
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is measured again
    result = bench_gguf(model, opts, label, machine)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(result.to_dict(), indent=1))
    return result


def speed(
    models: list[str | Path] | tuple[str | Path, ...] = (),
    *,
    endpoint: list[str] | tuple[str, ...] = (),
    prompt: int = 512,
    gen: int = 128,
    repeat: int = 5,
    ctx: int | None = None,
    threads: int | None = None,
    concurrency: int = 1,
    model_name: str | None = None,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
) -> list[SpeedResult]:
    """Throughput of each GGUF in-process and of each LABEL=URL endpoint, in the order given."""
    opts = SpeedOptions(prompt=prompt, gen=gen, repeat=repeat, ctx=ctx, threads=threads, concurrency=concurrency)
    from quantdrop.eval.backends.openai_compat import parse_labelled_endpoint

    targets = [parse_labelled_endpoint(e) for e in endpoint]  # bad specs are refused before any work
    if not models and not targets:
        raise QuantdropError("nothing to measure: give GGUF files and/or --endpoint LABEL=URL")
    for model in models:
        if not Path(model).is_file():
            raise QuantdropError(f"no GGUF model at {model}")
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    results = [cached_gguf(Path(m), opts, folder) if use_cache else bench_gguf(Path(m), opts) for m in models]
    results += [bench_endpoint(label, url, opts, model_name) for label, url in targets]
    return results


def render(results: list[SpeedResult]) -> str:
    first = results[0]
    pp_name = first.pp.test if first.pp else "pp"
    tg_name = first.tg.test if first.tg else "tg"
    lines = [f"| variant | {pp_name} t/s | {tg_name} t/s | TTFT s | aggregate t/s |", "|---|---:|---:|---:|---:|"]
    for r in results:
        cells = [
            str(r.pp) if r.pp else "",
            str(r.tg) if r.tg else "",
            f"{r.ttft_s.mean:.3f}" if r.ttft_s else "",
            str(r.aggregate_tg) if r.aggregate_tg else "",
        ]
        lines.append(f"| {r.label} | " + " | ".join(cells) + " |")
    gguf = next((r for r in results if r.kind == "gguf"), None)
    if gguf is not None:
        m = gguf.machine
        gpus = ", ".join(m.get("gpus") or []) or "no GPU"
        policy = m.get("omp_wait_policy") or "unset (llama.cpp's default)"
        lines.append(
            f"\nIn-process: {m.get('cpu')}, {m.get('threads')} threads, {gpus}, "
            f"{m.get('gpu_layers', 0)} layers offloaded, llama-cpp-python {m.get('llama_cpp_python')}, "
            f"OMP_WAIT_POLICY {policy}."
        )
    return "\n".join(lines)
