"""Curves: a group's mean over seeds against ``TotalEnvSteps`` with a band, pooled and per task."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from tools.plotting.grouping import Group, group_runs
from tools.plotting.runs import Log, Run, load_runs, stderr_log

BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
#: Fewer seeds than this get a min-max band, not a bootstrap CI: resampling 2 seeds puts a quarter
#: of the mass on each extreme, so its "95 % CI" is the min-max band under another name.
MIN_SEEDS_FOR_CI = 3
CI_BAND, MIN_MAX_BAND = "95 % bootstrap CI", "min-max"


def band_kind(n_seeds: int) -> str:
    """The band drawn around a mean of ``n_seeds`` seeds: none for one seed, min-max for fewer than
    :data:`MIN_SEEDS_FOR_CI`, else the 95 % percentile-bootstrap CI of the mean."""
    return "" if n_seeds < 2 else MIN_MAX_BAND if n_seeds < MIN_SEEDS_FOR_CI else CI_BAND


@dataclasses.dataclass
class Curve:
    """A group's mean curve; ``low``/``high`` bound the band named by ``band`` (None for one seed)."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    n_seeds: int
    metrics: list[str]
    runs: list[Path]
    suite: str = "?"
    band: str = ""


def common_grid(xs: Sequence[np.ndarray]) -> np.ndarray:
    """Union of the runs' x values inside the range that every run covers."""
    lo = max(float(x[0]) for x in xs)
    hi = min(float(x[-1]) for x in xs)
    grid = np.unique(np.concatenate(xs))
    return grid[(grid >= lo) & (grid <= hi)]


def bootstrap_mean_ci(values: np.ndarray, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
                      size: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile-bootstrap CI of the mean over axis 0 (seeds) of ``values`` (n_seeds, n_points):
    ``reps`` resamples of the seeds with replacement, the same resample for every point."""
    n = values.shape[0]
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, size=(reps, n))
    weights = (picks[:, :, None] == np.arange(n)).sum(axis=1) / n  # (reps, n): resample frequencies
    means = weights @ values  # (reps, n_points)
    tail = 100 * (1 - size) / 2
    low, high = np.percentile(means, [tail, 100 - tail], axis=0)
    return low, high


def aggregate(series: Sequence[tuple[np.ndarray, np.ndarray]], reps: int = BOOTSTRAP_REPS,
              seed: int = BOOTSTRAP_SEED):
    """(x, mean, low, high) of runs' (x, y) series: each is linearly interpolated onto
    :func:`common_grid`, then averaged over runs; the band (:func:`band_kind`) is None for one run,
    the pointwise min and max for fewer than :data:`MIN_SEEDS_FOR_CI` runs, else
    :func:`bootstrap_mean_ci`."""
    grid = common_grid([x for x, _ in series])
    values = np.stack([np.interp(grid, x, y) for x, y in series])  # (n_runs, n_points)
    mean = values.mean(axis=0)
    kind = band_kind(len(series))
    if not kind or len(grid) == 0:
        return grid, mean, None, None
    if kind == MIN_MAX_BAND:
        return grid, mean, values.min(axis=0), values.max(axis=0)
    low, high = bootstrap_mean_ci(values, reps=reps, seed=seed)
    return grid, mean, low, high


def _curve(label: str, runs: Sequence[Run], columns: Sequence[str], reps: int, seed: int) -> Curve:
    x, mean, low, high = aggregate([r.series(c) for r, c in zip(runs, columns)], reps=reps, seed=seed)
    return Curve(label=label, x=x, mean=mean, low=low, high=high, n_seeds=len(runs),
                 metrics=sorted(set(columns)), runs=[r.path for r in runs], suite=runs[0].suite,
                 band=band_kind(len(runs)) if low is not None else "")


def as_groups(items, metric: str | None = None, log: Log = stderr_log) -> list[Group]:
    """Groups given as such, or made from runs (:func:`group_runs`) or run dirs (:func:`load_runs`)."""
    items = list(items)
    if items and all(isinstance(g, Group) for g in items):
        return items
    runs = items if items and all(isinstance(r, Run) for r in items) else load_runs(items, metric, log)
    return group_runs(runs, log=log)


def compute_curves(run_dirs, metric: str | None = None, reps: int = BOOTSTRAP_REPS,
                   seed: int = BOOTSTRAP_SEED) -> list[Curve]:
    """One :class:`Curve` per group (sorted by label) of the metric against TotalEnvSteps."""
    return [_curve(g.label, g.runs, [r.metric for r in g.runs], reps, seed) for g in as_groups(run_dirs, metric)]


def task_column(metric: str, task: int) -> str:
    """``Evaluation/p/SuccessRate`` -> ``Evaluation/p/Task{task}/SuccessRate``."""
    head, _, leaf = metric.rpartition("/")
    return f"{head}/Task{task}/{leaf}" if head else f"Task{task}/{leaf}"


def _tasks_of(run: Run) -> list[int]:
    head, _, leaf = run.metric.rpartition("/")
    pattern = re.compile(re.escape(f"{head}/" if head else "") + r"Task(\d+)/" + re.escape(leaf) + "$")
    return sorted(int(m.group(1)) for c in run.progress.columns if (m := pattern.match(c)))


def compute_task_curves(run_dirs, metric: str | None = None, reps: int = BOOTSTRAP_REPS,
                        seed: int = BOOTSTRAP_SEED) -> dict[str, dict[int, list[Curve]]]:
    """suite -> task -> one :class:`Curve` per group of that suite whose runs log the task's column
    of the metric (``.../Task{k}/<leaf>``) with at least one value. Task k of one suite is never
    mixed with task k of another. Empty when no run has per-task columns."""
    out: dict[str, dict[int, list[Curve]]] = {}
    for group in as_groups(run_dirs, metric):
        for k in sorted({k for r in group.runs for k in _tasks_of(r)}):
            members = [r for r in group.runs if task_column(r.metric, k) in r.progress.columns
                       and len(r.series(task_column(r.metric, k))[0])]
            if members:
                columns = [task_column(r.metric, k) for r in members]
                out.setdefault(group.suite, {}).setdefault(k, []).append(_curve(group.label, members, columns,
                                                                                  reps, seed))
    return {suite: dict(sorted(tasks.items())) for suite, tasks in sorted(out.items())}
