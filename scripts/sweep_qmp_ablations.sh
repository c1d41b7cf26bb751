#!/usr/bin/env bash
# QMP ablations of the behaviour mixture (the paper's QMP-Uniform / QMP-Domain comparison), seeds 0-2:
#   Separated = dnc_sac, QMP = qmp_dnc (Q-switch), QMP-Uniform = qmp_dnc --mixture uniform
#   on ENVS (default Multistage Reacher, Maze, Meta-World CDS), and QMP-Domain = qmp_dnc
#   --mixture domain on JacoReachMT5-v1, the only suite with a domain-knowledge mixture.
# Shares data/sweeps/qmp with the other QMP scripts (Separated and QMP run once); re-running resumes.
#
# Usage: scripts/sweep_qmp_ablations.sh [sweep options] [-- run.py flags for every trial]
# Environment: ENVS, SEEDS, ROOT (relative to the repository root), PYTHON.
set -uo pipefail
source "$(dirname "$0")/sweep_common.sh"

sweep --envs "$ENVS" --experiments dnc_sac,qmp_dnc "$@"                 # Separated, QMP
sweep --envs "$ENVS" --experiments qmp_dnc --grid mixture=uniform "$@"   # QMP-Uniform
sweep --envs JacoReachMT5-v1 --experiments qmp_dnc --grid mixture=domain "$@"  # QMP-Domain
exit $rc
