"""A C-Eval test-split run (`--bench-options split=test`) writes the official submission file."""

from __future__ import annotations

import json
from pathlib import Path

from fake_openai import FakeOpenAI, Reply
from test_eval_cli import ROOT, quantdrop


def test_test_split_run_writes_the_submission_file(tmp_path: Path) -> None:
    store, submission = tmp_path / "eval.sqlite", tmp_path / "submission.json"
    with FakeOpenAI(lambda req: Reply(text="分析如下。\n答案：B")) as server:
        proc = quantdrop(
            "eval",
            "--endpoint",
            server.url,
            "--bench",
            "ceval",
            "--label",
            "X",
            "--store",
            str(store),
            "--data-dir",
            str(ROOT / "tests" / "fixtures" / "data"),
            "--no-progress",
            "--bench-options",
            "split=test",
            "--bench-options",
            f"submission={submission}",
        )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(submission.read_text())
    assert set(data) == {"computer_network"}
    assert data["computer_network"] and set(data["computer_network"].values()) == {"B"}
    # a test-split run is stored apart from val (weight 0, never averaged)
    again = quantdrop("results", "--store", str(store), "--format", "json")
    assert again.returncode == 0, again.stderr
