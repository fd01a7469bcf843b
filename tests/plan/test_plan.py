"""`quantdrop plan` against the paper's Table 1 and section 4.4, its own quantizer, and bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from gguf import GGUFReader

from quantdrop.cli import main as cli
from quantdrop.devices import GiB, known_devices
from quantdrop.plan import plan, size_label

CONFIGS = Path(__file__).parents[1] / "fixtures" / "configs"
R1 = CONFIGS / "deepseek-r1.json"

# Table 1 of arXiv 2505.02390 (DeepSeek-R1): size (GiB rounded up, as `ls -h` prints), bits per weight,
# memory at 32K context in total and per GPU (8 GPUs). The paper's per-GPU column is its total / 8
# (487 / 8 = 60.9 -> 61, 469 / 8 = 58.6 -> 59), and its "GB" are GiB: read as 10^9 bytes, Q4_K_M's
# 568 GB = 529.0 GiB would not even hold its weights and f16 KV cache (529.3 GiB), let alone eight
# runtime contexts and compute buffers; as GiB they leave 38.7 GiB, 4.8 GiB per GPU.
TABLE_1 = {
    "Q4_K_M": ("377G", 4.82, 568, 71),
    "Q3_K_M": ("298G", 3.81, 487, 61),
    "DQ3_K_M": ("281G", 3.59, 469, 59),
    "Q2_K_L": ("228G", 2.91, 415, 52),
    "UD-Q2_K_XL": ("212G", 2.70, 398, 50),
}
# Table 6 of the paper: average scores of the R1 variants (the accuracy behind section 4.4)
TABLE_6_R1 = {"Q4_K_M": 85.24, "Q3_K_M": 84.28, "DQ3_K_M": 85.53, "UD-Q2_K_XL": 85.02}


def test_table_1_sizes_and_bits_per_weight() -> None:
    p = plan(R1, list(TABLE_1), mla_split=False, ctx=32768, kv_layout="full")
    for r in p.recipes:
        size, bpw, _, _ = TABLE_1[r.recipe]
        assert size_label(r.size_bytes) == size
        assert round(r.bits_per_weight, 2) == bpw


def test_table_1_memory_at_32k_on_8_gpus() -> None:
    """Reproduced with llama.cpp as it ran DeepSeek in early 2025: the KV cache keeps every head (full
    layout, f16) and, flash attention being unavailable for K/V heads of 192/128, the compute buffer
    holds the f32 KQ scores of one ubatch; a ubatch of 256 tokens matches (at 512 memory is 6-9%
    higher, with today's flash attention 5-7% lower)."""
    p = plan(
        R1,
        list(TABLE_1),
        mla_split=False,
        ctx=32768,
        kv_layout="full",
        devices="8xH100-80G",
        flash_attn=False,
        n_ubatch=256,
    )
    assert p.kv_layout == "full"
    for r in p.recipes:
        _, _, total, per_gpu = TABLE_1[r.recipe]
        fit = r.devices[0]
        assert fit.count == 8
        assert fit.total_bytes / GiB == pytest.approx(total, rel=0.03)
        assert fit.total_bytes / fit.count / GiB == pytest.approx(per_gpu, rel=0.03)
        assert fit.fits


def test_the_papers_gb_are_gib() -> None:
    """Beyond weights and the f16 KV cache, Q4_K_M's 568 "GB" leave room for eight runtime contexts and
    compute buffers only if they are GiB: as 10^9 bytes they would not even hold weights and cache."""
    p = plan(R1, "Q4_K_M", mla_split=False, ctx=32768, kv_layout="full", devices="8xH100-80G")
    r = p.recipes[0]
    weights_and_kv = r.size_bytes + r.kv_cache_bytes
    contexts = 8 * known_devices()["H100-80G"].overhead_bytes
    assert 568 * 10**9 - weights_and_kv < contexts
    assert 568 * GiB - weights_and_kv > contexts


def test_recommendation_reproduces_section_4_4() -> None:
    """Q4_K_M or DQ3_K_M on 8x80 GB; DQ3_K_M, not Q4_K_M, on 8 Ascend 910B of 64 GB."""
    p = plan(
        R1,
        list(TABLE_1),
        mla_split=False,
        ctx=32768,
        kv_layout="full",
        devices="8xH100-80G,8xA100-80G,8x910B-64G",
        accuracy=TABLE_6_R1,
    )
    h100, a100, ascend = p.recommendation
    for rec in (h100, a100):
        assert rec.recipe in ("Q4_K_M", "DQ3_K_M")
        assert {"Q4_K_M", "DQ3_K_M"} <= {rec.recipe, *rec.alternatives}
        assert {"Q4_K_M", "DQ3_K_M"} <= set(rec.fits)
    assert ascend.recipe == "DQ3_K_M"
    assert "Q4_K_M" not in ascend.fits
    assert "Q4_K_M" in ascend.reason and "does not fit" in ascend.reason


def test_without_accuracy_the_most_bits_that_fit_win() -> None:
    p = plan(R1, list(TABLE_1), mla_split=False, kv_layout="full", devices="8xH100-80G,8xRTX4090-24G")
    big, small = p.recommendation
    assert big.recipe == "Q4_K_M"
    assert small.recipe is None and "nothing fits" in small.reason


def test_ten_recipes_on_deepseek_r1_in_under_a_second() -> None:
    recipes = ["Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q4_K_S", "Q3_K_L", "Q3_K_M", "DQ3_K_M", "Q2_K_L", "UD-Q2_K_XL"]
    plan(R1, recipes[:1])  # imports and caches out of the way
    start = time.process_time()  # CPU time: a busy machine does not make it flaky
    p = plan(R1, recipes, devices="8xH100-80G,8x910B-64G")
    assert time.process_time() - start < 1.0
    assert len(p.recipes) == 10


def test_latent_layout_is_what_mla_split_gives() -> None:
    """--kv-layout auto follows --mla-split: MLA caches kv_lora_rank + qk_rope = 576 values per token."""
    p = plan(R1, "Q4_K_M", ctx=32768, mla_split=True)
    assert p.kv_layout == "latent"
    assert p.recipes[0].kv_cache_bytes == 61 * 32768 * 576 * 2
    full = plan(R1, "Q4_K_M", ctx=32768, mla_split=False)
    assert full.kv_layout == "full"
    assert full.recipes[0].kv_cache_bytes == 61 * 32768 * 128 * (192 + 128) * 2


def test_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli(
        [
            "plan",
            str(R1),
            "--recipes",
            "Q4_K_M,DQ3_K_M",
            "--mla-split",
            "no",
            "--kv-layout",
            "full",
            "--devices",
            "8xH100-80G,8x910B-64G",
            "--json",
        ]
    )
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["model"] and data["n_params"] == 671_026_419_200
    assert [r["recipe"] for r in data["recipes"]] == ["Q4_K_M", "DQ3_K_M"]
    for r in data["recipes"]:
        assert {
            "recipe",
            "size_bytes",
            "bits_per_weight",
            "kv_cache_bytes",
            "compute_buffer_bytes",
            "total_bytes",
            "devices",
        } <= set(r)
        assert r["total_bytes"] == r["size_bytes"] + r["kv_cache_bytes"] + r["compute_buffer_bytes"]
        for d in r["devices"]:
            assert {"spec", "count", "bytes_per_device", "fits"} <= set(d)
            assert d["count"] == 8 and d["bytes_per_device"] == max(d["per_device_bytes"])
    assert [rec["devices"] for rec in data["recommendation"]] == ["8xH100-80G", "8x910B-64G"]


def test_default_output_is_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["plan", str(CONFIGS / "qwen2.5-0.5b.json"), "--ctx", "4096", "--devices", "RTX4090-24G"]) == 0
    out = capsys.readouterr().out
    for recipe in ("Q8_0", "Q6_K", "Q5_K_M", "Q4_K_M", "Q3_K_M", "Q2_K"):
        assert f" {recipe} " in out
    assert "recommendation: 1xRTX4090-24G: Q8_0" in out


@pytest.mark.slow
def test_plan_equals_the_quantized_file_to_the_byte(demo_model: Path, tmp_path: Path) -> None:
    """The size planned from the source (GGUF or config.json) is the tensor data quantize writes."""
    from quantdrop.quantize import quantize

    for recipe in ("Q4_K_M", "Q3_K_M"):
        before = plan(demo_model, recipe).recipes[0].size_bytes
        from_config = plan(CONFIGS / "smollm2-135m.json", recipe).recipes[0].size_bytes
        out = tmp_path / f"{recipe}.gguf"
        quantize(demo_model, out, recipe=recipe)
        written = sum(int(t.n_bytes) for t in GGUFReader(out).tensors)
        assert before == written == from_config
        as_is = plan(out).recipes[0]  # a quantized GGUF is planned as it is
        assert as_is.recipe == "as-is" and as_is.size_bytes == written


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    code = cli(["plan", *args])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    return err


def test_unknown_architecture(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt_bigcode", "hidden_size": 8}))
    err = cli_error([str(tmp_path)], capsys)
    assert "gpt_bigcode" in err and "deepseek_v3" in err and "llama" in err


def test_config_missing_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = json.loads(R1.read_text())
    del config["num_hidden_layers"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert "'num_hidden_layers'" in cli_error([str(tmp_path / "config.json")], capsys)


def test_unknown_device(capsys: pytest.CaptureFixture[str]) -> None:
    err = cli_error([str(R1), "--recipes", "Q4_K_M", "--devices", "8xB200-192G"], capsys)
    assert "unknown device 'B200-192G'" in err and "H100-80G" in err


def test_device_smaller_than_its_overhead(capsys: pytest.CaptureFixture[str]) -> None:
    assert "runtime overhead" in cli_error([str(R1), "--recipes", "Q4_K_M", "--devices", "2x0.5G"], capsys)


@pytest.mark.parametrize("spec", ["8x", "8xH100-80G,,8x910B-64G", "0xH100-80G", "8xH100/80G"])
def test_malformed_devices_spec(spec: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert "malformed --devices spec" in cli_error([str(R1), "--recipes", "Q4_K_M", "--devices", spec], capsys)
