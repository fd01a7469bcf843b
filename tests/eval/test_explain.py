"""`quantdrop results --explain`: the extracted answer, the rule and the verdict of stored responses."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from quantdrop.cli import main
from quantdrop.eval.explain import parse_spec
from quantdrop.eval.store import Store
from quantdrop.eval.types import Completion, Score

DATA = Path(__file__).parent.parent / "fixtures" / "data"
CODE = Path(__file__).parent.parent / "fixtures" / "code" / "hub"
FP = {"kind": "openai", "model": "m", "endpoints": ["http://x"]}
MMLU_ITEM = "mmlu-4bd9a4db5f4b"  # the order of 2 in Z_6: B
OVERRIDDEN = "Order 3.\n\nAnswer: B\n\nAnswer choice A is incorrect since 2 + 2 = 4."


def put(st: Store, label: str, bench: str, item: str, texts: list[str], scores: list[Score]) -> None:
    run = st.open_run(
        label=label,
        benchmark=bench,
        title=bench,
        full_size=1,
        weight=1.0,
        fingerprint=FP,
        protocol={"samples": len(texts)},
    )
    st.add_items(run, [item])
    for k, (text, score) in enumerate(zip(texts, scores, strict=True)):
        st.put_response(run, item, k, k, Completion(text=text))
        st.put_score(run, item, k, score)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "eval.sqlite"
    with Store(path) as st:
        # scored by an older extractor that read the later "answer choice A" (as issue 9 found)
        put(
            st,
            "Q4",
            "mmlu",
            MMLU_ITEM,
            [OVERRIDDEN, "Answer: A or B"],
            [Score(0.0, "wrong", "A"), Score(0.0, "wrong", "A")],
        )
        put(
            st,
            "Q4",
            "math500",
            "test/intermediate_algebra/1994.json",
            ["\\boxed{q - p}. Wait, the sign is wrong: \\boxed{p - q}"],
            [Score(1.0, "correct", "p - q")],
        )
        solution = "def square_perimeter(a):\n    return 4 * a\n"
        put(
            st,
            "Q4",
            "mbpp",
            "Mbpp/17",
            [f"```python\n{solution}```\nExample usage:\n```python\nprint(square_perimeter(10))\n```\n"],
            [Score(0.0, "wrong", "x")],
        )
    return path


def explain(capsys: pytest.CaptureFixture[str], store: Path, *args: str) -> tuple[int, str, str]:
    code = main(["results", "--store", str(store), "--explain", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_choice_rule_and_a_changed_verdict(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = explain(capsys, store, f"mmlu/{MMLU_ITEM}", "--data-dir", str(DATA))
    assert code == 0
    first, second = out.split("[Q4 sample 1]")
    assert "rule:      answer-line\n" in first and "matched:   Answer: B" in first and "extracted: B" in first
    assert "verdict:   correct - answer-line (stored: wrong (A))" in first  # scored again: the rule differs
    assert "answer-line (hedge: two letters)" in second and "extracted: (nothing)" in second
    assert "verdict:   unextracted" in second


def test_without_data_the_stored_verdict_is_shown(
    store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    code, out, _ = explain(capsys, store, f"mmlu/{MMLU_ITEM}#0")
    assert code == 0 and "[Q4 sample 1]" not in out
    assert "verdicts are the stored ones" in out and "verdict:   wrong (A) (stored)" in out
    assert "extracted: B" in out
    assert "HF_HUB_OFFLINE" not in os.environ  # the offline switch is put back


def test_math_box_and_code_block(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = explain(capsys, store, "math500/test/intermediate_algebra/1994.json", "--data-dir", str(DATA))
    assert "rule:      last-box (2 boxes)" in out and "extracted: p - q" in out and "verdict:   correct" in out
    _, out, _ = explain(capsys, store, "mbpp/Mbpp/17", "--data-dir", str(CODE))
    assert "rule:      fenced block 1 of 2: defines square_perimeter" in out
    assert "    | def square_perimeter(a):" in out and "print(square_perimeter" not in out
    assert "verdict:   correct (stored: wrong (x))" in out
    assert "    | \n" not in out  # no empty last line


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("mmlu", "BENCHMARK/ITEM_ID"),
        ("mmlu/x#first", "must be a number"),
        ("gpqa/x", "no 'gpqa' runs"),
        ("mmlu/nope", "no stored response for mmlu item 'nope'"),
        (f"mmlu/{MMLU_ITEM}#7", "sample 7"),
    ],
)
def test_bad_specs_are_one_line_errors(
    store: Path, capsys: pytest.CaptureFixture[str], spec: str, message: str
) -> None:
    code, out, err = explain(capsys, store, spec)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_parse_spec_keeps_slashes_of_item_ids() -> None:
    assert parse_spec("math500/test/algebra/1.json#2") == ("math500", "test/algebra/1.json", 2)
    assert parse_spec("humaneval/HumanEval/0") == ("humaneval", "HumanEval/0", None)
