#!/usr/bin/env bash
# The dense fine-tuned baselines every compression is compared against (issue #2):
# minilm on MasakhaNER 1.0 hau, swa, yor, one model per language, seeded.
# Resumable: rerun the script and each run continues from its checkpoint.
set -euo pipefail
DATA=${NDOGO_DATA:-../shared/data/masakhaner}
for lang in ${LANGS:-hau swa yor}; do
  /usr/bin/time -v ndogo finetune --model minilm --data "$DATA" --lang "$lang" --out "runs/minilm-$lang" \
    --epochs 10 --lr 1e-4 --batch-size 16 --seed 42 2>&1 | tr '\r' '\n' | grep -v "step/s\]$" \
    > "runs/logs/minilm-$lang.log"
done
