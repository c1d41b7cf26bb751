#!/usr/bin/env bash
# docs/results.md "Multistage Reacher" (paper §5.3, Figures 4 and 5): on JacoReachMT5-v1 (the original
# arm) with its preset, 0.5 M env steps (50k warm-up + 450 epochs x 1000 steps), seeds 0-2, evaluation
# every 5 epochs. Methods (METHODS): qmp_dnc (Separated + QMP), dnc_sac (Separated), dnc_reg (DnC
# regularisation only: dnc_sac --kl_coeff 0.001), qmp_uniform (QMP-Uniform), qmp_domain (QMP-Domain);
# optional: dnc_distill (DnC with distillation: --kl_coeff 0.001 --distillation_period 100) and shared
# (Shared: one SAC agent, `sac`).
# Re-running continues: finished trials are skipped, interrupted ones resumed from their snapshot
# (replay buffer and env states included, every 25 epochs and on SIGINT/SIGTERM).
# Usage: scripts/repro_jaco.sh [WORKERS]   (default 2; each worker uses one thread)
# Env: PYTHON (default python), ROOT (default data/repro_jaco_arm), SEEDS (default "0 1 2"), N_EPOCHS (451),
# KEPT (default docs/results/jaco_arm: a run finished there, as scripts/report_jaco.sh keeps it, is done),
# METHODS (default "qmp_dnc dnc_sac dnc_reg qmp_uniform qmp_domain"; a subset runs only those).
# The runs of commit 68f164b and before (dm_control's arm) are in data/repro_jaco / docs/results/jaco_repro.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/run_dir.sh
source scripts/run_dir.sh
PYTHON=${PYTHON:-python}
ROOT=${ROOT:-data/repro_jaco_arm}
SEEDS=${SEEDS:-0 1 2}
N_EPOCHS=${N_EPOCHS:-451}
KEPT=${KEPT:-docs/results/jaco_arm}
ALL_METHODS="qmp_dnc dnc_sac dnc_reg qmp_uniform qmp_domain dnc_distill shared"
METHODS=${METHODS:-qmp_dnc dnc_sac dnc_reg qmp_uniform qmp_domain}
for method in $METHODS; do
  case " $ALL_METHODS " in *" $method "*) ;; *) echo "METHODS: unknown $method; allowed: $ALL_METHODS" >&2; exit 2;; esac
done
workers=${1:-2}
mkdir -p "$ROOT"
trial() {  # trial NAME EXPERIMENT [FLAGS...]
  local name=$1 experiment=$2; shift 2
  local dir="$ROOT/$name"
  if [ -f "$dir/final_evaluation.json" ]; then echo "done: $name"; return 0; fi
  if [ -f "$KEPT/$name/final_evaluation.json" ]; then echo "done (kept in $KEPT): $name"; return 0; fi
  if [ -f "$dir/params.pt" ]; then
    echo "resume: $name"
    "$PYTHON" run.py resume "$dir" >>"$ROOT/$name.log" 2>&1
  else
    fresh_run_dir "$dir" || return 0
    echo "start: $name"
    "$PYTHON" run.py "$experiment" --env=JacoReachMT5-v1 "$@" --log_dir "$dir" \
      --n_epochs "$N_EPOCHS" --evaluation_frequency 5 --num_threads 1 \
      --snapshot_buffer --snapshot_gap 25 >>"$ROOT/$name.log" 2>&1
  fi
  echo "exit $?: $name"
}
export -f trial fresh_run_dir; export PYTHON ROOT N_EPOCHS KEPT
for seed in $SEEDS; do
  for method in $METHODS; do
    case $method in
      qmp_dnc) echo "qmp_dnc_s$seed qmp_dnc --seed $seed";;
      dnc_sac) echo "dnc_sac_s$seed dnc_sac --seed $seed";;
      dnc_reg) echo "dnc_reg_s$seed dnc_sac --seed $seed --kl_coeff 0.001";;
      qmp_uniform) echo "qmp_uniform_s$seed qmp_dnc --seed $seed --mixture uniform";;
      qmp_domain) echo "qmp_domain_s$seed qmp_dnc --seed $seed --mixture domain";;
      dnc_distill) echo "dnc_distill_s$seed dnc_sac --seed $seed --kl_coeff 0.001 --distillation_period 100";;
      shared) echo "shared_s$seed sac --seed $seed";;
    esac
  done
done | xargs -r -P "$workers" -L 1 bash -c 'trial "$@"' _
