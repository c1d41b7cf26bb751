#!/usr/bin/env bash
# docs/results.md "MT10 architectures": MT-SAC, SAC + PTSL, CARE, CARE + PTSL and Soft Modularization
# with mtsac on MetaWorldMT10-v2 at a small budget: the PTSL README's settings through --preset ptsl (batch
# 1280, 400 x 3 or the parameter-matched widths, lr 3e-4, 10 evaluation episodes, CARE in mtrl's arrangement,
# mtrl's Soft Modularization), 6 epochs x 5000 env steps (3k per
# task) with 500 updates each (one update per vector step of the 10 envs, as mtrl); 3 epochs (15.5k env
# steps, 1,500 updates) is what the 2-core machine affords for 10 runs (about 0.3 s per MT-SAC update and
# 1.2 s per Soft Modularization update at batch 1280 on one core).
# Finished trials are skipped on re-launch.
# Usage: scripts/compare_mt10_architectures.sh [WORKERS]   Env: PYTHON, ROOT, SEEDS ("0 1"), BUDGET,
# SKIP (trial names to leave out, e.g. "mtsac_s0 sac_ptsl_s0").
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/run_dir.sh
source scripts/run_dir.sh
PYTHON=${PYTHON:-python}
ROOT=${ROOT:-data/mt10_architectures}
SEEDS=${SEEDS:-0 1}
BUDGET=${BUDGET:---n_epochs 3 --steps_per_epoch 1 --batch_size 5000 --gradient_steps_per_itr 500 --min_buffer_size 500}
workers=${1:-2}
mkdir -p "$ROOT"
trial() {  # trial NAME SEED ARCHITECTURE [FLAGS...]
  local name=$1 seed=$2 arch=$3; shift 3
  local dir="$ROOT/${name}_s$seed"
  case " $SKIP " in *" ${name}_s$seed "*) echo "skip: $name s$seed"; return 0;; esac
  if [ -f "$dir/final_evaluation.json" ]; then echo "done: $name s$seed"; return 0; fi
  fresh_run_dir "$dir" || return 0
  echo "start: $name s$seed"
  # shellcheck disable=SC2086
  "$PYTHON" run.py mtsac --env=MetaWorldMT10-v2 --preset ptsl --seed "$seed" --policy_architecture "$arch" \
    --Q_architecture "$arch" "$@" $BUDGET --num_threads 1 --log_dir "$dir" >"$dir.log" 2>&1
  echo "exit $?: $name s$seed"
}
export -f trial fresh_run_dir; export PYTHON ROOT BUDGET SKIP
for seed in $SEEDS; do  # --preset ptsl sizes each architecture as the PTSL paper (README, PTSL table)
  echo "mtsac $seed shared_onehot"
  echo "sac_ptsl $seed ptsl"
  echo "care $seed care"
  echo "care_ptsl $seed care_ptsl"
  echo "soft_modular $seed soft_modular"
done | xargs -P "$workers" -L 1 bash -c 'trial "$@"' _
