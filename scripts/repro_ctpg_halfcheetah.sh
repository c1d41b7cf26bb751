#!/usr/bin/env bash
# Issue 18's evidence (docs/results.md, "HalfCheetahMT5-v0 with CTPG's settings"): MTSAC (multi-head)
# Base / w/ QMP / w/ CTPG (mtsac, qmp_sac, ctpg_sac) on HalfCheetahMT5-v0 with `--preset ctpg` (CTPG's control
# settings for all three), seeds 0-1, through `run.py sweep` (Ray, one CPU per trial). One epoch of the
# preset is 10k env steps per task; the preset's full length is 80 epochs (0.8 M per task); N_EPOCHS sets the
# budget (default 5 = 50k per task, 4x the earlier 12.5k; a run then takes an estimated 40-80 min on one core).
# Re-running with the same ROOT continues: finished trials are skipped, cut ones resume from their snapshots
# (replay buffer included, every 2 epochs and on SIGTERM) through `run.py resume`.
# Usage: scripts/repro_ctpg_halfcheetah.sh [TRIALS_AT_ONCE]   (default 2)
# Env: PYTHON (default python), ROOT (default data/sweeps/ctpg_halfcheetah), SEEDS (default 0-1), N_EPOCHS (5).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
ROOT=${ROOT:-data/sweeps/ctpg_halfcheetah}
SEEDS=${SEEDS:-0-1}
N_EPOCHS=${N_EPOCHS:-5}
exec "$PYTHON" run.py sweep --experiments mtsac,qmp_sac,ctpg_sac --envs HalfCheetahMT5-v0 --seeds "$SEEDS" \
  --root "$ROOT" --num_cpus "${1:-2}" -- --preset ctpg --n_epochs "$N_EPOCHS" \
  --snapshot_buffer True --snapshot_gap 2
