"""``run.py plot``: load, group, aggregate, draw and write every figure and table."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import click

from tools.plotting.curves import BOOTSTRAP_REPS, BOOTSTRAP_SEED, compute_curves, compute_task_curves, task_column
from tools.plotting.drawing import draw_curves, draw_selection, draw_summary, draw_task_grid
from tools.plotting.grouping import DUPLICATE_SEED_MODES, Group, group_runs
from tools.plotting.runs import Log, load_runs, stderr_log, task_names
from tools.plotting.tables import compute_selection, compute_summary, compute_thresholds

FORMATS = (".png", ".pdf")


def _check_out(out: str | Path) -> Path:
    path = Path(out)
    if path.suffix.lower() not in FORMATS:
        raise click.BadParameter(f"{str(path)!r} must end in .png or .pdf", param_hint="'--out'")
    return path


def _sibling(out: Path, suffix: str, ext: str | None = None) -> Path:
    return out.with_name(f"{out.stem}_{suffix}{ext or out.suffix}")


def make_figures(groups: Sequence[Group], *, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
                 log: Log = stderr_log):
    """(figures, summary): the figures by file suffix (``""`` curves, ``tasks``, ``selection``,
    ``summary``; a figure without data is left out with a note) and the summary DataFrame."""
    curves = compute_curves(groups, reps=reps, seed=seed)
    for curve in curves:
        if len(curve.x) == 0:
            log(f"note: the runs of {curve.label!r} share no TotalEnvSteps range; no curve drawn")
    figures = {"": draw_curves(curves)}
    task_curves = compute_task_curves(groups, reps=reps, seed=seed)
    if task_curves:
        names = {g.suite: task_names(g.runs[0]) for g in groups}
        figures["tasks"] = draw_task_grid(task_curves, names)
    else:
        metrics = sorted({m for g in groups for m in g.metrics})
        log(f"note: no run logs per-task columns of {' | '.join(task_column(m, '{k}') for m in metrics)} "
            "(--log_per_task none?); no per-task grid")
    selections = compute_selection(groups)
    if selections:
        figures["selection"] = draw_selection(selections)
    else:
        log("note: no run logs Train/LocalPolicy{i}/Policy{j}Prob or Guide{j}Prob "
            "(QMP/CTPG with --log_per_task all only); no selection heat map")
    summary = compute_summary(groups, reps=reps, seed=seed)
    figures["summary"] = draw_summary(summary)
    return figures, summary


def make_plots(run_dirs, metric: str | None = None, out: str | Path = "plot.png", *,
               reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED, log: Log = stderr_log,
               thresholds: Sequence[float] = (), duplicate_seeds: str = "once") -> list[Path]:
    """Draw every figure (see :mod:`tools.plotting`) for the runs in ``run_dirs`` and return the
    paths written: ``out``, ``<stem>_tasks``, ``<stem>_selection`` (when a run logs a selection
    matrix), ``<stem>_summary``, ``<stem>_summary.csv`` and, with ``thresholds``,
    ``<stem>_thresholds.csv`` (:func:`~tools.plotting.tables.compute_thresholds`).

    Raises:
        click.BadParameter: a bad run dir, metric, output extension or (``duplicate_seeds``
            ``refuse``) a seed run twice in a group, before anything is drawn.
    """
    out = _check_out(out)
    groups = group_runs(load_runs(run_dirs, metric, log), duplicate_seeds, log)
    figures, summary = make_figures(groups, reps=reps, seed=seed, log=log)
    out.parent.mkdir(parents=True, exist_ok=True)
    written = []
    for suffix, figure in figures.items():
        path = _sibling(out, suffix) if suffix else out
        figure.savefig(path, dpi=120)
        written.append(path)
    csv_path = _sibling(out, "summary", ".csv")
    summary.to_csv(csv_path, index=False)
    written.append(csv_path)
    if thresholds:
        path = _sibling(out, "thresholds", ".csv")
        compute_thresholds(groups, thresholds).to_csv(path, index=False)
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
@click.option("--duplicate_seeds", type=click.Choice(DUPLICATE_SEED_MODES), default="once", show_default=True,
              help="runs of the same seed in one group (a copied or re-run dir): once counts the seed once "
                   "(the run with the most evaluations), each counts every run, refuse stops; a warning names "
                   "the runs")
def plot_command(logdirs: tuple[str, ...], metric: str | None, out: str, thresholds: str,
                 duplicate_seeds: str) -> None:
    """Curves (mean over seeds against TotalEnvSteps, with a 95 % bootstrap band, min-max below 3
    seeds), a per-task grid, the Q-switch/CTPG selection heat map and an rliable IQM summary of
    LOGDIR..., one panel (or block of panels) per suite.

    Each LOGDIR is a run dir (holding variant.json and progress.csv) or a dir with run dirs below it.
    Runs are grouped by their variant.json settings (all but the seed and bookkeeping keys).
    """
    try:
        levels = [float(t) for t in thresholds.split(",") if t.strip()]
    except ValueError:
        raise click.BadParameter(f"{thresholds!r}: comma-separated numbers, e.g. 0.8,1.0",
                                 param_hint="--thresholds") from None
    for path in make_plots(logdirs, metric=metric, out=out, log=lambda m: click.echo(m, err=True),
                           thresholds=levels, duplicate_seeds=duplicate_seeds):
        click.echo(f"wrote {path}")
