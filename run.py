#!/usr/bin/env python
"""Command line: ``python run.py EXPERIMENT [--env ID] [flags]`` (reference §1), or ``qmp ...``
once the package is installed (``make venv``).

List-valued flags accept the original's space-separated form (``--hidden_sizes 512 512``)
as well as ``--hidden_sizes=512,512``. Boolean flags take a value (``--include_task_id True``)
or stand alone (``--wandb`` means ``--wandb True``).

Other commands: ``envs`` (the suites), ``resume``, ``evaluate``, ``plot`` and ``sweep`` (``tools/``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

import click

from experiment_utils import (CTPG, DISTILL, DNC, ENV_PRESETS, QMP, SHARING, UDS, ExperimentConfig,
                              config_fields, log_dir_base, package_versions, resolve_config)
from garage_experiments import EXPERIMENTS, build_trainer, parameter_count, resolved_values, validate
from tools.plot import plot_command
from tools.evaluate import evaluate_command
from tools.snapshots import resume_command, train_and_report
from tools.sweep import sweep_command


def _list_flags() -> set[str]:
    return {f.name for f in config_fields() if "tuple" in str(f.type)}


def normalise_argv(argv: list[str]) -> list[str]:
    """Join ``--flag a b c`` into ``--flag=a,b,c`` for list-valued flags."""
    lists, out, i = _list_flags(), [], 0
    while i < len(argv):
        arg = argv[i]
        if arg.startswith("--") and "=" not in arg and arg[2:] in lists:
            values, i = [], i + 1
            while i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            out.append(f"{arg}={','.join(values)}")
            continue
        out.append(arg)
        i += 1
    return out


class IntOrFloatList(click.ParamType):
    def __init__(self, cast):
        self.cast, self.name = cast, f"{cast.__name__}-list"

    def convert(self, value, param, ctx):
        if isinstance(value, tuple):
            return value
        try:
            return tuple(self.cast(v) for v in str(value).replace(",", " ").split())
        except ValueError:
            self.fail(f"{value!r} is not a list of {self.cast.__name__}s", param, ctx)


def _click_type(field: dataclasses.Field):
    text = str(field.type)
    if "tuple" in text:
        return IntOrFloatList(float if "float" in text else int)
    if "bool" in text:
        return click.BOOL
    if "int" in text:
        return click.INT
    if "float" in text:
        return click.FLOAT
    return click.STRING


# ----------------------------------------------------------------------------- help
HELP_ENV = "qmp.help_env"  # ctx.meta key: the --env whose preset the help shows


def _default(field: dataclasses.Field) -> Any:
    return field.default if field.default is not dataclasses.MISSING else field.default_factory()


def _show(value: Any) -> str:
    if value == "":
        return '""'
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) if value else "(none)"
    return str(value)


def default_text(field: dataclasses.Field, experiment: str, env: str | None) -> str:
    """``5000 (MetaWorldMT10-v2 preset)`` where the env's preset sets the flag, else the global
    default (architectures: the experiment's default)."""
    if field.name == "env":
        return env or "none: required"
    preset = ENV_PRESETS.get(env, {})
    if field.name in preset:
        return f"{_show(preset[field.name])} ({env} preset)"
    if field.name in ("policy_architecture", "Q_architecture"):
        return f"{EXPERIMENTS[experiment].default_architecture} ({experiment})"
    return _show(_default(field))


class ConfigOption(click.Option):
    """An ExperimentConfig field as a flag; its help shows the default for the --env given."""

    def __init__(self, field: dataclasses.Field, experiment: str):
        # a bool flag takes a value (--include_task_id True) or stands alone (--include_task_id)
        optional_value = dict(is_flag=False, flag_value=True, metavar="[BOOLEAN]") \
            if "bool" in str(field.type) else {}
        super().__init__([f"--{field.name}", field.name], type=_click_type(field), default=None,
                         **optional_value)
        self.field, self.experiment = field, experiment

    def get_help_record(self, ctx):
        env = ctx.meta.get(HELP_ENV)
        text = self.field.metadata["help"]
        if self.field.name in ("policy_architecture", "Q_architecture"):  # this experiment's choices only
            text = f"{text.split(':')[0]}: {'|'.join(EXPERIMENTS[self.experiment].architectures)}"
        self.help = f"{text} [default: {default_text(self.field, self.experiment, env)}]"
        return super().get_help_record(ctx)


# --help sections: a field goes to the section of the experiments that accept it ("only"), else to
# the section listing it here; fields listed nowhere go to "Other options".
ONLY_SECTIONS = {QMP: "QMP behaviour mixture", CTPG: "CTPG guide", DNC: "DnC regulariser",
                 DISTILL: "DnC distillation", UDS: "UDS data sharing", SHARING: "Parameter-sharing networks"}
HELP_SECTIONS = {
    "Run": ("env", "seed", "name", "preset", "n_epochs", "log_dir", "dry_run"),
    "Collection, updates and replay": ("batch_size", "steps_per_epoch", "gradient_steps_per_itr",
                                       "min_buffer_size", "buffer_batch_size", "replay_buffer_size",
                                       "sparse_tasks"),
    "SAC learner": ("lr", "hidden_sizes", "discount", "target_update_tau", "target_entropy",
                    "reward_scale", "grad_clip", "max_alpha", "temperature_form",
                    "extreme_loss_threshold", "extreme_loss_after", "task_loss_weights"),
    "Networks": ("policy_architecture", "Q_architecture", "include_task_id"),
    "Evaluation and videos": ("num_evaluation_episodes", "evaluation_frequency", "vis_freq", "vis_num",
                              "vis_width", "vis_height", "vis_fps"),
    "Snapshots and logging": ("snapshot_gap", "snapshot_mode", "snapshot_buffer", "log_per_task", "progress_bar", "wandb",
                              "wandb_project", "wandb_entity"),
    "Hardware and parallelism": ("device", "gpu", "num_threads", "n_workers", "envs_per_task"),
}
SECTION_ORDER = ("Run", "Collection, updates and replay", "SAC learner", "Networks",
                 *ONLY_SECTIONS.values(), "Evaluation and videos", "Snapshots and logging",
                 "Hardware and parallelism", "Other options")


def help_section(param: click.Parameter) -> str:
    """The --help section of one option of an experiment command."""
    field = getattr(param, "field", None)
    if "--help" in getattr(param, "opts", ()):
        return "Run"
    if field is not None and field.metadata.get("only") in ONLY_SECTIONS:
        return ONLY_SECTIONS[field.metadata["only"]]
    return next((title for title, names in HELP_SECTIONS.items() if param.name in names), "Other options")


def _env_in(args: list[str]) -> str | None:
    env = None
    for i, arg in enumerate(args):
        if arg == "--env" and i + 1 < len(args):
            env = args[i + 1]
        elif arg.startswith("--env="):
            env = arg[len("--env="):]
    return env


class ExperimentCommand(click.Command):
    """One experiment: help shows the --env preset; a flag of another experiment is named."""

    def parse_args(self, ctx, args):
        args = normalise_argv(args)  # also for callers that skip main(), e.g. the sweep's checks
        ctx.meta[HELP_ENV] = _env_in(args)
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as err:
            raise click.UsageError(foreign_flag_message(err.option_name, self.name) or err.format_message(),
                                   ctx) from None

    def format_options(self, ctx, formatter):
        """The options in sections (:data:`SECTION_ORDER`), each listing only this experiment's flags."""
        sections: dict[str, list] = {}
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None:
                sections.setdefault(help_section(param), []).append(record)
        for title in SECTION_ORDER:
            if title in sections:
                with formatter.section(title):
                    formatter.write_dl(sections[title])

    def format_epilog(self, ctx, formatter):
        env = ctx.meta.get(HELP_ENV)
        if env is None:
            text = ("No --env given: the defaults shown are the global ones. --env is required; run "
                    "with --env ID --help to see a suite's preset values (`run.py envs` lists the suites).")
        else:
            source = (f"values marked '({env} preset)' come from its preset, the others are global defaults"
                      if env in ENV_PRESETS else f"{env} has no preset: global defaults")
            text = (f"Shown for --env={env}: {source}. Flags given on the command line win over presets. "
                    "Run with --env ID --help for another suite.")
        with formatter.section("Defaults"):
            formatter.write_text(text)


def foreign_flag_message(option: str, experiment: str) -> str | None:
    """``--x is not an option of E; it is accepted by: ...`` for another experiment's flag."""
    name = option.split("=", 1)[0].lstrip("-")
    for field in config_fields():
        only = field.metadata.get("only")
        if field.name == name and only is not None and experiment not in only:
            return f"--{name} is not an option of {experiment}; it is accepted by: {', '.join(only)}"
    return None


class ExperimentGroup(click.Group):
    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            others = [c for c in self.commands if c not in EXPERIMENTS]
            raise click.UsageError(f"unknown EXPERIMENT {args[0]!r}; allowed: {', '.join(EXPERIMENTS)}"
                                   f"; other commands: {', '.join(others)}")
        return super().resolve_command(ctx, args)


@click.group(cls=ExperimentGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                    "max_content_width": 120})
def cli():
    """QMP multi-task RL experiments: EXPERIMENT --env ID [flags] trains (python run.py ... or, once
    installed, qmp ...). EXPERIMENT --env ID --help lists the flags with that suite's preset
    values; envs lists the suites."""


# ---------------------------------------------------------------------- suite facts
# Suites whose first env build is slow (Meta-World samples every goal variation of the
# benchmark: about 5 s for MT10 and 25 s for MT50 on a quiet core): listed last by `envs`.
SLOW_SUITES = ("MetaWorldMT10-v2", "MetaWorldMT50-v2")


def cache_path() -> Path:
    """``$QMP_CACHE_DIR`` or ``$XDG_CACHE_HOME/qmp`` (default ``~/.cache/qmp``) / suite_info.json."""
    root = os.environ.get("QMP_CACHE_DIR") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qmp"
    return Path(root) / "suite_info.json"


def _fingerprint() -> str:
    """Changes whenever the environments' code or the simulator packages change."""
    h = hashlib.sha256(json.dumps(package_versions(), sort_keys=True).encode())
    for package in ("gymnasium-robotics", "dm_control"):
        try:
            h.update(f"{package}={metadata.version(package)}".encode())
        except metadata.PackageNotFoundError:
            h.update(f"{package}=None".encode())
    for path in sorted((Path(__file__).resolve().parent / "environments").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(path.name.encode())
            h.update(path.read_bytes())
    return h.hexdigest()


class SuiteInfoCache:
    """Facts about a suite that need an env built (observation and action dims), kept on disk
    so that ``envs`` and ``--dry_run`` do not rebuild Meta-World each time."""

    def __init__(self, path: Path | None = None, refresh: bool = False):
        self.path = path or cache_path()
        self.fingerprint = _fingerprint()
        self.entries: dict[str, dict[str, Any]] = {}
        if not refresh:
            try:
                data = json.loads(self.path.read_text())
                if data.get("fingerprint") == self.fingerprint:
                    self.entries = data["suites"]
            except (OSError, ValueError, KeyError, TypeError):
                pass

    def get(self, env_id: str, suite=None, sparse_tasks: tuple[int, ...] = ()) -> dict[str, Any]:
        if env_id not in self.entries:
            import environments

            suite = suite or environments.get_suite(env_id, sparse_tasks)
            probe = suite.make_env(0)
            raw_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
            probe.close()
            self.entries[env_id] = dict(
                num_tasks=suite.num_tasks, task_names=list(suite.task_names),
                network_obs_dim=len(suite.network_obs_indices(raw_dim, False)),
                raw_obs_dim=int(raw_dim), action_dim=int(act_dim),
                max_episode_steps=suite.max_episode_steps)
            self._save()
        return self.entries[env_id]

    def cached(self, env_id: str) -> bool:
        return env_id in self.entries

    def _save(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "suites": self.entries}, indent=1))
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only home only costs speed


def abbreviate(names: list[str], width: int = 60) -> str:
    """Comma-separated names, cut to ``width`` characters with ``... (+N more)``."""
    text = ", ".join(names)
    if len(text) <= width:
        return text
    shown: list[str] = []
    for k, name in enumerate(names):
        tail = f", ... (+{len(names) - k - 1} more)"
        if len(", ".join([*shown, name])) + len(tail) > width and shown:
            break
        shown.append(name)
    return ", ".join(shown) + f", ... (+{len(names) - len(shown)} more)"


@cli.command(name="envs", short_help="List the suites: tasks, dims, episode length, task names.")
@click.argument("env_ids", nargs=-1)
@click.option("--refresh", is_flag=True, help="rebuild every suite instead of reading the cache")
def envs_command(env_ids: tuple[str, ...], refresh: bool):
    """List the suites: tasks, network observation dim (one-hot task id excluded; --include_task_id
    adds T), action dim, episode length and task names. ENV_IDS: only these (default: every suite).

    Dims are read from a built env and cached (see QMP_CACHE_DIR); the first listing of the
    Meta-World suites builds their benchmarks (about 5 s for MT10 and 25 s for MT50)."""
    import environments

    ids = list(env_ids) or environments.known_env_ids()
    cache = SuiteInfoCache(refresh=refresh)
    ordered = [e for e in ids if e not in SLOW_SUITES or cache.cached(e)] + \
        [e for e in ids if e in SLOW_SUITES and not cache.cached(e)]
    width = max(len("env id"), *(len(e) for e in ids))
    click.echo(f"{'env id':<{width}}  tasks  obs  act  steps  task names")
    for env_id in ordered:
        if not cache.cached(env_id) and env_id in SLOW_SUITES:
            click.echo(f"(building {env_id} to read its dims, once: cached in {cache.path})", err=True)
        try:
            info = cache.get(env_id)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        click.echo(f"{env_id:<{width}}  {info['num_tasks']:>5}  {info['network_obs_dim']:>3}  "
                   f"{info['action_dim']:>3}  {info['max_episode_steps']:>5}  "
                   f"{abbreviate(info['task_names'])}")


# ------------------------------------------------------------------------ experiments
def dry_run_report(config: ExperimentConfig, suite) -> dict[str, Any]:
    """Every field after presets, plus the values resolved from the suite (as variant.json)."""
    info = SuiteInfoCache().get(config.env, suite, tuple(config.sparse_tasks))
    t = suite.num_tasks
    resolved = dict(
        resolved_values(config, t, info["action_dim"]),
        network_obs_dim=info["network_obs_dim"] + (t if config.include_task_id else 0),
        action_dim=info["action_dim"], max_episode_steps=suite.max_episode_steps,
        log_dir=str(log_dir_base(config)))
    return {**config.to_dict(), "resolved": resolved}


def make_experiment_command(experiment: str) -> click.Command:
    """The click command of one experiment: one flag per ExperimentConfig field it accepts."""

    def callback(dry_run: bool, **flags):
        if flags.get("env") is None:  # no silent default suite (a 2000-epoch maze run)
            import environments
            raise click.UsageError(f"--env is required; known ids: {', '.join(environments.known_env_ids())} "
                                   "(or a one-task gymnasium id such as Pendulum-v1; `run.py envs` lists "
                                   "the suites)")
        try:
            config = resolve_config(experiment, flags)
            suite = validate(config)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        if dry_run:
            click.echo(json.dumps(dry_run_report(config, suite), indent=2, default=str))
            return
        trainer = build_trainer(config)
        click.echo(f"log dir: {trainer.log_dir}")
        click.echo(f"parameters: policy {parameter_count(trainer.algorithm.policy):,}, "
                   f"critics {parameter_count(trainer.algorithm.qf):,}")
        train_and_report(trainer)

    params = [ConfigOption(f, experiment) for f in config_fields()
              if f.metadata.get("only") is None or experiment in f.metadata["only"]]
    params.append(click.Option(["--dry_run", "dry_run"], is_flag=True, help="validate, print the resolved configuration as JSON "
                               "and exit without creating a log dir or training"))
    return ExperimentCommand(experiment, callback=callback, params=params,
                             help=EXPERIMENTS[experiment].summary)


for _name in EXPERIMENTS:
    cli.add_command(make_experiment_command(_name))
for _command in (resume_command, evaluate_command, plot_command, sweep_command):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=normalise_argv(list(sys.argv[1:] if argv is None else argv)),
             prog_name=Path(sys.argv[0]).name if argv is None else "run.py")


if __name__ == "__main__":
    main()
