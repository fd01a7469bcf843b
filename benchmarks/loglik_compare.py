"""Compare lm-eval's per-question log-likelihoods and accuracy with quantdrop's (loglik_vs_lmeval.sh)."""

from __future__ import annotations

import glob
import json
import sqlite3
import sys
from pathlib import Path

import numpy as np


def main(out: str) -> None:
    rows = [json.loads(line) for line in Path(f"{out}/mmlu.jsonl").read_text().splitlines()]
    samples = sorted(glob.glob(f"{out}/lmeval/**/samples_mmlu_local_*.jsonl", recursive=True))[-1]
    theirs = {}
    for line in Path(samples).read_text().splitlines():
        s = json.loads(line)
        lls = [float(r[0][0]) for r in s["resps"]]
        theirs[rows[s["doc_id"]]["id"]] = (lls, float(s["acc"]))
    db = sqlite3.connect(f"{out}/quantdrop.sqlite")
    ours = {
        item: (json.loads(text)["logprobs"], value)
        for item, text, value in db.execute("SELECT item_id, text, value FROM responses")
    }
    common = sorted(set(theirs) & set(ours))
    diffs = np.array([np.max(np.abs(np.subtract(ours[i][0], theirs[i][0]))) for i in common])
    same_pred = sum(int(np.argmax(ours[i][0]) == np.argmax(theirs[i][0])) for i in common)
    acc_theirs = 100 * np.mean([theirs[i][1] for i in common])
    acc_ours = 100 * np.mean([ours[i][1] for i in common])
    print(
        f"questions {len(common)}: lm-eval acc {acc_theirs:.2f}, quantdrop acc {acc_ours:.2f}, "
        f"difference {acc_ours - acc_theirs:+.2f} points; same choice on {same_pred}/{len(common)}; "
        f"log-likelihood |diff| max {diffs.max():.4f}, median {np.median(diffs):.4f}"
    )


if __name__ == "__main__":
    main(sys.argv[1])
