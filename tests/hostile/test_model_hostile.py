"""Hostile inputs on the model side (issue 10: quantize, recipes, plan, proxies, study), end to end
through the CLI: exit code, one line naming the file or field, no traceback, nothing left behind.
Tiny synthetic and crafted GGUFs keep the whole file to seconds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from quantdrop.ggufio import read_header
from tests.hostile.cli import assert_clean_failure, listing, run
from tests.quantize.crafted import Tensor, good_tensors, write_crafted
from tests.synthetic_gguf import write_synthetic

CONFIGS = Path(__file__).parents[1] / "fixtures" / "configs"
SLOW_PATTERN = "(.*){1,32000}[bc]"  # Python's re: minutes against one tensor name


@pytest.fixture(scope="module")
def src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("src") / "src.gguf", "llama", n_layer=2, tokenizer=True)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def quantize(src: Path, dst: Path, *extra: str) -> object:
    return run("quantize", src, dst, "--recipe", "Q8_0", *extra)


# ------------------------------------------------------------------------- item 0: requantize ours


def test_requantizing_our_own_output_writes_each_key_once(src: Path, out: Path) -> None:
    q8, q4 = out / "q8.gguf", out / "q4.gguf"
    assert quantize(src, q8).returncode == 0
    proc = run("quantize", q8, q4, "--recipe", "Q4_K_M", "--allow-requantize")
    assert proc.returncode == 0, proc.stderr
    header = read_header(q4)  # refuses a repeated key, as llama.cpp does
    assert header.fields["quantdrop.recipe.name"] == "Q4_K_M"
    assert sorted(listing(out)) == ["q4.gguf", "q8.gguf"]


# ------------------------------------------------------------------------- item 4: corrupt sources


def _defect(i: int, **change: object) -> list[Tensor]:
    tensors = good_tensors()
    for key, value in change.items():
        setattr(tensors[i], key, value)
    return tensors


@pytest.mark.parametrize(
    ("tensors", "needle"),
    [
        (_defect(3, name="blk.0.attn_q.weight"), "tensor name 'blk.0.attn_q.weight' appears twice"),
        (_defect(1, offset=4104), "tensor 'output_norm.weight' has data offset 4104, not a multiple"),
        (_defect(3, offset=0), "tensor 'blk.0.ffn_down.weight' (offset 0) overlaps"),
        (_defect(2, shape=(32, 0)), "tensor 'blk.0.attn_q.weight' has a dimension of 0"),
        (_defect(1, type=5), "tensor 'output_norm.weight' has an unknown ggml type (5)"),
    ],
    ids=["duplicate-name", "misaligned", "shared-offset", "zero-dim", "bad-type"],
)
def test_corrupt_source_is_refused_before_any_work(tmp_path: Path, out: Path, tensors: list, needle: str) -> None:
    bad = write_crafted(tmp_path / "bad.gguf", tensors)
    assert_clean_failure(quantize(bad, out / "o.gguf"), str(bad), needle, folder=out)


# ------------------------------------------------------------------------- item 5: --force targets


@pytest.mark.parametrize("how", ["itself", "symlink", "hardlink"])
def test_force_onto_the_source_is_refused(src: Path, tmp_path: Path, how: str) -> None:
    copy = tmp_path / "s" / "model.gguf"
    copy.parent.mkdir()
    copy.write_bytes(src.read_bytes())
    target = {"itself": copy, "symlink": copy.with_name("l.gguf"), "hardlink": copy.with_name("h.gguf")}[how]
    if how == "symlink":
        target.symlink_to(copy)
    elif how == "hardlink":
        os.link(copy, target)
    before, data = listing(copy.parent), copy.read_bytes()
    assert_clean_failure(
        quantize(copy, target, "--force"), str(target), "is the source", folder=copy.parent, before=before
    )
    assert copy.read_bytes() == data


@pytest.mark.parametrize(
    ("kind", "needle"), [("fifo", "a FIFO"), ("devnull", "a character device"), ("dir", "a directory")]
)
def test_force_onto_a_special_file_is_refused(src: Path, out: Path, kind: str, needle: str) -> None:
    target = out / "o.gguf"
    {"fifo": lambda: os.mkfifo(target), "devnull": lambda: target.symlink_to("/dev/null"), "dir": target.mkdir}[kind]()
    before = listing(out)
    assert_clean_failure(quantize(src, target, "--force"), str(target), needle, folder=out, before=before)


# ------------------------------------------------------------------------- item 6: debris


def test_stale_temporary_of_a_dead_run_is_swept(src: Path, out: Path) -> None:
    from tests.quantize.test_interrupt import dead_pid

    (out / f".o.gguf.{dead_pid()}.tmp").write_bytes(b"half a model")
    assert quantize(src, out / "o.gguf").returncode == 0
    assert listing(out) == {"o.gguf"}


# ------------------------------------------------------------------------- items 8, 11: recipes


def _recipe(tmp_path: Path, text: str, name: str = "r.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("verb", ["quantize", "recipes"])
def test_backtracking_pattern_returns_within_seconds(src: Path, tmp_path: Path, out: Path, verb: str) -> None:
    recipe = _recipe(tmp_path, f'default = "q4_k"\n[[rules]]\npattern = \'{SLOW_PATTERN}\'\ntype = "q8_0"\n')
    args = (
        ["quantize", src, out / "o.gguf", "--recipe", recipe, "--dry-run"]
        if verb == "quantize"
        else ["recipes", "show", recipe, "--model", src]
    )
    t0 = time.monotonic()
    proc = run(*args, timeout=30)
    assert time.monotonic() - t0 < 5
    assert_clean_failure(proc, f"{recipe}: rule 1: pattern", "simplify it", folder=out)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (
            'default = "q4_k"\n[[rules]]\npattern = "ffn"\ntype = "q8_0"\nlayers = { start = "n/0" }\n',
            "bad layer bound start='n/0'",
        ),
        (
            'default = "q4_k"\n[[rules]]\npattern = "ffn"\ntype = "q8_0"\nlayers = { every = 2, offset = "abc" }\n',
            "offset must be an integer >= 0 (got 'abc')",
        ),
        (
            'default = "q4_k"\n[[rules]]\npattern = "ffn"\ntype = "q8_0"\nlayers = { first_moe = "two" }\n',
            "first_moe must be an integer >= 0 (got 'two')",
        ),
        ('default = "q4_k"\nversion = "two"\n', "version must be an integer >= 1 (got 'two')"),
    ],
    ids=["start-n/0", "offset-abc", "first_moe-two", "version-two"],
)
def test_bad_recipe_field(src: Path, tmp_path: Path, out: Path, text: str, needle: str) -> None:
    recipe = _recipe(tmp_path, text)
    assert_clean_failure(run("quantize", src, out / "o.gguf", "--recipe", recipe), str(recipe), needle, folder=out)


def test_yaml_layers_not_a_table(src: Path, tmp_path: Path, out: Path) -> None:
    recipe = _recipe(tmp_path, "default: q4_k\nrules:\n  - {pattern: ffn, type: q8_0, layers: 5}\n", "r.yaml")
    assert_clean_failure(
        run("quantize", src, out / "o.gguf", "--recipe", recipe),
        str(recipe),
        "rule 1: layers = 5 is not a layer selector",
        folder=out,
    )


def test_binary_toml(src: Path, tmp_path: Path, out: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_bytes(bytes(range(256)))
    assert_clean_failure(run("quantize", src, out / "o.gguf", "--recipe", recipe), str(recipe), "not UTF-8", folder=out)


def test_imatrix_counts_of_the_wrong_length(src: Path, tmp_path: Path, out: Path) -> None:
    import numpy as np
    from gguf import GGUFWriter

    imatrix = tmp_path / "imatrix.gguf"
    w = GGUFWriter(imatrix, "imatrix")
    w.add_array("imatrix.datasets", ["hostile"])
    w.add_uint32("imatrix.chunk_count", 1)
    w.add_uint32("imatrix.chunk_size", 512)
    w.add_tensor("blk.0.ffn_down.weight.in_sum2", np.ones(512, np.float32))
    w.add_tensor("blk.0.ffn_down.weight.counts", np.ones(3, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    assert_clean_failure(
        run("quantize", src, out / "o.gguf", "--recipe", "Q4_K_M", "--imatrix", imatrix),
        str(imatrix),
        "blk.0.ffn_down.weight has 512 sums for 3 counts",
        folder=out,
    )


@pytest.mark.parametrize("threads", ["0", "-1", "10000"])
def test_threads_out_of_range(src: Path, out: Path, threads: str) -> None:
    assert_clean_failure(
        quantize(src, out / "o.gguf", "--threads", threads), f"--threads {threads}", "expected 1 to 512", folder=out
    )


# ------------------------------------------------------------------------- items 9, 11, 12: plan


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"num_hidden_layers": 1_000_000_000}, "num_hidden_layers = 1000000000"),
        ({"num_hidden_layers": -4}, "num_hidden_layers = -4"),
        ({"num_hidden_layers": "thirty-two"}, 'num_hidden_layers = "thirty-two"'),
        ({"num_hidden_layers": 31.5}, "num_hidden_layers = 31.5"),
        ({"num_attention_heads": 0}, "num_attention_heads = 0"),
        ({"hidden_size": 0}, "hidden_size = 0"),
        ({"num_key_value_heads": 5}, "num_key_value_heads = 5 does not divide num_attention_heads = 32"),
    ],
    ids=["1e9-layers", "-4", "thirty-two", "31.5", "zero-heads", "hidden-0", "5-kv-heads"],
)
def test_nonsense_config(tmp_path: Path, change: dict, needle: str) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({**json.loads((CONFIGS / "llama-3.2-1b.json").read_text()), **change}))
    t0 = time.monotonic()
    assert_clean_failure(run("plan", config), str(config), needle, folder=tmp_path, before={"config.json"})
    assert time.monotonic() - t0 < 10


# --devices 100000000xH100-80G, --headroom-gib nan, --overhead-gib=-inf: tests/plan (the plan helper's)


# ------------------------------------------------------------------------- item 11: study, proxies


def test_study_out_is_a_file(src: Path, tmp_path: Path) -> None:
    target = tmp_path / "results"
    target.write_text("mine")
    assert_clean_failure(
        run("study", src, "--out", target, "--skip-eval"), str(target), "is a file", folder=tmp_path, before={"results"}
    )
    assert target.read_text() == "mine"


def test_study_threads_zero(src: Path, tmp_path: Path) -> None:
    assert_clean_failure(run("study", src, "--out", tmp_path / "s", "--threads", "0"), "--threads 0", folder=tmp_path)


def test_proxies_cache_dir_is_a_file(src: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.write_text("x")
    text = tmp_path / "t.txt"
    text.write_text("words " * 200)
    assert_clean_failure(
        run("proxies", src, src, "--text", text, "--cache-dir", cache),
        str(cache),
        "is a file, not a folder",
        folder=tmp_path,
        before={"cache", "t.txt"},
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_output_folder(src: Path, out: Path) -> None:
    out.chmod(0o555)
    try:
        assert_clean_failure(quantize(src, out / "o.gguf"), str(out), folder=out)
    finally:
        out.chmod(0o755)


def test_output_under_a_file(src: Path, tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    assert_clean_failure(
        quantize(src, tmp_path / "f" / "o.gguf"),
        str(tmp_path / "f"),
        "no such directory",
        folder=tmp_path,
        before={"f"},
    )


def test_gguf_with_a_billion_blocks(tmp_path: Path) -> None:
    from gguf import GGUFValueType

    from quantdrop.ggufio import pack_field
    from tests.quantize.crafted import llama_fields

    fields = [
        pack_field("llama.block_count", 10**9, GGUFValueType.UINT32) if f[8:25] == b"llama.block_count" else f
        for f in llama_fields()
    ]
    bad = write_crafted(tmp_path / "bad.gguf", good_tensors(), fields=fields)
    t0 = time.monotonic()
    assert_clean_failure(
        run("plan", bad, "--recipe", "Q8_0"),
        str(bad),
        "llama.block_count = 1000000000",
        folder=tmp_path,
        before={"bad.gguf"},
    )
    assert time.monotonic() - t0 < 10
