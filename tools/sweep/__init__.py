"""Sweeps: experiments x envs x flag values x seeds, one ``run.py`` subprocess per trial, each
trial a Ray task.

``python run.py sweep --experiments qmp_dnc,dnc_sac --envs MazeLarge-10-v0 --seeds 0-2
--grid kl_coeff=0,0.01 --sweep_name maze -- --n_epochs 100``

* Trials (:mod:`.grid`): the cartesian product of ``--experiments``, ``--envs``, every ``--grid
  FLAG=v1,v2`` (one axis per flag) and ``--seeds``. Trial ``<experiment>_<env>[_<flag>=<value>...]_s<seed>``
  runs ``sys.executable run.py EXPERIMENT --env ENV --seed S [--flag=value ...] [extra]
  --log_dir ROOT/<trial> --num_threads N --device D`` with the repository root as cwd and its
  console output in ``ROOT/<trial>.log``. Arguments after ``--`` (``extra``) go to every trial.
* Checks (:mod:`.checks`), before Ray starts: names, ``--grid`` syntax, every trial's flags exactly
  as ``run.py EXPERIMENT`` checks them (its click command, taken from the CLI group that hosts
  ``sweep``, so this package never imports ``run.py``, + ``garage_experiments.validate``), and that
  every finished trial in ROOT was run with the flags it would get now (its ``variant.json``;
  ``--num_threads``/``--device`` may differ).
* Running (:mod:`.runner`, :mod:`.trial`): each trial is a Ray task with ``num_cpus=--cpus_per_trial``
  (also its ``--num_threads``) and ``num_gpus=--gpus_per_trial`` (``--device cuda`` when > 0). Without
  ``--address`` a local Ray instance is started with one CPU per usable core and shut down at the
  end; ``--address`` connects to a cluster whose nodes see the repository and ROOT at the same
  paths. Ray re-runs a task whose worker or node died (``--max_retries``).
* Re-launch (same ``--root``/``--sweep_name``), e.g. after a preemption: a finished trial
  (``final_evaluation.json``) is skipped; an unfinished one whose dir holds a snapshot
  (``params.pt``) of a run with the same flags continues through ``run.py resume LOGDIR``, its
  console output appended to ``ROOT/<trial>.log``; any other unfinished dir is moved to
  ``<ROOT>.failed/<trial>.failed-N`` (beside ROOT, so that ``run.py plot ROOT`` never averages a
  partial run in) and the trial starts afresh. Runs started with ``--snapshot_buffer True`` continue
  exactly (the same progress.csv as an uninterrupted run).
* Signals: SIGINT/SIGTERM to the driver asks every running trial to stop (one SIGTERM each: it
  finishes its epoch, saves a snapshot and exits 143, saying so in its console log), waits for them
  (``--stop_timeout``), prints the summary, shuts Ray down and exits 130/143.
* The end: a summary table (trial, status done/skipped/interrupted/failed, exit code, seconds, log
  file); the command exits with 1 when any trial failed or was interrupted.
"""

from tools.sweep.checks import NOT_COMPARED, check_names, finished_mismatches, validate_trials
from tools.sweep.command import default_root, sweep_command
from tools.sweep.grid import CONTROLLED_FLAGS, Trial, expand_grid, parse_grid, parse_list, parse_seeds
from tools.sweep.runner import STATUSES, SweepInterrupted, TrialResult, format_summary, run_sweep
from tools.sweep.trial import FINAL_FILE, REPO_ROOT, can_resume, failed_root, is_finished, move_aside

__all__ = ["CONTROLLED_FLAGS", "FINAL_FILE", "NOT_COMPARED", "REPO_ROOT", "STATUSES", "SweepInterrupted", "Trial",
           "TrialResult", "can_resume", "check_names", "default_root", "expand_grid", "failed_root",
           "finished_mismatches", "format_summary", "is_finished", "move_aside", "parse_grid", "parse_list",
           "parse_seeds", "run_sweep", "sweep_command", "validate_trials"]
