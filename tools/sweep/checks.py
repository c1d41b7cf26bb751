"""Checks made before Ray starts: names, every trial's flags (exactly as ``run.py EXPERIMENT``
parses and validates them) and the agreement of the runs already in ROOT with the flags their
trials get now."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Mapping, Sequence

import click

from tools.sweep.grid import Trial
from tools.sweep.trial import REPO_ROOT, is_finished

# variant.json keys a re-launch may change without invalidating a run of the trial.
NOT_COMPARED = ("log_dir", "num_threads", "device", "gpu")


@contextlib.contextmanager
def _cwd(path: Path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def check_names(experiments: Sequence[str], envs: Sequence[str]) -> None:
    """Raise ValueError for an unknown experiment or env id (listing the allowed ones)."""
    import environments
    from environments.single import is_single_task_id
    from garage_experiments import EXPERIMENTS

    bad = [e for e in experiments if e not in EXPERIMENTS]
    if bad:
        raise ValueError(f"--experiments: unknown {', '.join(map(repr, bad))}; allowed: {', '.join(EXPERIMENTS)}")
    known = environments.known_env_ids()
    bad = [e for e in envs if e not in known and not is_single_task_id(e)]
    if bad:
        raise ValueError(f"--envs: unknown {', '.join(map(repr, bad))}; allowed: {', '.join(known)}, "
                         "or a registered gymnasium id with a Box action space (e.g. HalfCheetah-v5)")


def validate_trials(trials: Sequence[Trial], root: Path, commands: Mapping[str, click.Command]) -> dict[str, dict]:
    """Check every trial's flags as ``run.py EXPERIMENT`` would, without running anything;
    returns each trial's configuration as its ``variant.json`` will hold it (without the
    sweep-set keys :data:`NOT_COMPARED`), by trial name.

    Args:
        trials: the sweep's trials.
        root: the sweep dir (the trials' ``--log_dir`` parent).
        commands: experiment name -> the click command that parses its flags (the commands of
            the CLI group that hosts ``sweep``; this module never imports ``run.py``).

    One check per (experiment, env, grid values, extra); the device is checked as ``cpu``, since
    the machine that runs the sweep need not have the trials' GPUs. Relative paths in flags
    (e.g. ``--mixture_probs``) are resolved against the repository root, the trials' cwd.

    Raises:
        ValueError: ``trial <name>: <run.py's message>``.
    """
    from experiment_utils import config_fields, resolve_config
    from garage_experiments import validate

    fields = {f.name for f in config_fields()}
    checked: dict[tuple, dict] = {}
    expected: dict[str, dict] = {}
    for trial in trials:
        key = (trial.experiment, trial.env, trial.flags, trial.extra)
        if key in checked:
            expected[trial.name] = {**checked[key], "seed": trial.seed}
            continue
        args = trial.run_args(root / trial.name, 1, "cpu")
        try:
            with commands[trial.experiment].make_context(f"run.py {trial.experiment}", args[1:]) as ctx:
                flags = {k: v for k, v in ctx.params.items() if k in fields}  # not e.g. --dry_run
                config = resolve_config(trial.experiment, flags)
            with _cwd(REPO_ROOT):
                validate(config)
        except click.exceptions.Exit:
            raise ValueError(f"trial {trial.name}: run.py exits before running "
                             f"(--help among the arguments?)") from None
        except click.ClickException as err:
            raise ValueError(f"trial {trial.name}: {err.format_message()}") from None
        except ValueError as err:
            raise ValueError(f"trial {trial.name}: {err}") from None
        as_json = json.loads(json.dumps(config.to_dict(), default=str))
        checked[key] = {k: v for k, v in as_json.items() if k not in NOT_COMPARED}
        expected[trial.name] = checked[key]
    return expected


def variant_mismatch(log_dir: Path, expected: dict) -> str | None:
    """Why the run in ``log_dir`` is not a run of the trial ``expected`` describes (its
    ``variant.json`` is unreadable or holds other values), or None when it is."""
    try:
        stored = json.loads((log_dir / "variant.json").read_text())
    except (OSError, ValueError):
        return "no readable variant.json"
    diff = [f"--{k} {stored[k]!r} there, {v!r} now" for k, v in expected.items() if k in stored and stored[k] != v]
    return "; ".join(diff) or None


def finished_mismatches(trials: Sequence[Trial], root: Path, expected: dict[str, dict]) -> list[str]:
    """Finished trials under ``root`` whose ``variant.json`` differs from ``expected`` (e.g. an
    earlier sweep into the same root with other flags after --), one line each."""
    lines = []
    for trial in trials:
        log_dir = root / trial.name
        if trial.name in expected and is_finished(log_dir):
            why = variant_mismatch(log_dir, expected[trial.name])
            if why:
                lines.append(f"{trial.name}: {why}")
    return lines
