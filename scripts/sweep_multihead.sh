#!/usr/bin/env bash
# QMP paper, section 5.3.3 (multi-head networks): Shared Multihead = mtsac (multi-head is its
# default) vs QMP Multihead = qmp_sac, both with their default flags, seeds 0-2, on ENVS
# (default Multistage Reacher, Maze, Meta-World CDS; set ENVS for the section's suites).
# Shares data/sweeps/qmp with the other QMP scripts; re-running resumes.
#
# Usage: scripts/sweep_multihead.sh [sweep options] [-- run.py flags for every trial]
# Environment: ENVS, SEEDS, ROOT (relative to the repository root), PYTHON.
set -uo pipefail
source "$(dirname "$0")/sweep_common.sh"

sweep --envs "$ENVS" --experiments mtsac,qmp_sac "$@"
exit $rc
