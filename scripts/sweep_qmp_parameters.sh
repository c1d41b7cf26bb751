#!/usr/bin/env bash
# QMP combined with parameter sharing: Parameters (multi-head MTSAC) vs Parameters + QMP on
# Meta-World MT10 (MetaWorldMT10-v2), seeds 0-2, with the README's multi-head settings
# (--policy_architecture/--Q_architecture multihead, the defaults of mtsac and qmp_sac, and
# --lr 0.001 --hidden_sizes 512 512, the original README's example; put in the grid so that the
# trial dirs differ from the default-size runs of sweep_multihead.sh).
# Shares data/sweeps/qmp with the other QMP scripts; re-running resumes.
#
# Usage: scripts/sweep_qmp_parameters.sh [sweep options] [-- run.py flags for every trial]
# Environment: ENVS, SEEDS, ROOT (relative to the repository root), PYTHON.
set -uo pipefail
ENVS=${ENVS:-MetaWorldMT10-v2}
source "$(dirname "$0")/sweep_common.sh"

sweep --envs "$ENVS" --experiments mtsac,qmp_sac --grid lr=0.001 --grid "hidden_sizes=512 512" "$@"
exit $rc
