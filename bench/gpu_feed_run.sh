#!/usr/bin/env bash
# GPU acceptance run for the training feed (issue 6), prepared but not yet run on a GPU:
# build a corpus with the refinery (real pages, web-en with 16-row row groups), then train the
# example GPT on it for 300 steps through refinery.corpus.dataset, printing tokens/s and the
# fraction of step time spent waiting for data (acceptance: under 5%).
#   bench/gpu_feed_run.sh            PY=python interpreter with CUDA torch + refinery deps
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
STORE=${STORE:-/tmp/feed-store}
DATA=${DATA:-../shared/data/warc}
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available())'
if [[ -z "$(ls "$STORE/manifest" 2>/dev/null)" ]]; then
  inputs=("$DATA/real_pages" "$DATA/dolma_wget")
  [[ -d "$DATA/real_pages" ]] || { "$PY" -m refinery.cli sample --out /tmp/feed-sample; inputs=(/tmp/feed-sample); }
  "$PY" -m refinery.cli run -q --pipeline examples/web-en-feed.yaml "${inputs[@]}" --store "$STORE"
fi
"$PY" -m refinery.cli store ls --store "$STORE"
"$PY" examples/pretrain_gpt.py --store "$STORE" --steps 300 --workers 8 --batch-size 64 --seq-len 512 \
  --layers 12 --d-model 768 --heads 12 --log-every 25 --warmup-steps 20 --out /tmp/feed-run "$@"
