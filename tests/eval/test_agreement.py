"""Answer agreement (quantdrop.agreement) against hand counts on a fixture store, and the clustered
bootstrap's coverage on simulated binomial data whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest

from quantdrop.agreement import agreement, cluster_bootstrap_ci, self_agreement
from quantdrop.eval.evidence import evidence_table
from quantdrop.eval.store import Store
from quantdrop.eval.types import Completion, Score

GGUF = {"kind": "gguf", "name": "m.gguf", "size": 1, "hash": "abc"}

# item -> per sample (extracted letter, status); the gold answer of every item is "A".
BASE = {
    "q1": [("A", "correct"), ("A", "correct")],
    "q2": [("B", "wrong"), ("C", "wrong")],
    "q3": [("A", "correct"), ("B", "wrong")],
    "q4": [(None, "unextracted"), ("A", "correct")],
}
VARIANT = {
    "q1": [("A", "correct"), ("D", "wrong")],  # agree, flip right->wrong
    "q2": [("B", "wrong"), ("A", "correct")],  # agree (same wrong answer), flip wrong->right
    "q3": [("C", "wrong"), ("B", "wrong")],  # flip right->wrong, agree
    "q4": [(None, "unextracted"), ("A", "correct")],  # agree (both unextracted), agree
}
# Hand count: agreeing pairs q1/0, q2/0, q3/1, q4/0, q4/1 = 5 of 8; right->wrong q1/1, q3/0 = 2;
# wrong->right q2/1 = 1. The baseline's own sample pairs: q1 equal, q2, q3, q4 not: 1 of 4.
HAND_SHARE, HAND_R2W, HAND_W2R, HAND_FLOOR = 100 * 5 / 8, 2, 1, 100 * 1 / 4


def _fill(store: Store, label: str, answers: dict, fingerprint: dict) -> None:
    run = store.open_run(
        label=label,
        benchmark="mmlu",
        title="MMLU",
        full_size=14042,
        weight=1.0,
        fingerprint=fingerprint,
        protocol={"samples": 2},
    )
    store.add_items(run, list(answers))
    for item, per_sample in answers.items():
        for k, (letter, status) in enumerate(per_sample):
            store.put_response(run, item, k, k, Completion(text=f"Answer: {letter}"))
            store.put_score(run, item, k, Score(float(status == "correct"), status, letter))


@pytest.fixture
def fixture_store(tmp_path):
    path = tmp_path / "eval.sqlite"
    with Store(path) as st:
        _fill(st, "F16", BASE, GGUF)
        _fill(st, "Q4_K_M", VARIANT, GGUF | {"hash": "def"})
        failed = st.runs()[1].id  # a failed request is no answer: it must not count as a disagreement
        st.put_response(failed, "q5", 0, 0, Completion(finish_reason="error", error="HTTP 500"))
    return path


def test_agreement_equals_the_hand_count_on_a_store(fixture_store):
    ev = evidence_table(fixture_store, "F16")[("mmlu", "Q4_K_M")]
    assert ev.agreement.pairs == 8 and ev.agreement.items == 4
    assert ev.agreement.share.value == pytest.approx(HAND_SHARE)
    assert (ev.agreement.right_to_wrong, ev.agreement.wrong_to_right) == (HAND_R2W, HAND_W2R)
    assert ev.noise_floor.value == pytest.approx(HAND_FLOOR)
    assert ev.agreement.share.low <= HAND_SHARE <= ev.agreement.share.high
    assert ev.too_few_items  # 4 items: no verdict either way


def test_identical_answers_agree_fully_and_flip_nothing():
    answers = {("q", k): ("A", True) for k in range(3)}
    got = agreement(answers, dict(answers))
    assert (got.share.value, got.share.low, got.share.high, got.flips) == (100.0, 100.0, 100.0, 0)
    assert np.isnan(self_agreement({("q", 0): ("A", True)}).value)  # one sample: no noise floor


def test_cluster_bootstrap_covers_the_truth_95_percent_of_the_time():
    """1,000 simulated benchmarks: 200 items with item difficulties from Beta(2, 2) (truth 50%), 4 samples
    each. Samples of one item are correlated; an interval that ignored the clustering would cover less."""
    rng = np.random.default_rng(20240712)
    n_sims, n_items, n_samples, truth = 1000, 200, 4, 50.0
    p = rng.beta(2, 2, size=(n_sims, n_items, 1))
    data = (rng.random((n_sims, n_items, n_samples)) < p).astype(float)
    covered = 0
    for s in range(n_sims):
        ci = cluster_bootstrap_ci(data[s], n_boot=1000, seed=s)
        covered += ci.low <= truth <= ci.high
    assert 0.93 <= covered / n_sims <= 0.97, covered


def test_results_show_the_evidence_and_the_plan_for_a_target_drop(fixture_store, capsys):
    from quantdrop.cli import main as cli
    from quantdrop.errors import QuantdropError
    from quantdrop.eval.results import results_table

    assert cli(["results", "--store", str(fixture_store), "--baseline", "F16", "--target-drop", "1"]) == 0
    out = capsys.readouterr().out
    rows = {
        c[0]: c[1:]
        for c in ([x.strip() for x in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| "))
    }
    assert rows["Accuracy drop"] == ["–", "too few items"]  # not a bare "25.00%" from 4 items
    assert rows["MMLU (4/14042): agreement %"][1].startswith("62.5 [")
    assert rows["MMLU (4/14042): agreement %"][0].startswith("25.0 [")  # the noise floor, F16's column
    assert rows["MMLU (4/14042): flips right->wrong / wrong->right"] == ["–", "2 / 1"]
    assert rows["MMLU (4/14042): power"] == ["–", "too few items (4)"]
    assert rows["MMLU (4/14042): to detect"][1].endswith("samples")
    with pytest.raises(QuantdropError, match="--target-drop needs --baseline"):
        results_table(fixture_store, target_drop=1.0)
