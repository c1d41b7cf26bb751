#!/usr/bin/env bash
# Run one experiment on one env for several seeds, one after another.
# Usage: scripts/sweep_seeds.sh EXPERIMENT ENV SEED [SEED ...] [-- extra flags]
set -euo pipefail
experiment=$1; env=$2; shift 2
seeds=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do seeds+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
for seed in "${seeds[@]}"; do
  python run.py "$experiment" --env="$env" --seed "$seed" --name sweep "$@"
done
