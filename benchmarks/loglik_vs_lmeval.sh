#!/usr/bin/env bash
# `quantdrop eval --mode loglik` against lm-evaluation-harness on the same MMLU questions and prompt.
# lm-eval (in its own venv, LMEVAL_PY) runs its `gguf` model (its client, its request construction, its
# context/continuation split and its scoring) against benchmarks/echo_logprobs_server.py on 127.0.0.1 (llama.cpp
# logits; llama_cpp.server's echo log-probs are shifted for BOS-less vocabularies: see that file);
# quantdrop scores in-process. Both read the first N questions of quantdrop's MMLU set
# (exported to JSONL; a local task yaml with the mmlu template's doc_to_text/doc_to_choice).
# Usage: benchmarks/loglik_vs_lmeval.sh MODEL.gguf N OUTDIR   (env: PY, LMEVAL_PY)
set -euo pipefail
MODEL=$1; N=${2:-200}; OUT=${3:-/tmp/loglik-vs-lmeval}
PY=${PY:-python}; LMEVAL_PY=${LMEVAL_PY:-/tmp/lmeval-venv/bin/python}
HERE=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$OUT/tasks"
PYTHONPATH="$HERE/src" "$PY" - "$N" "$OUT/mmlu.jsonl" <<'PYEOF'
import json, sys
from quantdrop.eval.benchmarks import get_benchmark
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    for it in get_benchmark("mmlu").load()[:n]:
        f.write(json.dumps({"id": it.id, "question": it.meta["question"], "choices": it.meta["choices"],
                            "answer": "ABCD".index(it.target), "subject": it.meta["subject"]}) + "\n")
PYEOF
cat > "$OUT/tasks/mmlu_local.yaml" <<YAML
task: mmlu_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: $OUT/mmlu.jsonl
test_split: test
output_type: multiple_choice
doc_to_text: "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"
doc_to_choice: ["A", "B", "C", "D"]
doc_to_target: answer
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
YAML
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$PY" "$HERE/benchmarks/echo_logprobs_server.py" "$MODEL" "$PORT" > "$OUT/server.log" 2>&1 &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 120); do curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break; sleep 1; done
start=$(date +%s)
HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 "$LMEVAL_PY" -m lm_eval --model gguf --model_args "base_url=http://127.0.0.1:$PORT" \
  --tasks mmlu_local --include_path "$OUT/tasks" --log_samples --output_path "$OUT/lmeval" > "$OUT/lmeval.log" 2>&1
echo "lm-eval: $(( $(date +%s) - start )) s"
start=$(date +%s)
PYTHONPATH="$HERE/src" HF_DATASETS_OFFLINE=1 "$PY" -m quantdrop.cli eval "$MODEL" --bench mmlu --mode loglik \
  --limit "$N" --label ref --store "$OUT/quantdrop.sqlite" --no-progress > "$OUT/quantdrop.md"
echo "quantdrop: $(( $(date +%s) - start )) s"
PYTHONPATH="$HERE/src" "$PY" "$HERE/benchmarks/loglik_compare.py" "$OUT"
