"""Numbers read off the final epochs: the selection matrix, the rliable summary and the first steps
reaching thresholds."""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Sequence

import numpy as np

from tools.plotting.curves import BOOTSTRAP_REPS, BOOTSTRAP_SEED, MIN_MAX_BAND, MIN_SEEDS_FOR_CI, as_groups
from tools.plotting.runs import Run

SUMMARY_COLUMNS = ("group", "suite", "n_seeds", "iqm", "iqm_ci_low", "iqm_ci_high",
                   "mean", "mean_ci_low", "mean_ci_high", "interval", "metric")
SUMMARY_CI = "95 % stratified bootstrap CI"
_SELECTION = re.compile(r"^Train/LocalPolicy(\d+)/(Policy|Guide)(\d+)Prob$")


# ------------------------------------------------------------------------------------- selection
@dataclasses.dataclass
class Selection:
    """Mean over a group's runs of the last logged selection matrix: ``matrix[i, j]`` is the
    fraction of task i's collection steps taken by policy (or CTPG guide) j."""

    label: str
    kind: str  # "Policy" (Q-switch) or "Guide" (CTPG)
    matrix: np.ndarray
    n_seeds: int
    epochs: list[int]


def _last_selection(run: Run, kind: str) -> tuple[np.ndarray, int] | None:
    cells = {}
    for column in run.progress.columns:
        m = _SELECTION.match(column)
        if m and m.group(2) == kind:
            cells[(int(m.group(1)), int(m.group(3)))] = column
    if not cells:
        return None
    frame = run.progress[list(cells.values())].dropna(how="all")
    if frame.empty:
        return None
    matrix = np.full((1 + max(i for i, _ in cells), 1 + max(j for _, j in cells)), np.nan)
    last = frame.iloc[-1]
    for (i, j), column in cells.items():
        matrix[i, j] = float(last[column])
    epoch = run.progress.loc[frame.index[-1], "Epoch"] if "Epoch" in run.progress.columns else frame.index[-1]
    return matrix, int(epoch)


def compute_selection(run_dirs, metric: str | None = None) -> list[Selection]:
    """One :class:`Selection` per group and kind (``Policy``/``Guide``) that logs the matrix
    (``--log_per_task all``)."""
    out = []
    for group in as_groups(run_dirs, metric):
        for kind in ("Policy", "Guide"):
            found = [s for s in (_last_selection(r, kind) for r in group.runs) if s is not None]
            if not found or len({m.shape for m, _ in found}) > 1:
                continue
            out.append(Selection(label=group.label, kind=kind, matrix=np.mean(np.stack([m for m, _ in found]), axis=0),
                                 n_seeds=len(found), epochs=[e for _, e in found]))
    return out


# --------------------------------------------------------------------------------------- summary
def final_score(run: Run, column: str | None = None) -> float:
    """The column's (default: the run's metric) value at the run's last evaluated epoch."""
    return float(run.series(column or run.metric)[1][-1])


def iqm(scores: np.ndarray) -> float:
    """Interquartile mean of all scores: ``rliable.metrics.aggregate_iqm`` (scipy's
    ``trim_mean(scores, 0.25, axis=None)``) without scipy's per-call overhead, which dominated the
    bootstrap's run time."""
    flat = np.sort(np.asarray(scores, dtype=float), axis=None)
    cut = int(0.25 * flat.size)
    return float(flat[cut:flat.size - cut].mean())


def compute_summary(run_dirs, metric: str | None = None, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED):
    """A pandas DataFrame with :data:`SUMMARY_COLUMNS`, one row per group: rliable's IQM and mean of
    the runs' final scores (a ``n_seeds x 1`` score matrix) with 95 % stratified-bootstrap CIs;
    for 2 seeds that interval is the min-max of the final scores, and ``interval`` says so (the
    kind of interval; empty for one seed)."""
    import pandas as pd
    from rliable import library, metrics

    groups = as_groups(run_dirs, metric)
    scores = {g.label: np.array([[final_score(r)] for r in g.runs]) for g in groups}

    def both(x: np.ndarray) -> np.ndarray:
        return np.array([iqm(x), metrics.aggregate_mean(x)])

    with warnings.catch_warnings():  # arch's "random_state is deprecated", raised inside rliable
        warnings.simplefilter("ignore", FutureWarning)
        points, intervals = library.get_interval_estimates(
            scores, both, reps=reps, random_state=np.random.RandomState(seed))
    rows = []
    for g in groups:
        point, ci, n = points[g.label], intervals[g.label], len(g.runs)
        # Two seeds: the percentile bootstrap's interval is exactly their min-max (a quarter of the
        # resamples on each extreme), so it is reported as such.
        interval = "" if n < 2 else MIN_MAX_BAND if n < MIN_SEEDS_FOR_CI else SUMMARY_CI
        rows.append({"group": g.label, "suite": g.suite, "n_seeds": n,
                     "iqm": point[0], "iqm_ci_low": ci[0, 0], "iqm_ci_high": ci[1, 0],
                     "mean": point[1], "mean_ci_low": ci[0, 1], "mean_ci_high": ci[1, 1],
                     "interval": interval, "metric": " | ".join(g.metrics)})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


# ------------------------------------------------------------------------------------ thresholds
def first_reach(run: Run, threshold: float, column: str | None = None) -> float:
    """The first ``TotalEnvSteps`` at which the column (default: the run's metric) is at least
    ``threshold`` at an evaluated epoch; NaN if it never is."""
    x, y = run.series(column or run.metric)
    hit = np.flatnonzero(y >= threshold)
    return float(x[hit[0]]) if hit.size else float("nan")


def compute_thresholds(run_dirs, thresholds: Sequence[float], metric: str | None = None):
    """A pandas DataFrame, one row per run and threshold: group, seed, run dir, threshold, the first
    env step reaching it (:func:`first_reach`, NaN if never), and the group's median over seeds and
    number of seeds that reached it."""
    import pandas as pd

    rows = []
    for g in as_groups(run_dirs, metric):
        for t in thresholds:
            reached = [first_reach(r, t) for r in g.runs]
            finite = [v for v in reached if np.isfinite(v)]
            median = float(np.median(reached)) if len(finite) == len(reached) else float("nan")
            for r, v in zip(g.runs, reached):
                rows.append({"group": g.label, "seed": r.variant.get("seed"), "run": str(r.path),
                             "threshold": t, "first_steps": v, "group_median_steps": median,
                             "seeds_reached": f"{len(finite)}/{len(reached)}", "metric": r.metric})
    return pd.DataFrame(rows)
