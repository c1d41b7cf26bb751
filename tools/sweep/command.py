"""``run.py sweep``: the command line of :mod:`tools.sweep`."""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path

import click

from tools.sweep.checks import check_names, finished_mismatches, validate_trials
from tools.sweep.grid import expand_grid, parse_grid, parse_list, parse_seeds
from tools.sweep.runner import SweepInterrupted, format_summary, run_sweep
from tools.sweep.trial import REPO_ROOT, can_resume, is_finished, resume_args


def default_root(sweep_name: str | None) -> Path:
    return Path("data/sweeps") / (sweep_name or time.strftime("%Y%m%d-%H%M%S"))


def experiment_commands(ctx: click.Context) -> dict[str, click.Command]:
    """The experiment commands of the CLI group that hosts ``sweep`` (``run.py``'s), which parse
    each trial's flags exactly as ``run.py EXPERIMENT`` does.

    Raises:
        click.UsageError: ``sweep`` runs outside such a group.
    """
    from garage_experiments import EXPERIMENTS

    group = ctx.parent.command if ctx.parent is not None else None
    commands = getattr(group, "commands", {})
    found = {name: commands[name] for name in EXPERIMENTS if name in commands}
    if not found:
        raise click.UsageError("sweep checks trials with the experiment commands of run.py: "
                               "run it as `python run.py sweep ...`")
    return found


def _dry_run(trials, root_path: Path, cpus_per_trial: int, gpus_per_trial: float, address: str | None) -> None:
    device = "cuda" if gpus_per_trial > 0 else "cpu"
    for t in trials:
        log_dir = root_path / t.name
        if is_finished(log_dir):
            prefix, args = "# finished, skipped: ", t.run_args(log_dir, cpus_per_trial, device)
        elif can_resume(log_dir):
            prefix, args = "# unfinished, resumed from its snapshot: ", resume_args(log_dir)
        else:
            prefix, args = "", t.run_args(log_dir, cpus_per_trial, device)
        click.echo(prefix + f"{shlex.quote(sys.executable)} run.py " + shlex.join(args))
    click.echo(f"# {len(trials)} trials, cwd {REPO_ROOT}, "
               f"Ray: {address or 'local instance'}, {cpus_per_trial} CPU / {gpus_per_trial:g} GPU each")


@click.command(name="sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiments", required=True, help="comma list, e.g. qmp_dnc,dnc_sac")
@click.option("--envs", required=True, help="comma list of env ids, e.g. MazeLarge-10-v0,JacoReachMT5-v1")
@click.option("--seeds", default="0", show_default=True, help="comma list and/or ranges: 0,1,2 or 0-2")
@click.option("--grid", multiple=True, metavar="FLAG=V1,V2",
              help="a run.py flag and its values, one axis of the cartesian product (repeatable); "
                   "a list value takes spaces: \"hidden_sizes=64 64,256 256\"")
@click.option("--root", default=None, help="sweep dir holding one log dir per trial "
              "[default: data/sweeps/<--sweep_name or a timestamp>]; re-launch with the same one to resume: "
              "finished trials are skipped, unfinished ones continue from their snapshots")
@click.option("--sweep_name", default=None, help="name of the default --root")
@click.option("--cpus_per_trial", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ray CPUs per trial, also the trial's --num_threads")
@click.option("--gpus_per_trial", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Ray GPUs per trial (fractions share a GPU); > 0 gives --device cuda, else --device cpu")
@click.option("--address", default=None,
              help="existing Ray cluster (e.g. auto or HOST:6379) [default: start a local instance]")
@click.option("--num_cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray instance [default: the usable cores]")
@click.option("--max_retries", type=click.IntRange(min=0), default=3, show_default=True,
              help="Ray re-runs a trial whose worker or node died this many times; the re-run resumes "
                   "from the trial's snapshot")
@click.option("--stop_timeout", type=click.FloatRange(min=0), default=600, show_default=True,
              help="on SIGINT/SIGTERM, seconds to wait for the trials to finish their epoch and save a "
                   "snapshot before they are cancelled")
@click.option("--dry_run", is_flag=True, help="print the trial commands and exit")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- RUN.PY FLAGS...]")
@click.pass_context
def sweep_command(ctx, experiments, envs, seeds, grid, root, sweep_name, cpus_per_trial, gpus_per_trial,
                  address, num_cpus, max_retries, stop_timeout, dry_run, extra):
    """Run a grid of experiments x envs x --grid flag values x seeds as Ray tasks.

    One log dir per trial, ROOT/<experiment>_<env>[_<flag>=<value>...]_s<seed>, console output in
    ROOT/<trial>.log. Re-launched with the same ROOT (after a crash or a preemption), it skips
    finished trials (final_evaluation.json present), continues unfinished ones from their
    snapshot (params.pt) through `run.py resume`, and moves an unfinished dir without a snapshot
    to ROOT.failed/<trial>.failed-N before running the trial again. SIGINT/SIGTERM stop every
    trial after its epoch (snapshot saved) and exit 130/143. Exits 1 if any trial failed or was
    interrupted.
    """
    try:
        exps, env_ids = parse_list(experiments, "experiments"), parse_list(envs, "envs")
        seed_list, axes = parse_seeds(seeds), parse_grid(grid)
        if root and sweep_name:
            raise ValueError("give --root or --sweep_name, not both")
        if sweep_name is not None and (not sweep_name or "/" in sweep_name):
            raise ValueError(f"--sweep_name must be a non-empty name without '/', got {sweep_name!r}")
        root_path = (Path(root) if root else default_root(sweep_name)).absolute()
        check_names(exps, env_ids)
        trials = expand_grid(exps, env_ids, seed_list, axes, extra)
        expected = validate_trials(trials, root_path, experiment_commands(ctx))
        mismatches = finished_mismatches(trials, root_path, expected)
        if mismatches:
            raise ValueError(f"{len(mismatches)} finished trial(s) in {root_path} were run with other "
                             "flags; use another --root (or remove those dirs to re-run them):\n  "
                             + "\n  ".join(mismatches))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    if dry_run:
        _dry_run(trials, root_path, cpus_per_trial, gpus_per_trial, address)
        return
    try:
        results = run_sweep(trials, root_path, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
                            address=address, num_cpus=num_cpus, expected=expected, max_retries=max_retries,
                            stop_timeout=stop_timeout, echo=click.echo)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    except SweepInterrupted as stop:
        ctx.exit(stop.exit_code)
    click.echo(format_summary(results))
    if any(r.status in ("failed", "interrupted") for r in results):
        ctx.exit(1)
