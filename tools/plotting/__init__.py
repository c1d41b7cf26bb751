"""Plots of experiment log dirs: ``python run.py plot LOGDIR... [--metric KEY] [--out FILE]``.

Every figure is made from the files a run writes (``variant.json`` and ``progress.csv``), with one
panel, or one block of panels, per suite (``--env``): success and return never share an axis.

* ``FILE`` (``plot.png`` by default): the metric against ``TotalEnvSteps``, one panel per suite, one
  line per group of runs: the mean over seeds with a band, the 95 % percentile-bootstrap CI of the
  mean for 3 or more seeds, the min-max band (so labelled) for 2 seeds, none for one.
* ``<stem>_tasks.<ext>``: the same per task, a block per suite, one panel per ``.../Task{k}/<leaf>``
  column, titled with the task's name (``variant.json``'s ``resolved.task_names``, else the env registry).
* ``<stem>_selection.<ext>``: per QMP group, the final selection matrix as a heat map: row i is the
  task whose data were collected, column j the policy that acted
  (``Train/LocalPolicy{i}/Policy{j}Prob``; CTPG's ``Guide{j}Prob`` as well), averaged over seeds at
  each run's last logged epoch. Skipped with a note when no run logs these columns
  (``--log_per_task summary`` / ``none``).
* ``<stem>_summary.<ext>`` and ``<stem>_summary.csv``: rliable's interquartile mean and mean of the
  final performance (the metric at each run's last evaluated epoch) per group, with 95 % stratified
  bootstrap confidence intervals (min-max below 3 seeds), a row of panels per suite.
* ``<stem>_thresholds.csv`` (with ``--thresholds 0.8,1.0``): per run, the first ``TotalEnvSteps`` at
  which the metric reaches each threshold, and the group's median over seeds.

Modules: :mod:`.runs` (reading run dirs, the metric of each run), :mod:`.grouping` (groups by
``variant.json``; bookkeeping keys ignored; duplicate seeds), :mod:`.curves` (means and bands),
:mod:`.tables` (selection, summary, thresholds), :mod:`.drawing` (figures), :mod:`.command`
(``make_plots`` and the click command). Heavy imports (pandas, matplotlib, rliable) happen only when
plotting, so importing this package (as ``run.py`` does) stays cheap. Bad input (a LOGDIR without
``variant.json``/``progress.csv``, an unknown metric) fails with a usage error (exit code 2) before
anything is drawn.
"""

from tools.plotting.command import FORMATS, make_figures, make_plots, plot_command
from tools.plotting.curves import (BOOTSTRAP_REPS, BOOTSTRAP_SEED, MIN_SEEDS_FOR_CI, Curve, aggregate, band_kind,
                                   bootstrap_mean_ci, common_grid, compute_curves, compute_task_curves, task_column)
from tools.plotting.drawing import draw_curves, draw_selection, draw_summary, draw_task_grid
from tools.plotting.grouping import DUPLICATE_SEED_MODES, IGNORED_KEYS, Group, group_runs, ignored, settings
from tools.plotting.runs import Run, default_metrics, find_run_dirs, load_runs, success_is_meaningful, task_names
from tools.plotting.tables import (SUMMARY_COLUMNS, Selection, compute_selection, compute_summary,
                                   compute_thresholds, final_score, first_reach, iqm)

__all__ = ["BOOTSTRAP_REPS", "BOOTSTRAP_SEED", "DUPLICATE_SEED_MODES", "FORMATS", "IGNORED_KEYS", "MIN_SEEDS_FOR_CI",
           "SUMMARY_COLUMNS", "Curve", "Group", "Run", "Selection", "aggregate", "band_kind", "bootstrap_mean_ci",
           "common_grid", "compute_curves", "compute_selection", "compute_summary", "compute_task_curves",
           "compute_thresholds", "default_metrics", "draw_curves", "draw_selection", "draw_summary",
           "draw_task_grid", "final_score", "find_run_dirs", "first_reach", "group_runs", "ignored", "iqm",
           "load_runs", "make_figures", "make_plots", "plot_command", "settings", "success_is_meaningful",
           "task_column", "task_names"]
