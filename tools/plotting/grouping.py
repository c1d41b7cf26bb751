"""Grouping runs by their ``variant.json`` settings (never by directory names), and what a group
does with two runs of the same seed."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Sequence

import click

from tools.plotting.runs import Log, Run, stderr_log

#: variant.json keys that do not distinguish experiments: the seed, names, paths, provenance, resume
#: history, and bookkeeping settings that change speed, files or outputs but not the results.
IGNORED_KEYS = frozenset({
    "seed", "name", "log_dir", "resolved", "argv", "command", "git_commit", "git_dirty", "versions", "resumes",
    "num_threads", "device", "gpu", "snapshot_gap", "n_workers", "snapshot_mode", "snapshot_buffer",
    "log_per_task", "progress_bar",
})
#: key prefixes of the same kind: videos (``vis_freq``, ``vis_fps``, ...) and Weights & Biases.
IGNORED_PREFIXES = ("vis_", "wandb")
DUPLICATE_SEED_MODES = ("once", "each", "refuse")


def ignored(key: str) -> bool:
    """A bookkeeping key (:data:`IGNORED_KEYS`, :data:`IGNORED_PREFIXES`): it never splits groups."""
    return key in IGNORED_KEYS or key.startswith(IGNORED_PREFIXES)


@functools.cache
def _accepted_by() -> dict[str, tuple[str, ...] | None]:
    """Flag -> the experiments that accept it (None: every experiment), from ExperimentConfig."""
    from experiment_utils import ExperimentConfig
    return {f.name: f.metadata.get("only") for f in dataclasses.fields(ExperimentConfig)}


def _irrelevant(key: str, experiment) -> bool:
    """A flag the run's experiment does not accept (e.g. a CTPG guide preset in an mtsac run)."""
    only = _accepted_by().get(key)
    return only is not None and experiment not in only


@dataclasses.dataclass
class Group:
    """Runs with the same settings; one run per seed unless ``--duplicate_seeds each``."""

    label: str
    runs: list[Run]

    @property
    def metrics(self) -> list[str]:
        return sorted({r.metric for r in self.runs})

    @property
    def suite(self) -> str:
        return self.runs[0].suite


def _canonical(value) -> str:
    return json.dumps(value, sort_keys=True)


def _show(value) -> str:
    if isinstance(value, (list, tuple)):
        return ",".join(_show(v) for v in value)
    return str(value)


def settings(run: Run) -> dict[str, str]:
    """The settings that define a run's group: every variant.json key but the :func:`ignored` ones
    and flags its experiment does not accept, as canonical JSON."""
    experiment = run.variant.get("experiment")
    return {k: _canonical(v) for k, v in run.variant.items() if not ignored(k) and not _irrelevant(k, experiment)}


def _labels(by_key: dict[tuple, list[Run]], runs: Sequence[Run]) -> list[Group]:
    """A group's label: experiment, env and the settings that differ between the runs of that
    experiment and env."""
    missing = _canonical(None) + "<missing>"
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


def _one_per_seed(group: Group, mode: str, log: Log) -> Group:
    """Apply ``mode`` to runs of one seed in ``group``: ``once`` keeps the run with the most
    evaluated points (the first by path on a tie), ``each`` keeps them all, ``refuse`` raises; a
    warning names the runs."""
    by_seed: dict[object, list[Run]] = {}
    for run in group.runs:
        by_seed.setdefault(run.variant.get("seed"), []).append(run)
    kept: list[Run] = []
    for seed, runs in by_seed.items():
        if len(runs) == 1 or seed is None:
            kept.extend(runs)
            continue
        runs = sorted(runs, key=lambda r: (-len(r.series(r.metric)[0]), str(r.path)))
        names = ", ".join(str(r.path) for r in runs)
        if mode == "refuse":
            raise click.BadParameter(f"group {group.label!r} has {len(runs)} runs of seed {seed}: {names}; "
                                     "pass --duplicate_seeds once (count the seed once) or each (count every run)",
                                     param_hint="'--duplicate_seeds'")
        if mode == "each":
            log(f"warning: group {group.label!r} has {len(runs)} runs of seed {seed}, each counted as a seed: {names}")
            kept.extend(runs)
        else:
            log(f"warning: group {group.label!r} has {len(runs)} runs of seed {seed}: {names}; counted once "
                f"(kept {runs[0].path}, the one with the most evaluations; --duplicate_seeds each counts them all)")
            kept.append(runs[0])
    order = {id(r): i for i, r in enumerate(group.runs)}
    return Group(group.label, sorted(kept, key=lambda r: order[id(r)]))


def group_runs(runs: Sequence[Run], duplicate_seeds: str = "once", log: Log = stderr_log) -> list[Group]:
    """Runs with equal :func:`settings` form one group; groups come sorted by label.

    Args:
        runs: the loaded runs.
        duplicate_seeds: runs of the same seed in one group (a run copied or re-run into another
            dir): ``once`` counts the seed once, ``each`` counts every run, ``refuse`` is an error;
            a warning naming the runs goes to ``log`` either way.

    Raises:
        click.BadParameter: ``refuse`` and a seed with two runs in a group, or an unknown mode.
    """
    if duplicate_seeds not in DUPLICATE_SEED_MODES:
        raise click.BadParameter(f"{duplicate_seeds!r}; allowed: {', '.join(DUPLICATE_SEED_MODES)}",
                                 param_hint="'--duplicate_seeds'")
    by_key: dict[tuple, list[Run]] = {}
    for run in runs:
        by_key.setdefault(tuple(sorted(settings(run).items())), []).append(run)
    return [_one_per_seed(g, duplicate_seeds, log) for g in _labels(by_key, runs)]
