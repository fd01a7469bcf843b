"""`--mode loglik`: lm-evaluation-harness's scoring rule, its prompts, the in-process llama.cpp log-likelihoods
against a one-batch computation with all logits, and the runner's protocol."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import numpy as np
import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks import get_benchmark
from quantdrop.eval.loglik import LoglikBenchmark, encode_pair, mmlu_context, predict
from quantdrop.eval.runner import evaluate
from quantdrop.eval.types import Completion, Item


def test_acc_acc_norm_and_acc_bytes_as_lm_eval():
    # lm_eval/api/task.py 1510-1512: argmax(lls), argmax(lls / len(choice)), argmax(lls / bytes(choice))
    choices = ["a cat", "a much longer answer", "é"]
    lls = [-4.0, -10.0, -3.9]
    assert predict(lls, choices, "acc") == 2
    assert predict(lls, choices, "acc_norm") == 1  # -10/20 = -0.5 beats -4/5 and -3.9/1
    assert predict([-2.2, -3.0], ["éé", "abc"], "acc_norm") == 1  # -1.1 vs -1.0 per character
    assert predict([-2.2, -3.0], ["éé", "abc"], "acc_bytes") == 0  # -0.55 vs -1.0 per byte
    assert predict([-1.0, -1.0, -2.0], choices) == 0  # ties go to the first, as np.argmax


def test_encode_pair_moves_the_contexts_trailing_space_and_splits_the_whole():
    tokenize = lambda text: [ord(ch) for ch in text.replace("  ", "\x01")]  # noqa: E731 (merges double spaces)
    ctx, cont = encode_pair(tokenize, "Answer: ", "A")
    assert ctx == tokenize("Answer:") and cont == tokenize(" A")
    ctx, cont = encode_pair(tokenize, "x ", " y")  # "x" + "  y": the merged token belongs to the continuation
    assert ctx == [ord("x")] and cont == [1, ord("y")]


def test_the_mmlu_prompt_is_lm_evals():
    item = Item(
        "q", "", "B", {"subject": "high_school_physics", "question": " What is 2+2? ", "choices": ["3", "4", "5", "6"]}
    )
    assert mmlu_context(item) == (
        "The following are multiple choice questions (with answers) about high school physics.\n\n"
        "What is 2+2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
    )
    bench = LoglikBenchmark(get_benchmark("mmlu"))
    assert bench.request(item)[1] == [" A", " B", " C", " D"]
    result = Completion(text=json.dumps({"logprobs": [-3.0, -1.0, -2.0, -9.0], "greedy": [0, 1, 0, 0]}))
    score = bench.score(item, result)
    assert (score.status, score.extracted, score.value) == ("correct", "B", 1.0)
    with pytest.raises(QuantdropError, match="multiple-choice"):
        LoglikBenchmark(get_benchmark("math500"))


def test_the_continuation_style_scores_the_answer_texts_as_lm_evals_mmlu_continuation():
    item = Item(
        "q",
        "",
        "B",
        {"subject": "anatomy", "question": "Which bone? ", "choices": ["the femur", "a rib", "the skull", "x"]},
    )
    bench = LoglikBenchmark(get_benchmark("mmlu"), norm="acc_norm", style="continuation")
    context, continuations = bench.request(item)
    assert context == "The following are questions (with answers) about anatomy.\n\nQuestion: Which bone?\nAnswer:"
    assert continuations == [" the femur", " a rib", " the skull", " x"]
    # acc_norm divides by the characters of the answer text: "a rib" (-2.0 / 5) beats "x" (-0.5 / 1)
    result = Completion(text=json.dumps({"logprobs": [-9.0, -2.0, -8.0, -0.5], "greedy": [0, 0, 0, 1]}))
    assert bench.score(item, result).extracted == "B"
    assert LoglikBenchmark(get_benchmark("mmlu"), style="continuation").score(item, result).extracted == "D"
    with pytest.raises(QuantdropError, match="loglik_style"):
        LoglikBenchmark(get_benchmark("mmlu"), style="cloze")


@pytest.fixture(scope="module", params=["letters", "continuation"])
def mmlu_items(request):
    bench = LoglikBenchmark(get_benchmark("mmlu"), style=request.param)
    return bench, bench.load()[:3]


def _count_decodes(backend, monkeypatch) -> list[int]:
    """The tokens of each llama_decode call the backend makes."""
    decodes: list[int] = []
    ctx = backend._llm._ctx
    decode = ctx.decode
    monkeypatch.setattr(ctx, "decode", lambda batch: (decodes.append(batch.batch.n_tokens), decode(batch))[1])
    return decodes


@pytest.mark.slow
def test_each_context_is_evaluated_once_and_each_choice_in_one_batch(demo_model, mmlu_items, monkeypatch):
    """The choices follow the same context: it is evaluated once and every choice's first token is read
    from that one distribution (a re-evaluation per choice gave each its own float rounding). The rest
    of a multi-token choice is one batch, never one decode per token."""
    pytest.importorskip("llama_cpp")
    from quantdrop.eval.backends.llama_cpp import LlamaCppBackend

    bench, items = mmlu_items
    backend = LlamaCppBackend(demo_model, max_tokens=1)
    backend.load(chat=False)
    decodes = _count_decodes(backend, monkeypatch)
    for item in items:
        decodes.clear()
        context, continuations = bench.request(item)
        result = asyncio.run(backend.loglik(context, continuations))
        lengths = [len(cont) for _, cont in (encode_pair(backend._tokenize, context, c) for c in continuations)]
        assert decodes[0] > 1  # the context (after what the KV cache kept from the previous item)
        assert decodes[1:] == [n - 1 for n in lengths if n > 1]
        assert len(set(json.loads(result.text)["logprobs"])) == 4  # four choices, four values


@pytest.mark.slow
def test_in_process_logliks_equal_a_one_batch_computation_with_all_logits(demo_model, mmlu_items):
    """Our path evaluates the shared context once (KV cache reused across items), then each choice's
    tokens; the reference evaluates context + choice in one batch with every position's logits."""
    llama_cpp = pytest.importorskip("llama_cpp")
    from quantdrop.eval.backends.llama_cpp import LlamaCppBackend

    bench, items = mmlu_items
    backend = LlamaCppBackend(demo_model, max_tokens=1)

    async def ours():
        return [await backend.loglik(*bench.request(it)) for it in items]

    got = [json.loads(c.text) for c in asyncio.run(ours())]
    ref = llama_cpp.Llama(model_path=str(demo_model), n_ctx=1024, logits_all=True, verbose=False)
    tok = lambda s: ref.tokenize(s.encode(), add_bos=True, special=True)  # noqa: E731
    for it, result in zip(items, got, strict=True):
        context, continuations = bench.request(it)
        want, want_greedy = [], []
        for cont in continuations:
            ce, ue = encode_pair(tok, context, cont)
            ref.reset()
            ref.eval(ce + ue)
            scores = ref.scores[: len(ce) + len(ue)].astype(np.float64)
            logp = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
            want.append(sum(logp[len(ce) - 1 + j, t] for j, t in enumerate(ue)))
            want_greedy.append(all(int(logp[len(ce) - 1 + j].argmax()) == t for j, t in enumerate(ue)))
        assert result["logprobs"] == pytest.approx(want, abs=0.05)  # batch shapes differ: float rounding
        gap = np.sort(want)[-1] - np.sort(want)[-2]
        if gap > 0.1:
            assert int(np.argmax(result["logprobs"])) == int(np.argmax(want))
        assert [bool(g) for g in result["greedy"]] == want_greedy


def test_runs_are_keyed_by_mode_and_never_mix(demo_model, tmp_path):
    store = tmp_path / "eval.sqlite"
    common = dict(bench=["mmlu"], label="F16", store=str(store), limit=3, progress=False)
    res = evaluate(str(demo_model), mode="loglik", **common)
    assert res[0].benchmark == "mmlu@loglik" and res[0].title == "MMLU (loglik) (3/14042)" and res[0].complete
    with sqlite3.connect(store) as db:
        protocol = json.loads(db.execute("SELECT protocol FROM runs").fetchone()[0])
    assert protocol["mode"] == "loglik" and protocol["samples"] == 1 and "temperature" not in protocol
    with pytest.raises(QuantdropError, match="one sample per item"):
        evaluate(str(demo_model), mode="loglik", samples=4, **common)
    with pytest.raises(QuantdropError, match="multiple-choice"):
        evaluate(str(demo_model), mode="loglik", **common | {"bench": ["math500"]})
    with pytest.raises(QuantdropError, match="--mode must be one of"):
        evaluate(str(demo_model), mode="sample", **common)


# -- endpoints that return prompt log-probabilities (tests/eval/fake_logprobs.py) -----------------
def _mmlu_dir(tmp_path, prefer: list[str]):
    rows = [
        {
            "question": f"Question {k}: prefer {letter}.",
            "subject": "",
            "choices": ["w", "x", "y", "z"],
            "answer": "ABCD".index("ABCD"[k % 4]),
        }
        for k, letter in enumerate(prefer)
    ]
    (tmp_path / "mmlu.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


@pytest.mark.parametrize("flavour", ["vllm", "llama-server"])
def test_loglik_through_endpoints_with_prompt_logprobs(tmp_path, flavour):
    from fake_logprobs import FakeLogprobs, next_logprobs, tokenize

    prefer = ["A", "B", "C", "D", "A", "A", "B", "D"]  # gold cycles A-D: all but items 5 and 6 right
    data = _mmlu_dir(tmp_path, prefer)
    with FakeLogprobs(flavour) as server:
        res = evaluate(
            endpoint=[server.url],
            bench=["mmlu"],
            mode="loglik",
            label="api",
            data_dir=str(data),
            store=str(tmp_path / "eval.sqlite"),
            progress=False,
        )
    assert res[0].mean == pytest.approx(100 * 6 / 8) and res[0].complete
    with sqlite3.connect(tmp_path / "eval.sqlite") as db:
        stored = dict(
            db.execute(
                "SELECT extracted, text FROM responses WHERE item_id IN (SELECT item_id FROM items WHERE position = 0)"
            )
        )
    context = "Question 0: prefer A.\nA. w\nB. x\nC. y\nD. z\nAnswer:"
    ids = tokenize(context)
    want = [next_logprobs(ids)[ord(" ") + 1] + next_logprobs([*ids, ord(" ") + 1])[ord(c) + 1] for c in "ABCD"]
    assert list(stored) == ["A"]
    assert json.loads(stored["A"])["logprobs"] == pytest.approx(want, abs=1e-9)


def test_an_endpoint_without_prompt_logprobs_is_refused_in_one_line(tmp_path):
    from fake_logprobs import FakeLogprobs

    data = _mmlu_dir(tmp_path, ["A"])
    with FakeLogprobs("none") as server, pytest.raises(QuantdropError) as err:
        evaluate(
            endpoint=[server.url],
            bench=["mmlu"],
            mode="loglik",
            label="api",
            data_dir=str(data),
            store=str(tmp_path / "eval.sqlite"),
            progress=False,
            retries=0,
        )
    message = str(err.value)
    assert "no prompt log-probabilities" in message and "--mode generate" in message and "\n" not in message
