#!/usr/bin/env bash
# After scripts/repro_jaco.sh: keep each finished run's progress.csv / variant.json /
# final_evaluation.json under $OUT (docs/results/jaco_arm/) and draw the figures of docs/results.md's
# Multistage Reacher section: success and StagesCompleted against env steps (mean and band over seeds),
# per-task grids, the Q-switch selection matrix, rliable summaries, and the first env steps at which
# each run reaches 80 % and 100 % success (<stem>_thresholds.csv), and the tables of docs/results.md
# (scripts/summarize_jaco.py: final/best success, stages and per-task results per run, the Q-switch
# selection matrix) in ${OUT}_tables.md.
# Usage: scripts/report_jaco.sh   Env: PYTHON (default python), ROOT (default data/repro_jaco_arm),
# OUT (default docs/results/jaco_arm; the dm_control-arm runs of commit 68f164b are docs/results/jaco_repro),
# PARTIAL=1 also keeps runs still going (their progress so far), for an interim report; a group mixing
# finished and running seeds is then drawn only over their shared step range.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
ROOT=${ROOT:-data/repro_jaco_arm}
OUT=${OUT:-docs/results/jaco_arm}
PARTIAL=${PARTIAL:-0}
mkdir -p "$OUT"
for dir in "$ROOT"/*/; do
  name=$(basename "$dir")
  [ -f "$dir/progress.csv" ] || { echo "no progress yet, left out: $name"; continue; }
  if [ ! -f "$dir/final_evaluation.json" ]; then
    [ "$PARTIAL" = 1 ] || { echo "not finished, left out: $name"; continue; }
    echo "not finished, kept so far: $name"
  fi
  mkdir -p "$OUT/$name"
  cp "$dir"/progress.csv "$dir"/variant.json "$OUT/$name/"
  [ ! -f "$dir/final_evaluation.json" ] || cp "$dir/final_evaluation.json" "$OUT/$name/"
done
"$PYTHON" run.py plot "$OUT" --out "$OUT.png" --thresholds 0.8,1.0
"$PYTHON" run.py plot "$OUT" --metric StagesCompleted --out "${OUT}_stages.png"
"$PYTHON" scripts/summarize_jaco.py "$OUT" > "${OUT}_tables.md"
