#!/usr/bin/env bash
# QMP paper, Figure 4: QMP against the behaviour-sharing baselines on Multistage Reacher
# (JacoReachMT5-v1), Maze (MazeLarge-10-v0) and Meta-World CDS (MetaWorldCDS-v1), seeds 0-2.
#   Separated = dnc_sac, Shared = sac, UDS = uds_dnc (its default --sharing_quantile is 0),
#   QMP = qmp_dnc, DnC reg. = dnc_sac --kl_coeff 0.01 (the README's placeholder coefficient).
# Every QMP sweep script writes to data/sweeps/qmp, so runs they share (e.g. Separated, QMP) run
# once; re-running a script resumes it (finished trials are skipped).
#
# Usage: scripts/sweep_qmp_figure4.sh [sweep options] [-- run.py flags for every trial]
#   e.g. scripts/sweep_qmp_figure4.sh --dry_run
#        scripts/sweep_qmp_figure4.sh --address auto --cpus_per_trial 4 --gpus_per_trial 0.25
# Environment: ENVS, SEEDS, ROOT (relative to the repository root), PYTHON.
set -uo pipefail
source "$(dirname "$0")/sweep_common.sh"

sweep --envs "$ENVS" --experiments dnc_sac,sac,uds_dnc,qmp_dnc "$@"     # Separated, Shared, UDS, QMP
sweep --envs "$ENVS" --experiments dnc_sac --grid kl_coeff=0.01 "$@"    # DnC (regularisation only)
exit $rc
