"""The reference log-probs are cached and resume after an interruption; the `proxies` CLI verb."""

from __future__ import annotations

import json
from importlib import import_module

import pytest

from quantdrop.cli import main as cli

px = import_module("quantdrop.proxies")  # the module; `quantdrop.proxies` is the function

N_CTX, CHUNKS = 64, 3


@pytest.mark.slow
def test_interrupted_reference_pass_resumes_to_the_same_file(reference_gguf, tmp_path, monkeypatch) -> None:
    fresh = px.reference_log_probs(reference_gguf, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=tmp_path / "a", progress=False)
    real = px.ChunkLogits.logits
    calls = []

    def interrupted(self, chunk):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the second chunk
        return real(self, chunk)

    monkeypatch.setattr(px.ChunkLogits, "logits", interrupted)
    with pytest.raises(KeyboardInterrupt):
        px.reference_log_probs(reference_gguf, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=tmp_path / "b", progress=False)
    partial = list((tmp_path / "b").glob("*.partial"))
    assert len(partial) == 1 and not list((tmp_path / "b").glob("*.logprobs"))
    # a torn write of the next chunk must be dropped, not reused
    with partial[0].open("ab") as f:
        f.write(b"\x01" * 1000)

    calls.clear()
    monkeypatch.setattr(px.ChunkLogits, "logits", lambda self, chunk: (calls.append(1), real(self, chunk))[1])
    resumed = px.reference_log_probs(
        reference_gguf, n_ctx=N_CTX, chunks=CHUNKS, cache_dir=tmp_path / "b", progress=False
    )
    assert len(calls) == CHUNKS - 1  # the finished chunk is not redone
    assert resumed.path.read_bytes() == fresh.path.read_bytes()
    assert not list((tmp_path / "b").glob("*.partial"))


@pytest.mark.slow
def test_results_and_reference_are_reused(reference_gguf, variants, tmp_path, monkeypatch) -> None:
    first = px.proxies(reference_gguf, [variants["Q4_K_M"]], ctx=N_CTX, chunks=2, cache_dir=tmp_path, progress=False)

    def no_model(*args, **kwargs):
        raise AssertionError("nothing should be recomputed")

    monkeypatch.setattr(px, "ChunkLogits", no_model)
    again = px.proxies(reference_gguf, [variants["Q4_K_M"]], ctx=N_CTX, chunks=2, cache_dir=tmp_path, progress=False)
    assert again == first


@pytest.mark.slow
def test_cached_results_need_no_reference_file(reference_gguf, variants, tmp_path, monkeypatch) -> None:
    """A study committed without its (large) reference log-probs resumes without recomputing them; a
    new variant brings the reference pass back."""
    pair = [variants["Q4_K_M"], variants["Q8_0"]]
    first = px.proxies(reference_gguf, pair, ctx=N_CTX, chunks=2, cache_dir=tmp_path, progress=False)
    for f in tmp_path.glob("*.logprobs"):
        f.unlink()
    real = px.ChunkLogits
    monkeypatch.setattr(px, "ChunkLogits", lambda *a, **k: pytest.fail("the reference was run again"))
    assert (
        px.proxies(reference_gguf, pair[::-1], ctx=N_CTX, chunks=2, cache_dir=tmp_path, progress=False) == first[::-1]
    )
    monkeypatch.setattr(px, "ChunkLogits", real)
    third = px.proxies(
        reference_gguf, [*pair, variants["Q2_K"]], ctx=N_CTX, chunks=2, cache_dir=tmp_path, progress=False
    )
    assert third[:2] == first and list(tmp_path.glob("*.logprobs"))


@pytest.mark.slow
def test_cli_json(reference_gguf, variants, tmp_path, capsys) -> None:
    code = cli(
        [
            "proxies",
            str(reference_gguf),
            str(variants["Q8_0"]),
            str(variants["Q2_K"]),
            "--ctx",
            str(N_CTX),
            "--chunks",
            "2",
            "--cache-dir",
            str(tmp_path),
            "--json",
        ]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["variant"] for r in rows] == ["Q8_0.gguf", "Q2_K.gguf"]
    assert rows[0]["n_tokens"] == 2 * (N_CTX - 1 - N_CTX // 2)
    assert rows[0]["kld_mean"] < rows[1]["kld_mean"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.gguf", "also-missing.gguf"], "model file not found: missing.gguf"),
        (["{not_gguf}", "{not_gguf}"], "is not a GGUF file"),
        (["{ref}", "{ref}", "--ctx", "15"], "--ctx must be an even number >= 16"),
        (["{ref}", "{ref}", "--text", "{short}"], "the text tokenizes to"),
        (["{ref}", "{ref}", "--text", "{bad_jsonl}"], "expected a JSON object with a 'text' field"),
    ],
)
def test_cli_errors_are_one_line(reference_gguf, tmp_path, capsys, args, message) -> None:
    (tmp_path / "x.txt").write_text("not a model")
    (tmp_path / "short.txt").write_text("Only a few words here.")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n[1, 2]\n')
    paths = {
        "not_gguf": tmp_path / "x.txt",
        "ref": reference_gguf,
        "short": tmp_path / "short.txt",
        "bad_jsonl": tmp_path / "bad.jsonl",
    }
    argv = ["proxies", *[a.format(**paths) for a in args], "--cache-dir", str(tmp_path / "cache")]
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
    assert not list((tmp_path / "cache").glob("*")) if (tmp_path / "cache").exists() else True
