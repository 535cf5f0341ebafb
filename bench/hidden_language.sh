#!/usr/bin/env bash
# The hidden-language check (issue #15): ndogo's whole flow, unchanged, on a language the project
# has never run, given only its directory (MasakhaNER layout: train.txt, dev.txt, test.txt):
# data stats -> the cost model's prediction from the committed atlas rows -> fine-tuning ->
# the atlas's post-training methods (configs/atlas-minilm-mnr2.toml) -> report -> recommend.
#
#   bench/hidden_language.sh ../shared/data/masakhaner2/ewe runs/hidden-ewe
#
# About 35 minutes on one core for ewe (3,505 training sentences): fine-tuning 5 epochs ~15 min,
# six compressions ~15 min. Resumable: run it again and finished steps are kept.
set -euo pipefail
src=${1:?usage: bench/hidden_language.sh LANG_DIR OUT}
out=${2:?usage: bench/hidden_language.sh LANG_DIR OUT}
lang=$(basename "$src")
ndogo=${NDOGO:-ndogo}
threads=${THREADS:-1}
data="$out/data"
mkdir -p "$data"
[ -d "$data/$lang" ] || cp -r "$src" "$data/$lang"   # only its directory: nothing else of its corpus

echo "== data stats" >&2
$ndogo data stats "$data" --lang "$lang" --tokenizer minilm | tee "$out/stats.txt"
echo "== what the atlas predicts before any compute" >&2
$ndogo recommend docs/bench/atlas-minilm.csv --lang "$lang" --max-f1-drop 1 --data "$data" \
    --rows-data ../shared/data/masakhaner | tee "$out/predicted.txt"
echo "== fine-tune (the step-c budget: 5 epochs)" >&2
# runs/minilm2-<lang> is where configs/atlas-minilm-mnr2.toml looks for a baseline to reuse
# (a finished run of the same settings is kept as it is; a killed one resumes from its checkpoint)
NDOGO_PROGRESS=0 $ndogo finetune --model minilm --data "$data" --lang "$lang" --out "runs/minilm2-$lang" \
    --epochs 5 --lr 1e-4 --batch-size 16 --seed 42 --threads "$threads"
echo "== the atlas's post-training methods" >&2
$ndogo sweep configs/atlas-minilm-mnr2.toml --data "$data" --lang "$lang" --out "$out/sweep" --resume --no-progress
echo "== report and recommend" >&2
$ndogo report "$out/sweep" --out "$out/report"
$ndogo recommend "$out/sweep" --lang "$lang" --max-f1-drop 1 | tee "$out/recommended.txt"
