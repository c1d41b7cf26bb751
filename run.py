#!/usr/bin/env python
"""Command line: ``python run.py EXPERIMENT [--env ID] [flags]`` (reference §1).

List-valued flags accept the original's space-separated form (``--hidden_sizes 512 512``)
as well as ``--hidden_sizes=512,512``. Boolean flags take a value (``--include_task_id True``).
"""

from __future__ import annotations

import dataclasses
import sys

import click

from experiment_utils import ENV_PRESETS, config_fields, resolve_config
from garage_experiments import EXPERIMENTS, run_experiment, validate


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


_PRESET_FLAGS = {k for preset in ENV_PRESETS.values() for k in preset}


def _options_for(experiment: str):
    def decorate(fn):
        for field in reversed(config_fields()):
            only = field.metadata.get("only")
            if only is not None and experiment not in only:
                continue
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            preset = " unless the --env preset sets it" if field.name in _PRESET_FLAGS else ""
            help_text = f"{field.metadata['help']} [default: {default}{preset}]"
            fn = click.option(f"--{field.name}", field.name, type=_click_type(field),
                              default=None, help=help_text)(fn)
        return fn
    return decorate


class ExperimentGroup(click.Group):
    def resolve_command(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            raise click.UsageError(f"unknown EXPERIMENT {args[0]!r}; allowed: "
                                   f"{', '.join(self.commands)}")
        return super().resolve_command(ctx, args)


@click.group(cls=ExperimentGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli():
    """QMP multi-task RL experiments. Run `python run.py EXPERIMENT --help` for its flags."""


def _make_command(experiment: str):
    @cli.command(name=experiment, help=EXPERIMENTS[experiment].summary)
    @_options_for(experiment)
    def command(**flags):
        config = resolve_config(experiment, flags)
        try:
            validate(config)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
        log_dir, final = run_experiment(config)
        click.echo(f"log dir: {log_dir}")
        keys = ("Evaluation/SuccessRate", "Evaluation/p/SuccessRate", "Evaluation/AverageReturn",
                "Evaluation/p/AverageReturn")
        for key in keys:
            if key in final:
                click.echo(f"final {key}: {final[key]:.3f}")
    return command


for _name in EXPERIMENTS:
    _make_command(_name)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=normalise_argv(list(sys.argv[1:] if argv is None else argv)),
             prog_name="run.py")


if __name__ == "__main__":
    main()
