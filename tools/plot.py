"""Plots of experiment log dirs: ``python run.py plot LOGDIR... [--metric KEY] [--out FILE]``.

Every figure is made from the files a run writes (``variant.json`` and ``progress.csv``):

* ``FILE`` (``plot.png`` by default): the metric against ``TotalEnvSteps``, one line per group of
  runs, the mean over seeds with a 95 % percentile-bootstrap band of that mean (no band for one seed).
* ``<stem>_tasks.<ext>``: the same per task, one subplot per ``.../Task{k}/<leaf>`` column.
* ``<stem>_selection.<ext>``: per QMP group, the final selection matrix as a heat map: row i is the
  task whose data were collected, column j the policy that acted
  (``Train/LocalPolicy{i}/Policy{j}Prob``; CTPG's ``Guide{j}Prob`` as well), averaged over seeds at
  each run's last logged epoch. Skipped with a note when no run logs these columns.
* ``<stem>_summary.<ext>`` and ``<stem>_summary.csv``: rliable's interquartile mean and mean of the
  final performance (the metric at each run's last evaluated epoch) per group, with 95 % stratified
  bootstrap confidence intervals.
* ``<stem>_thresholds.csv`` (with ``--thresholds 0.8,1.0``): per run, the first ``TotalEnvSteps`` at
  which the metric reaches each threshold, and the group's median over seeds.

Runs are grouped by ``variant.json``, never by directory names: runs whose settings agree except for
the seed, bookkeeping keys (:data:`IGNORED_KEYS`) and flags the run's experiment does not accept
form one group. A group's label is its
experiment, env and the settings that differ between the runs of that experiment and env.

Default metric, per run: ``Evaluation/p/SuccessRate`` if the run logs it (QMP's mixture evaluation),
else ``Evaluation/SuccessRate``; for suites whose success is meaningless
(``environments.get_suite(env).success_is_meaningful`` is False, e.g. HalfCheetahMT5-v0 or any
one-task gymnasium id) the ``AverageReturn`` counterparts. An explicit ``--metric`` column must exist
in every run; a leaf without '/' (``StagesCompleted``) is resolved per run the same way as the default.
Bad input (a LOGDIR without ``variant.json``/``progress.csv``, an unknown metric) fails with a usage
error (exit code 2) before anything is drawn.

Everything is drawn with matplotlib's ``Figure`` API (no pyplot, no display needed); the output
format (PNG or PDF) follows the extension of ``--out``. Heavy imports (pandas, matplotlib, rliable)
happen only when plotting, so importing this module (as ``run.py`` does) stays cheap.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Callable, Iterable, Sequence

import click
import numpy as np

#: variant.json keys that do not distinguish experiments (the seed, names, paths, provenance, and
#: settings that change speed but not the experiment).
IGNORED_KEYS = frozenset({
    "seed", "name", "log_dir", "resolved", "argv", "command", "git_commit", "git_dirty", "versions",
    "num_threads", "device", "gpu", "snapshot_gap", "n_workers",
})


@functools.cache
def _accepted_by() -> dict[str, tuple[str, ...] | None]:
    """Flag -> the experiments that accept it (None: every experiment), from ExperimentConfig."""
    from experiment_utils import ExperimentConfig
    return {f.name: f.metadata.get("only") for f in dataclasses.fields(ExperimentConfig)}


def _irrelevant(key: str, experiment) -> bool:
    """A flag the run's experiment does not accept (e.g. a CTPG guide preset in an mtsac run)."""
    only = _accepted_by().get(key)
    return only is not None and experiment not in only


FORMATS = (".png", ".pdf")
BOOTSTRAP_REPS = 2000
BOOTSTRAP_SEED = 0
SUMMARY_COLUMNS = ("group", "n_seeds", "iqm", "iqm_ci_low", "iqm_ci_high",
                   "mean", "mean_ci_low", "mean_ci_high", "metric")
_SELECTION = re.compile(r"^Train/LocalPolicy(\d+)/(Policy|Guide)(\d+)Prob$")

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


# ------------------------------------------------------------------------------------------ runs
@dataclasses.dataclass
class Run:
    """One run dir: its settings, its progress table and the metric column plotted for it."""

    path: Path
    variant: dict
    progress: "object"  # pandas.DataFrame (pandas is imported lazily)
    metric: str = ""

    def series(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(TotalEnvSteps, column) over the rows where the column has a finite value, sorted by steps
        (a repeated step count keeps its last row)."""
        frame = self.progress[["TotalEnvSteps", column]].dropna()
        x = frame["TotalEnvSteps"].to_numpy(float)
        y = frame[column].to_numpy(float)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        order = np.argsort(x, kind="stable")
        x, y = x[order], y[order]
        if len(x) == 0:
            return x, y
        last = np.r_[x[1:] != x[:-1], True]  # last row of each step count
        return x[last], y[last]


def _find_run_dirs(logdirs: Iterable[str | Path], log: Log) -> list[tuple[Path, bool]]:
    """(run dir, named explicitly) pairs; see :func:`find_run_dirs`."""
    found: dict[Path, tuple[Path, bool]] = {}
    for raw in logdirs:
        path = Path(raw)
        if not path.is_dir():
            raise click.BadParameter(f"{str(path)!r} is not a directory", param_hint="LOGDIR")
        if (path / "variant.json").is_file() or (path / "progress.csv").is_file():
            runs, explicit = [path], True
        else:
            runs, explicit = sorted({p.parent for p in path.rglob("variant.json")}
                                    | {p.parent for p in path.rglob("progress.csv")}), False
            if not runs:
                raise click.BadParameter(
                    f"{str(path)!r} has no variant.json and progress.csv and no run dir below it",
                    param_hint="LOGDIR")
        for run in runs:
            missing = [f for f in ("variant.json", "progress.csv") if not (run / f).is_file()]
            if missing and explicit:
                raise click.BadParameter(f"run dir {str(run)!r} has no {' or '.join(missing)}",
                                         param_hint="LOGDIR")
            if missing:
                log(f"note: skipping {run} (found below {path}): it has no {' or '.join(missing)}")
                continue
            key = run.resolve()
            found[key] = (found[key][0], found[key][1] or explicit) if key in found else (run, explicit)
    return list(found.values())


def find_run_dirs(logdirs: Iterable[str | Path], log: Log = _stderr) -> list[Path]:
    """The run dirs named by ``logdirs``: each is a run dir (holds ``variant.json`` or
    ``progress.csv``) or a parent dir searched recursively for run dirs. Below a parent dir, a dir
    with only one of the two files (a run still starting) is skipped with a note.

    Raises:
        click.BadParameter: a path that is no directory, a dir that is no run dir and holds none,
            or a LOGDIR run dir without ``variant.json`` or ``progress.csv``.
    """
    return [run for run, _ in _find_run_dirs(logdirs, log)]


@functools.lru_cache(maxsize=None)
def success_is_meaningful(env_id: str) -> bool:
    """False for suites where return is the metric (HalfCheetah, one-task gymnasium ids)."""
    from environments import get_suite

    try:
        return bool(get_suite(env_id).success_is_meaningful)
    except Exception:  # an env id this install cannot build: success is the usual metric
        return True


def default_metrics(env_id: str) -> tuple[str, str]:
    """The default metric columns for ``env_id``, in order of preference."""
    leaf = "SuccessRate" if success_is_meaningful(env_id) else "AverageReturn"
    return f"Evaluation/p/{leaf}", f"Evaluation/{leaf}"


def _close_matches(column: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(column, list(columns), n=5, cutoff=0.5)
    return f"; close matches: {', '.join(close)}" if close else ""


def load_runs(logdirs: Iterable[str | Path], metric: str | None = None, log: Log = _stderr) -> list[Run]:
    """Read and check every run (before anything is drawn) and resolve each run's metric column.

    A run found below a parent dir whose progress.csv has no value of the metric yet (a run that
    has just started) is skipped with a note; a LOGDIR named explicitly is an error instead.

    Raises:
        click.BadParameter: see :func:`find_run_dirs`; an unreadable file; ``metric`` (or, without
            it, both default columns) missing from a run; a LOGDIR without any value of it; no run
            left to plot.
    """
    import pandas as pd

    runs = []
    for path, explicit in _find_run_dirs(logdirs, log):
        try:
            variant = json.loads((path / "variant.json").read_text())
        except (OSError, ValueError) as err:
            raise click.BadParameter(f"cannot read {path / 'variant.json'}: {err}", param_hint="LOGDIR") from None
        if not isinstance(variant, dict):
            raise click.BadParameter(f"{path / 'variant.json'} is not a JSON object", param_hint="LOGDIR")
        try:
            progress = pd.read_csv(path / "progress.csv")
        except pd.errors.EmptyDataError:
            progress = pd.DataFrame()
        except (OSError, ValueError) as err:  # pandas' ParserError is a ValueError
            raise click.BadParameter(f"cannot read {path / 'progress.csv'}: {err}", param_hint="LOGDIR") from None
        if progress.empty and not explicit:
            log(f"note: skipping {path}: progress.csv has no rows yet")
            continue
        if "TotalEnvSteps" not in progress.columns:
            raise click.BadParameter(f"{path / 'progress.csv'} has no TotalEnvSteps column",
                                     param_hint="LOGDIR")
        run = Run(path=path, variant=variant, progress=progress)
        columns = list(progress.columns)
        if metric is not None and "/" not in metric:  # a leaf: the own policy's column where logged
            present = [c for c in (f"Evaluation/p/{metric}", f"Evaluation/{metric}") if c in columns]
            if not present:
                raise click.BadParameter(f"neither Evaluation/p/{metric} nor Evaluation/{metric} is a column "
                                         f"of {path / 'progress.csv'}" + _close_matches(f"Evaluation/{metric}",
                                                                                      columns),
                                         param_hint="'--metric'")
            run.metric = present[0]
        elif metric is not None:
            if metric not in columns:
                raise click.BadParameter(f"metric {metric!r} is not a column of {path / 'progress.csv'}"
                                         + _close_matches(metric, columns), param_hint="'--metric'")
            run.metric = metric
        else:
            candidates = default_metrics(str(variant.get("env", "")))
            present = [c for c in candidates if c in columns]
            if not present:
                raise click.BadParameter(
                    f"{path / 'progress.csv'} has neither default metric {' nor '.join(candidates)}"
                    + _close_matches(candidates[-1], columns) + "; choose one with --metric",
                    param_hint="'--metric'")
            run.metric = present[0]
        if len(run.series(run.metric)[0]) == 0:
            if explicit:
                raise click.BadParameter(f"metric {run.metric!r} has no values in {path / 'progress.csv'}",
                                         param_hint="'--metric'")
            log(f"note: skipping {path}: no value of {run.metric} yet")
            continue
        runs.append(run)
    if not runs:
        raise click.BadParameter("no run with values to plot", param_hint="LOGDIR")
    return runs


# ---------------------------------------------------------------------------------------- groups
@dataclasses.dataclass
class Group:
    label: str
    runs: list[Run]

    @property
    def metrics(self) -> list[str]:
        return sorted({r.metric for r in self.runs})


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value)
    return str(value)


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs with equal ``variant.json`` settings (apart from :data:`IGNORED_KEYS`) form one group;
    groups come sorted by label."""
    def settings(run: Run) -> dict[str, str]:
        experiment = run.variant.get("experiment")
        return {k: _canonical(v) for k, v in run.variant.items()
                if k not in IGNORED_KEYS and not _irrelevant(k, experiment)}

    missing = _canonical(None) + "<missing>"
    by_key: dict[tuple, list[Run]] = {}
    for run in runs:
        by_key.setdefault(tuple(sorted(settings(run).items())), []).append(run)
    # The label shows the settings that differ between the runs of the same experiment and env.
    family: dict[tuple, list[dict]] = {}
    for run in runs:
        family.setdefault((run.variant.get("experiment"), run.variant.get("env")), []).append(settings(run))
    groups = []
    for members in by_key.values():
        head = members[0].variant
        peers = family[(head.get("experiment"), head.get("env"))]
        keys = sorted({k for s in peers for k in s} - {"experiment", "env"})
        differing = [k for k in keys if len({s.get(k, missing) for s in peers}) > 1]
        flags = " ".join(f"{k}={_show(head.get(k, '<missing>'))}" for k in differing)
        label = f"{head.get('experiment', '?')} {head.get('env', '?')}" + (f" {flags}" if flags else "")
        groups.append(Group(label=label, runs=members))
    return sorted(groups, key=lambda g: g.label)


# ---------------------------------------------------------------------------------------- curves
@dataclasses.dataclass
class Curve:
    """A group's mean curve; ``low``/``high`` (the 95 % bootstrap band) are None for one seed."""

    label: str
    x: np.ndarray
    mean: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    n_seeds: int
    metrics: list[str]
    runs: list[Path]


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
    :func:`common_grid`, then averaged over runs; low/high are None for one run."""
    grid = common_grid([x for x, _ in series])
    values = np.stack([np.interp(grid, x, y) for x, y in series])  # (n_runs, n_points)
    mean = values.mean(axis=0)
    if len(series) < 2 or len(grid) == 0:
        return grid, mean, None, None
    low, high = bootstrap_mean_ci(values, reps=reps, seed=seed)
    return grid, mean, low, high


def _curve(label: str, runs: Sequence[Run], columns: Sequence[str], reps: int, seed: int) -> Curve:
    x, mean, low, high = aggregate([r.series(c) for r, c in zip(runs, columns)], reps=reps, seed=seed)
    return Curve(label=label, x=x, mean=mean, low=low, high=high, n_seeds=len(runs),
                 metrics=sorted(set(columns)), runs=[r.path for r in runs])


def _as_runs(runs_or_dirs, metric: str | None, log: Log = _stderr) -> list[Run]:
    items = list(runs_or_dirs)
    if items and all(isinstance(r, Run) for r in items):
        return items
    return load_runs(items, metric, log)


def compute_curves(run_dirs, metric: str | None = None, reps: int = BOOTSTRAP_REPS,
                   seed: int = BOOTSTRAP_SEED) -> list[Curve]:
    """One :class:`Curve` per group (sorted by label) of the metric against TotalEnvSteps."""
    groups = group_runs(_as_runs(run_dirs, metric))
    return [_curve(g.label, g.runs, [r.metric for r in g.runs], reps, seed) for g in groups]


def task_column(metric: str, task: int) -> str:
    """``Evaluation/p/SuccessRate`` -> ``Evaluation/p/Task{task}/SuccessRate``."""
    head, _, leaf = metric.rpartition("/")
    return f"{head}/Task{task}/{leaf}" if head else f"Task{task}/{leaf}"


def _tasks_of(run: Run) -> list[int]:
    head, _, leaf = run.metric.rpartition("/")
    pattern = re.compile(re.escape(f"{head}/" if head else "") + r"Task(\d+)/" + re.escape(leaf) + "$")
    return sorted(int(m.group(1)) for c in run.progress.columns if (m := pattern.match(c)))


def compute_task_curves(run_dirs, metric: str | None = None, reps: int = BOOTSTRAP_REPS,
                        seed: int = BOOTSTRAP_SEED) -> dict[int, list[Curve]]:
    """task -> one :class:`Curve` per group whose runs log that task's column of the metric
    (``.../Task{k}/<leaf>``) with at least one value. Empty when no run has per-task columns."""
    groups = group_runs(_as_runs(run_dirs, metric))
    out: dict[int, list[Curve]] = {}
    for group in groups:
        tasks = sorted({k for r in group.runs for k in _tasks_of(r)})
        for k in tasks:
            members = [r for r in group.runs if task_column(r.metric, k) in r.progress.columns
                       and len(r.series(task_column(r.metric, k))[0])]
            if members:
                columns = [task_column(r.metric, k) for r in members]
                out.setdefault(k, []).append(_curve(group.label, members, columns, reps, seed))
    return dict(sorted(out.items()))


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
    rows = 1 + max(i for i, _ in cells)
    cols = 1 + max(j for _, j in cells)
    matrix = np.full((rows, cols), np.nan)
    last = frame.iloc[-1]
    for (i, j), column in cells.items():
        matrix[i, j] = float(last[column])
    epoch = run.progress.loc[frame.index[-1], "Epoch"] if "Epoch" in run.progress.columns else frame.index[-1]
    return matrix, int(epoch)


def compute_selection(run_dirs, metric: str | None = None) -> list[Selection]:
    """One :class:`Selection` per group and kind (``Policy``/``Guide``) that logs the matrix."""
    out = []
    for group in group_runs(_as_runs(run_dirs, metric)):
        for kind in ("Policy", "Guide"):
            found = [s for s in (_last_selection(r, kind) for r in group.runs) if s is not None]
            shapes = {m.shape for m, _ in found}
            if not found or len(shapes) > 1:
                continue
            matrix = np.mean(np.stack([m for m, _ in found]), axis=0)
            out.append(Selection(label=group.label, kind=kind, matrix=matrix, n_seeds=len(found),
                                 epochs=[e for _, e in found]))
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


def compute_summary(run_dirs, metric: str | None = None, reps: int = BOOTSTRAP_REPS,
                    seed: int = BOOTSTRAP_SEED):
    """A pandas DataFrame with :data:`SUMMARY_COLUMNS`, one row per group: rliable's IQM and mean of
    the runs' final scores (a ``n_seeds x 1`` score matrix) with 95 % stratified-bootstrap CIs."""
    import pandas as pd
    from rliable import library, metrics

    groups = group_runs(_as_runs(run_dirs, metric))
    scores = {g.label: np.array([[final_score(r)] for r in g.runs]) for g in groups}

    def both(x: np.ndarray) -> np.ndarray:
        return np.array([iqm(x), metrics.aggregate_mean(x)])

    with warnings.catch_warnings():  # arch's "random_state is deprecated", raised inside rliable
        warnings.simplefilter("ignore", FutureWarning)
        points, intervals = library.get_interval_estimates(
            scores, both, reps=reps, random_state=np.random.RandomState(seed))
    rows = []
    for g in groups:
        point, ci = points[g.label], intervals[g.label]
        rows.append({"group": g.label, "n_seeds": len(g.runs),
                     "iqm": point[0], "iqm_ci_low": ci[0, 0], "iqm_ci_high": ci[1, 0],
                     "mean": point[1], "mean_ci_low": ci[0, 1], "mean_ci_high": ci[1, 1],
                     "metric": " | ".join(g.metrics)})
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


# -------------------------------------------------------------------------------------- drawing
def _legend_label(curve: Curve, show_metric: bool) -> str:
    seeds = f"{curve.n_seeds} seed{'s' if curve.n_seeds != 1 else ''}"
    metric = f" [{' | '.join(curve.metrics)}]" if show_metric else ""
    return f"{curve.label}{metric} ({seeds})"


def _draw_curve(ax, curve: Curve, color, label: str | None) -> None:
    ax.plot(curve.x, curve.mean, color=color, label=label, marker="." if len(curve.x) < 30 else None)
    if curve.low is not None:
        ax.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.2, linewidth=0)


def _colors(labels: Sequence[str]) -> dict[str, object]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _sibling(out: Path, suffix: str, ext: str | None = None) -> Path:
    return out.with_name(f"{out.stem}_{suffix}{ext or out.suffix}")


def _short_labels(labels: Sequence[str]) -> tuple[dict[str, str], str]:
    """Labels without the words every label shares (returned as a title line), so that a legend of
    long group labels stays readable; a label left empty keeps its full text."""
    words = [label.split(" ") for label in labels]
    common = set(words[0]).intersection(*words[1:]) if len(words) > 1 else set()
    short = {label: " ".join(x for x in w if x not in common) or label for label, w in zip(labels, words)}
    shared = " ".join(x for x in words[0] if x in common) if words else ""
    return short, shared


def draw_curves(curves: Sequence[Curve], path: Path, ylabel: str) -> None:
    colors = _colors([c.label for c in curves])
    show_metric = len({tuple(c.metrics) for c in curves}) > 1
    short, shared = _short_labels([c.label for c in curves])
    fig = _figure(figsize=(7, 4.5 + 0.2 * len(curves)))
    ax = fig.subplots()
    for curve in curves:
        label = _legend_label(dataclasses.replace(curve, label=short[curve.label]), show_metric)
        _draw_curve(ax, curve, colors[curve.label], label)
    ax.set_xlabel("TotalEnvSteps")
    ax.set_ylabel(ylabel)
    ax.set_title("mean over seeds, 95 % bootstrap CI" + (f"\n{shared}" if shared else ""), fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    fig.savefig(path, dpi=120)


def draw_task_grid(task_curves: dict[int, list[Curve]], path: Path, ylabel: str) -> None:
    tasks = list(task_curves)
    labels = sorted({c.label for cs in task_curves.values() for c in cs})
    colors = _colors(labels)
    ncols = min(5, len(tasks))
    nrows = math.ceil(len(tasks) / ncols)
    fig = _figure(figsize=(3.2 * ncols, 2.6 * nrows + 0.4 + 0.18 * len(labels)))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, sharex=True, squeeze=False)).ravel()
    for ax, task in zip(axes, tasks):
        for curve in task_curves[task]:
            _draw_curve(ax, curve, colors[curve.label], curve.label)
        ax.set_title(f"task {task}", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in axes[len(tasks):]:
        ax.set_visible(False)
    fig.supxlabel("TotalEnvSteps", fontsize=9)
    fig.supylabel(ylabel, fontsize=9)
    handles = [axes[0].plot([], [], color=colors[label])[0] for label in labels]
    fig.legend(handles, labels, loc="outside upper center", fontsize=7, ncols=min(3, len(labels)))
    fig.savefig(path, dpi=110)


def draw_selection(selections: Sequence[Selection], path: Path) -> None:
    n = len(selections)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(figsize=(4.8 * ncols, 4.4 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, sel in zip(axes, selections):
        rows, cols = sel.matrix.shape
        image = ax.imshow(sel.matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="equal")
        if rows <= 12 and cols <= 12:
            for i in range(rows):
                for j in range(cols):
                    value = sel.matrix[i, j]
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if value > 0.6 else "white")
        if rows <= 20:
            ax.set_yticks(range(rows))
        if cols <= 20:
            ax.set_xticks(range(cols))
        ax.tick_params(labelsize=7)
        ax.set_ylabel("task i (collecting)", fontsize=8)
        ax.set_xlabel(f"{'policy' if sel.kind == 'Policy' else 'CTPG guide'} j (acting)", fontsize=8)
        epochs = sorted(set(sel.epochs))
        at = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
        ax.set_title(f"{sel.label}\n{sel.kind}{{j}}Prob, {at}, mean of {sel.n_seeds} "
                     f"seed{'s' if sel.n_seeds != 1 else ''}", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.savefig(path, dpi=120)


def draw_summary(summary, path: Path, xlabel: str) -> None:
    labels = list(summary["group"])
    colors = _colors(labels)
    fig = _figure(figsize=(9, 1.2 + 0.45 * len(labels)))
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (name, key) in zip(axes, (("IQM", "iqm"), ("Mean", "mean"))):
        for y, (_, row) in enumerate(summary.iterrows()):
            low, high = row[f"{key}_ci_low"], row[f"{key}_ci_high"]
            ax.barh(y, high - low, left=low, height=0.6, color=colors[row["group"]], alpha=0.45)
            ax.plot([row[key]] * 2, [y - 0.3, y + 0.3], color="black", linewidth=1.5)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(labelsize=7)
    axes[0].set_yticks(range(len(labels)))
    axes[0].set_yticklabels([f"{g} (n={n})" for g, n in zip(labels, summary["n_seeds"])])
    axes[0].invert_yaxis()
    fig.suptitle("final performance, 95 % stratified bootstrap CIs (rliable)", fontsize=9)
    fig.savefig(path, dpi=120)


# --------------------------------------------------------------------------------------- driver
def _check_out(out: str | Path) -> Path:
    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{str(path)!r} must end in .png or .pdf", param_hint="'--out'")
    return path


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
    for g in group_runs(_as_runs(run_dirs, metric)):
        for t in thresholds:
            reached = [first_reach(r, t) for r in g.runs]
            finite = [v for v in reached if np.isfinite(v)]
            median = float(np.median(reached)) if len(finite) == len(reached) else float("nan")
            for r, v in zip(g.runs, reached):
                rows.append({"group": g.label, "seed": r.variant.get("seed"), "run": str(r.path),
                             "threshold": t, "first_steps": v, "group_median_steps": median,
                             "seeds_reached": f"{len(finite)}/{len(reached)}", "metric": r.metric})
    return pd.DataFrame(rows)


def make_plots(run_dirs, metric: str | None = None, out: str | Path = "plot.png", *,
               reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, log: Log = _stderr,
               thresholds: Sequence[float] = ()) -> list[Path]:
    """Draw every figure (see the module docstring) for the runs in ``run_dirs`` and return the
    paths written: ``out``, ``<stem>_tasks``, ``<stem>_selection`` (when a run logs a selection
    matrix), ``<stem>_summary``, ``<stem>_summary.csv`` and, with ``thresholds``,
    ``<stem>_thresholds.csv`` (:func:`compute_thresholds`).

    Raises:
        click.BadParameter: a bad run dir, metric or output extension (before anything is drawn).
    """
    out = _check_out(out)
    runs = load_runs(run_dirs, metric, log)
    metrics_used = sorted({r.metric for r in runs})
    ylabel = " | ".join(metrics_used)
    curves = compute_curves(runs, reps=reps, seed=seed)
    task_curves = compute_task_curves(runs, reps=reps, seed=seed)
    selections = compute_selection(runs)
    summary = compute_summary(runs, reps=reps, seed=seed)

    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for curve in curves:
        if len(curve.x) == 0:
            log(f"note: the runs of {curve.label!r} share no TotalEnvSteps range; no curve drawn")
    draw_curves(curves, out, ylabel)
    written.append(out)
    if task_curves:
        path = _sibling(out, "tasks")
        draw_task_grid(task_curves, path, " | ".join(task_column(m, "{k}") for m in metrics_used))
        written.append(path)
    else:
        log(f"note: no run logs per-task columns of {ylabel}; no per-task grid")
    if selections:
        path = _sibling(out, "selection")
        draw_selection(selections, path)
        written.append(path)
    else:
        log("note: no run logs Train/LocalPolicy{i}/Policy{j}Prob or Guide{j}Prob "
            "(QMP/CTPG only); no selection heat map")
    path = _sibling(out, "summary")
    draw_summary(summary, path, ylabel)
    written.append(path)
    csv_path = _sibling(out, "summary", ".csv")
    summary.to_csv(csv_path, index=False)
    written.append(csv_path)
    if thresholds:
        path = _sibling(out, "thresholds", ".csv")
        compute_thresholds(runs, thresholds).to_csv(path, index=False)
        written.append(path)
    return written


@click.command(name="plot", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("logdirs", nargs=-1, required=True, metavar="LOGDIR...")
@click.option("--metric", default=None, metavar="KEY",
              help="progress.csv column to plot, or a leaf such as StagesCompleted (each run's "
                   "Evaluation/p/<leaf> if it logs it, else Evaluation/<leaf>) [default: SuccessRate that "
                   "way; AverageReturn for return-only suites such as HalfCheetahMT5-v0]")
@click.option("--out", default="plot.png", show_default=True, metavar="FILE",
              help="curves figure, .png or .pdf; FILE's stem names the others: <stem>_tasks, "
                   "<stem>_selection, <stem>_summary (same format) and <stem>_summary.csv")
@click.option("--thresholds", default="", metavar="T1,T2",
              help="also write <stem>_thresholds.csv: the first TotalEnvSteps at which each run's metric "
                   "reaches each threshold (e.g. 0.8,1.0), and the group median")
def plot_command(logdirs: tuple[str, ...], metric: str | None, out: str, thresholds: str) -> None:
    """Curves (mean and 95 % bootstrap band over seeds against TotalEnvSteps), a per-task grid, the
    Q-switch/CTPG selection heat map and an rliable IQM summary of LOGDIR... .

    Each LOGDIR is a run dir (holding variant.json and progress.csv) or a dir with run dirs below it.
    Runs are grouped by their variant.json settings (all but the seed and bookkeeping keys).
    """
    try:
        levels = [float(t) for t in thresholds.split(",") if t.strip()]
    except ValueError:
        raise click.BadParameter(f"{thresholds!r}: comma-separated numbers, e.g. 0.8,1.0",
                                 param_hint="--thresholds") from None
    for path in make_plots(logdirs, metric=metric, out=out, log=lambda m: click.echo(m, err=True),
                           thresholds=levels):
        click.echo(f"wrote {path}")


if __name__ == "__main__":
    plot_command()
