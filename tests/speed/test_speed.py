"""`quantdrop speed`: llama-bench's pp/tg in-process, and the endpoint path against llama_cpp.server."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.serve import Engine
from quantdrop.speed import SpeedOptions, bench_endpoint, cached_gguf, render, speed
from tests.hostile.cli import assert_clean_failure, run

SERVER = (
    f"{sys.executable} -m llama_cpp.server --model {{model}} --port {{port}} --n_ctx {{ctx}} --interrupt_requests False"
)
SMALL = SpeedOptions(prompt=64, gen=8, repeat=2)


def test_in_process_gives_repeat_samples_and_the_machine(demo_model: Path, tmp_path: Path) -> None:
    result = cached_gguf(demo_model, SMALL, tmp_path)
    assert result.pp is not None and result.tg is not None
    assert result.pp.test == "pp64" and result.tg.test == "tg8"
    assert len(result.pp.samples) == 2 and len(result.tg.samples) == 2
    assert all(s > 0 for s in result.pp.samples + result.tg.samples)
    assert result.pp.mean > result.tg.mean  # a batch of 64 beats 8 single-token decodes on any machine
    assert result.machine["cpu"] and result.machine["threads"] >= 1
    assert "pp64" in render([result]) and "threads" in render([result])


def test_results_are_cached_per_file_and_options(demo_model: Path, tmp_path: Path) -> None:
    first = cached_gguf(demo_model, SMALL, tmp_path)
    again = cached_gguf(demo_model, SMALL, tmp_path)
    assert again.cached and not first.cached
    assert again.pp is not None and first.pp is not None and again.pp.samples == first.pp.samples
    other = cached_gguf(demo_model, SpeedOptions(prompt=32, gen=0, repeat=1), tmp_path)
    assert not other.cached and other.tg is None
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_damaged_cache_entry_is_measured_again(demo_model: Path, tmp_path: Path) -> None:
    cached_gguf(demo_model, SMALL, tmp_path)
    (entry,) = tmp_path.glob("*.json")
    entry.write_text("{not json")
    assert not cached_gguf(demo_model, SMALL, tmp_path).cached
    json.loads(entry.read_text())


def test_endpoint_streaming_against_llama_cpp_server(demo_model: Path, tmp_path: Path) -> None:
    with Engine(SERVER, str(demo_model), "demo", tmp_path, ctx=512) as engine:
        one = bench_endpoint("demo", engine.url, SMALL)
        two = bench_endpoint("demo", engine.url, SpeedOptions(prompt=64, gen=8, repeat=1, concurrency=2))
    assert one.tg is not None and one.ttft_s is not None and one.aggregate_tg is not None
    assert len(one.ttft_s.samples) == 2 and all(0 < t < 60 for t in one.ttft_s.samples)
    assert one.tg.mean > 0
    assert two.ttft_s is not None and len(two.ttft_s.samples) == 2  # two requests in the one repeat
    assert not engine.alive()


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"prompt": -1}, "--prompt"),
        ({"prompt": 0, "gen": 0}, "nothing to measure"),
        ({"repeat": 0}, "--repeat"),
        ({"threads": 0}, "--threads"),
        ({"ctx": 10}, "--ctx"),
        ({"concurrency": 0}, "--concurrency"),
    ],
)
def test_bad_options_are_refused(kwargs: dict, needle: str) -> None:
    with pytest.raises(QuantdropError, match=needle):
        SpeedOptions(**kwargs)


def test_cli_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    assert_clean_failure(run("speed", tmp_path / "missing.gguf"), "missing.gguf")
    assert_clean_failure(run("speed", "--endpoint", "no-equals-sign"), "LABEL=URL")
    assert_clean_failure(run("speed"), "nothing to measure")
    with pytest.raises(QuantdropError, match="nothing to measure"):
        speed([])
