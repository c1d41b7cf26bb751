# Sourced by the scripts/sweep_*.sh paper sweeps: run from the repository root, defaults for
# PYTHON, ENVS, SEEDS, ROOT (overridable from the environment), and `sweep ARGS`, which runs
# `run.py sweep --root ROOT --seeds SEEDS ARGS` and records a failure in $rc.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-python}
ENVS=${ENVS:-JacoReachMT5-v1,MazeLarge-10-v0,MetaWorldCDS-v1}
SEEDS=${SEEDS:-0-2}
ROOT=${ROOT:-data/sweeps/qmp}
rc=0
sweep() { "$PYTHON" run.py sweep --root "$ROOT" --seeds "$SEEDS" "$@" || rc=1; }
