"""Reading run dirs: ``variant.json`` and ``progress.csv``, and the metric column plotted for each run."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import sys
from pathlib import Path
from typing import Callable, Iterable, Sequence

import click
import numpy as np

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(message, file=sys.stderr)


@dataclasses.dataclass
class Run:
    """One run dir: its settings, its progress table and the metric column plotted for it."""

    path: Path
    variant: dict
    progress: "object"  # pandas.DataFrame (pandas is imported lazily)
    metric: str = ""

    @property
    def suite(self) -> str:
        """The run's env id (``--env``): runs of different suites are never drawn on one axis."""
        return str(self.variant.get("env", "?"))

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


def find_run_dirs(logdirs: Iterable[str | Path], log: Log = stderr_log) -> list[Path]:
    """The run dirs named by ``logdirs``: each is a run dir (holds ``variant.json`` or
    ``progress.csv``) or a parent dir searched recursively for run dirs. Below a parent dir, a dir
    with only one of the two files (a run still starting) is skipped with a note.

    Raises:
        click.BadParameter: a path that is no directory, a dir that is no run dir and holds none,
            or a LOGDIR run dir without ``variant.json`` or ``progress.csv``.
    """
    return [run for run, _ in _find_run_dirs(logdirs, log)]


@functools.lru_cache(maxsize=None)
def _suite(env_id: str):
    from environments import get_suite

    try:
        return get_suite(env_id)
    except Exception:  # an env id this install cannot build
        return None


def success_is_meaningful(env_id: str) -> bool:
    """False for suites where return is the metric (HalfCheetah, one-task gymnasium ids)."""
    suite = _suite(env_id)
    return True if suite is None else bool(suite.success_is_meaningful)


def task_names(run: Run) -> list[str] | None:
    """The names of the run's tasks: ``variant.json``'s ``resolved.task_names`` where the run wrote
    them, else the env registry's (``environments.get_suite(env).task_names``); None when neither
    knows the suite."""
    names = (run.variant.get("resolved") or {}).get("task_names")
    if names:
        return [str(n) for n in names]
    suite = _suite(run.suite)
    return None if suite is None else [str(n) for n in suite.task_names]


def default_metrics(env_id: str) -> tuple[str, str]:
    """The default metric columns for ``env_id``, in order of preference."""
    leaf = "SuccessRate" if success_is_meaningful(env_id) else "AverageReturn"
    return f"Evaluation/p/{leaf}", f"Evaluation/{leaf}"


def _close_matches(column: str, columns: Sequence[str]) -> str:
    close = difflib.get_close_matches(column, list(columns), n=5, cutoff=0.5)
    return f"; close matches: {', '.join(close)}" if close else ""


def _metric_column(path: Path, variant: dict, columns: list[str], metric: str | None) -> str:
    """The column plotted for one run (see :func:`load_runs`)."""
    if metric is not None and "/" not in metric:  # a leaf: the own policy's column where logged
        present = [c for c in (f"Evaluation/p/{metric}", f"Evaluation/{metric}") if c in columns]
        if not present:
            raise click.BadParameter(f"neither Evaluation/p/{metric} nor Evaluation/{metric} is a column of "
                                     f"{path / 'progress.csv'}" + _close_matches(f"Evaluation/{metric}", columns),
                                     param_hint="'--metric'")
        return present[0]
    if metric is not None:
        if metric not in columns:
            raise click.BadParameter(f"metric {metric!r} is not a column of {path / 'progress.csv'}"
                                     + _close_matches(metric, columns), param_hint="'--metric'")
        return metric
    candidates = default_metrics(str(variant.get("env", "")))
    present = [c for c in candidates if c in columns]
    if not present:
        raise click.BadParameter(
            f"{path / 'progress.csv'} has neither default metric {' nor '.join(candidates)}"
            + _close_matches(candidates[-1], columns) + "; choose one with --metric", param_hint="'--metric'")
    return present[0]


def _read(path: Path):
    """(variant, progress frame) of a run dir; click.BadParameter naming the unreadable file."""
    import pandas as pd

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
    return variant, progress


def load_runs(logdirs: Iterable[str | Path], metric: str | None = None, log: Log = stderr_log) -> list[Run]:
    """Read and check every run (before anything is drawn) and resolve each run's metric column.

    Default metric, per run: ``Evaluation/p/SuccessRate`` if the run logs it (QMP's own policies),
    else ``Evaluation/SuccessRate``; the ``AverageReturn`` counterparts for suites whose success is
    meaningless. A leaf ``metric`` without '/' (``StagesCompleted``) is resolved the same way; a
    full column must exist in every run. A run found below a parent dir whose progress.csv has no
    value of the metric yet (a run that has just started) is skipped with a note; a LOGDIR named
    explicitly is an error instead.

    Raises:
        click.BadParameter: see :func:`find_run_dirs`; an unreadable file; ``metric`` (or, without
            it, both default columns) missing from a run; a LOGDIR without any value of it; no run
            left to plot.
    """
    runs = []
    for path, explicit in _find_run_dirs(logdirs, log):
        variant, progress = _read(path)
        if progress.empty and not explicit:
            log(f"note: skipping {path}: progress.csv has no rows yet")
            continue
        if "TotalEnvSteps" not in progress.columns:
            raise click.BadParameter(f"{path / 'progress.csv'} has no TotalEnvSteps column", param_hint="LOGDIR")
        run = Run(path=path, variant=variant, progress=progress,
                  metric=_metric_column(path, variant, list(progress.columns), metric))
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
