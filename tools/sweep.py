"""Sweeps: experiments x envs x flag values x seeds, one ``run.py`` subprocess per trial, each
trial a Ray task.

``python run.py sweep --experiments qmp_dnc,dnc_sac --envs MazeLarge-10-v0 --seeds 0-2
--grid kl_coeff=0,0.01 --sweep_name maze -- --n_epochs 100``

* Trials: the cartesian product of ``--experiments``, ``--envs``, every ``--grid FLAG=v1,v2``
  (one axis per flag) and ``--seeds``. Trial ``<experiment>_<env>[_<flag>=<value>...]_s<seed>``
  runs ``sys.executable run.py EXPERIMENT --env ENV --seed S [--flag=value ...] [extra]
  --log_dir ROOT/<trial> --num_threads N --device D`` with the repository root as cwd and its
  console output in ``ROOT/<trial>.log``. Arguments after ``--`` (``extra``) go to every trial.
* Resources: each trial is a Ray task with ``num_cpus=--cpus_per_trial`` (also its
  ``--num_threads``) and ``num_gpus=--gpus_per_trial`` (``--device cuda`` when > 0, Ray sets
  ``CUDA_VISIBLE_DEVICES``; else ``--device cpu``). Without ``--address`` a local Ray instance is
  started with one CPU per usable core (``--num_cpus`` to change) and shut down at the end;
  ``--address`` connects to an existing cluster, whose nodes must see the repository and ROOT at
  the same paths (a shared file system).
* Re-launch (same ``--root``/``--sweep_name``): a trial whose log dir holds
  ``final_evaluation.json`` (written only when every epoch ran) is skipped. A log dir without it
  (crashed or interrupted run) is moved to ``<ROOT>.failed/<trial>.failed-N`` (N = 1, 2, ...;
  its old ``<trial>.log`` goes inside as ``sweep.log``; beside ROOT, not in it, so that
  ``run.py plot ROOT`` never averages a partial run in) and the trial runs again in a fresh dir,
  so run.py never has to suffix ``--log_dir``. When every trial is finished Ray is not started.
* Inputs are checked before Ray starts: names, ``--grid`` syntax, every trial's flags exactly
  as ``run.py EXPERIMENT`` checks them (click parsing + ``garage_experiments.validate``), and
  that every finished trial in ROOT was run with the flags it would get now (its
  ``variant.json``; ``--num_threads``/``--device`` may differ): a re-launch with other flags after
  ``--`` must use another root instead of silently "skipping" runs of another configuration.
* The end: a summary table (trial, status done/skipped/failed, exit code, seconds, log file);
  the command exits with 1 when any trial failed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import click

REPO_ROOT = Path(__file__).resolve().parents[1]
RUN_PY = REPO_ROOT / "run.py"
FINAL_FILE = "final_evaluation.json"
# Flags the sweep sets for every trial; they may not appear in --grid or after --.
CONTROLLED_FLAGS = ("env", "seed", "log_dir", "num_threads", "device", "gpu")
STATUSES = ("done", "skipped", "failed")
# variant.json keys a re-launch may change without invalidating a finished trial.
NOT_COMPARED = ("log_dir", "num_threads", "device", "gpu")


@dataclass(frozen=True)
class Trial:
    """One run: ``run.py EXPERIMENT --env ENV --seed SEED`` plus grid flag values and extra args."""

    experiment: str
    env: str
    seed: int
    flags: tuple[tuple[str, str], ...] = ()  # (flag, value) of each --grid axis, in --grid order
    extra: tuple[str, ...] = ()  # arguments given after -- (the same for every trial)

    @property
    def name(self) -> str:
        """Log dir name: ``<experiment>_<env>[_<flag>=<value>...]_s<seed>``."""
        parts = [self.experiment, self.env, *(f"{k}={_slug(v)}" for k, v in self.flags), f"s{self.seed}"]
        return "_".join(parts)

    def run_args(self, log_dir: Path | str, num_threads: int, device: str) -> list[str]:
        """Arguments after ``run.py``."""
        return [self.experiment, "--env", self.env, "--seed", str(self.seed),
                *(f"--{k}={v}" for k, v in self.flags), *self.extra,
                "--log_dir", str(log_dir), "--num_threads", str(num_threads), "--device", device]


@dataclass
class TrialResult:
    trial: Trial
    status: str  # done | skipped | failed
    exit_code: int | None  # None: skipped, or the Ray task itself failed / was cancelled
    seconds: float
    log_dir: Path
    log_file: Path
    moved_aside: Path | None = None  # where a stale log dir of an earlier attempt went
    error: str = ""  # why a failed trial has no exit code (Ray error, interrupted)

    @property
    def name(self) -> str:
        return self.trial.name


@dataclass
class _Pending:
    trial: Trial
    log_dir: Path
    log_file: Path
    moved_aside: Path | None = None
    ref: object = field(default=None, repr=False)


# ----------------------------------------------------------------------------------------------
# Parsing and the grid


def _slug(value: str) -> str:
    """A flag value as it appears in a dir name: spaces and path-unsafe characters become '-'."""
    return re.sub(r"[^A-Za-z0-9.+\-]", "-", value.strip())


def parse_list(text: str, what: str) -> list[str]:
    """``"a,b , c"`` -> ``["a", "b", "c"]``; duplicates and empty lists raise ValueError."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise ValueError(f"--{what} is empty")
    dup = sorted({s for s in items if items.count(s) > 1})
    if dup:
        raise ValueError(f"--{what} lists {', '.join(dup)} more than once")
    return items


def parse_seeds(text: str) -> list[int]:
    """``"0,1,2"``, ``"0-2"`` or mixed (``"0-2,7"``) -> ``[0, 1, 2, (7)]``."""
    seeds: list[int] = []
    for part in parse_list(text, "seeds"):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise ValueError(f"--seeds {text!r}: {part!r} is not a seed (N) or a range (N-M)")
        lo, hi = int(m.group(1)), int(m.group(2) if m.group(2) is not None else m.group(1))
        if hi < lo:
            raise ValueError(f"--seeds {text!r}: empty range {part!r}")
        seeds.extend(range(lo, hi + 1))
    if max(seeds) > 2**32 - 1:
        raise ValueError(f"--seeds must be in [0, 2**32 - 1], got {max(seeds)}")
    dup = sorted({s for s in seeds if seeds.count(s) > 1})
    if dup:
        raise ValueError(f"--seeds {text!r} lists seed {dup[0]} more than once")
    return seeds


def _flag_name(token: str) -> str | None:
    return token[2:].split("=", 1)[0] if token.startswith("--") and len(token) > 2 else None


def parse_grid(specs: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``["kl_coeff=0,0.01", "lr=1e-3"]`` -> ``[("kl_coeff", ["0", "0.01"]), ("lr", ["1e-3"])]``.

    Values are comma-separated; a list-valued flag takes its entries space-separated inside one
    value (``--grid "hidden_sizes=64 64,256 256"``). A leading ``--`` on the flag is allowed.
    """
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        flag, sep, values = spec.partition("=")
        flag = flag.strip().removeprefix("--")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", flag):
            raise ValueError(f"--grid {spec!r}: expected FLAG=VALUE[,VALUE...], e.g. kl_coeff=0,0.01")
        if flag in CONTROLLED_FLAGS:
            raise ValueError(f"--grid {spec!r}: --{flag} is set by the sweep "
                             "(use --envs / --seeds / --cpus_per_trial / --gpus_per_trial / --root)")
        if any(flag == f for f, _ in grid):
            raise ValueError(f"--grid {flag}=... is given more than once; list its values in one --grid")
        vals = [v.strip() for v in values.split(",")]
        if not all(vals):
            raise ValueError(f"--grid {spec!r}: empty value")
        if len(set(vals)) != len(vals):
            raise ValueError(f"--grid {spec!r}: a value is listed more than once")
        grid.append((flag, vals))
    return grid


def expand_grid(experiments: Sequence[str], envs: Sequence[str], seeds: Sequence[int],
                grid: Sequence[tuple[str, Sequence[str]]] | dict[str, Sequence[str]] = (),
                extra: Sequence[str] = ()) -> list[Trial]:
    """Every (experiment, env, grid combination, seed), in that nesting order.

    Raises:
        ValueError: two trials would share a log dir name (values equal after :func:`_slug`), or
            ``extra`` sets a flag the sweep controls or a ``grid`` flag.
    """
    axes = list(grid.items()) if isinstance(grid, dict) else list(grid)
    extra = tuple(t for t in extra if t != "--")
    for token in extra:
        name = _flag_name(token)
        if name in CONTROLLED_FLAGS:
            raise ValueError(f"--{name} after -- is set by the sweep for every trial "
                             "(use --envs / --seeds / --cpus_per_trial / --gpus_per_trial / --root)")
        if name is not None and any(name == f for f, _ in axes):
            raise ValueError(f"--{name} is both a --grid flag and an extra argument")
    combos = list(itertools.product(*[[(f, str(v)) for v in vals] for f, vals in axes]))
    trials = [Trial(e, env, int(s), tuple(combo), extra)
              for e in experiments for env in envs for combo in combos for s in seeds]
    seen: dict[str, Trial] = {}
    for t in trials:
        if t.name in seen:
            raise ValueError(f"two trials would share the log dir {t.name!r}: {seen[t.name]} and {t}")
        seen[t.name] = t
    return trials


# ----------------------------------------------------------------------------------------------
# Validation (before Ray starts)


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


def validate_trials(trials: Sequence[Trial], root: Path) -> dict[str, dict]:
    """Check every trial's flags as ``run.py EXPERIMENT`` would, without running anything;
    returns each trial's configuration as its ``variant.json`` will hold it (without the
    sweep-set keys :data:`NOT_COMPARED`), by trial name.

    One check per (experiment, env, grid values, extra); the device is checked as ``cpu``, since
    the machine that runs the sweep need not have the trials' GPUs. Relative paths in flags
    (e.g. ``--mixture_probs``) are resolved against the repository root, the trials' cwd.

    Raises:
        ValueError: ``trial <name>: <run.py's message>``.
    """
    import run  # imported here: run.py imports this module to register the command
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
        args = run.normalise_argv(trial.run_args(root / trial.name, 1, "cpu"))
        command = run.cli.commands[trial.experiment]
        try:
            with command.make_context(f"run.py {trial.experiment}", args[1:]) as ctx:
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


def finished_mismatches(trials: Sequence[Trial], root: Path, expected: dict[str, dict]) -> list[str]:
    """Finished trials under ``root`` whose ``variant.json`` differs from ``expected`` (e.g. an
    earlier sweep into the same root with other flags after --), one line each."""
    lines = []
    for trial in trials:
        log_dir = root / trial.name
        if trial.name not in expected or not is_finished(log_dir):
            continue
        try:
            stored = json.loads((log_dir / "variant.json").read_text())
        except (OSError, ValueError):
            lines.append(f"{trial.name}: no readable variant.json")
            continue
        diff = [f"--{k} {stored[k]!r} there, {v!r} now" for k, v in expected[trial.name].items()
                if k in stored and stored[k] != v]
        if diff:
            lines.append(f"{trial.name}: {'; '.join(diff)}")
    return lines


# ----------------------------------------------------------------------------------------------
# Running


def is_finished(log_dir: Path) -> bool:
    return (log_dir / FINAL_FILE).is_file()


def failed_root(root: Path) -> Path:
    """Where unfinished attempts go: ``<ROOT>.failed``, beside ROOT so that tools reading every
    run dir below ROOT (``run.py plot ROOT``) never see a partial run."""
    return root.with_name(root.name + ".failed")


def move_aside(log_dir: Path, log_file: Path | None = None) -> Path:
    """Move an unfinished log dir to ``<ROOT>.failed/<trial>.failed-N`` (first free N >= 1); the
    trial's old console log, when given and present, moves inside it as ``sweep.log``."""
    aside = failed_root(log_dir.parent)
    aside.mkdir(exist_ok=True)
    n = 1
    while (aside / f"{log_dir.name}.failed-{n}").exists():
        n += 1
    target = aside / f"{log_dir.name}.failed-{n}"
    if log_dir.is_dir():
        log_dir.rename(target)
    else:  # a stray file where the dir should be
        target.mkdir()
        log_dir.rename(target / log_dir.name)
    if log_file is not None and log_file.is_file():
        shutil.move(str(log_file), str(target / "sweep.log"))
    return target


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the trial when its Ray worker dies (cancelled sweep, Ray shut down)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def run_trial_process(run_args: list[str], cwd: str, log_file: str) -> tuple[int, float]:
    """Run ``<this python> run.py *run_args`` in ``cwd``, console output to ``log_file``;
    returns (exit code, seconds). The body of each Ray task."""
    import subprocess

    argv = [sys.executable, str(Path(cwd) / "run.py"), *run_args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.monotonic()
    with open(log_file, "w") as out:
        out.write(f"$ cd {shlex.quote(cwd)} && {shlex.join(argv)}\n")
        out.flush()
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.STDOUT,
                              preexec_fn=_die_with_parent if sys.platform == "linux" else None)
    return proc.returncode, time.monotonic() - start


def default_num_cpus() -> int:
    """Cores this process may use (affinity mask), else ``os.cpu_count()``."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address`` or start a local instance; returns whether this call started it."""
    import ray

    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, logging_level="WARNING")
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # no token file for a private instance
        ray.init(address="local", num_cpus=num_cpus or default_num_cpus(), include_dashboard=False,
                 log_to_driver=False, logging_level="WARNING")
    return True


def run_sweep(trials: Sequence[Trial], root: Path | str, *, cpus_per_trial: int = 1,
              gpus_per_trial: float = 0, address: str | None = None, num_cpus: int | None = None,
              echo: Callable[[str], None] = print) -> list[TrialResult]:
    """Run every unfinished trial as a Ray task; returns one result per trial, in trial order.

    Ray is started (locally with ``num_cpus``, or connected to ``address``) only when some trial
    is unfinished, and shut down at the end when this call started it; an already initialised
    Ray is used as it is. A Ray task is never retried (a retry would meet the trial's half-made
    log dir). Ctrl-C cancels the running trials (reported failed) and re-raises.
    """
    if cpus_per_trial < 1:
        raise ValueError(f"cpus_per_trial must be >= 1, got {cpus_per_trial}")
    if gpus_per_trial < 0:
        raise ValueError(f"gpus_per_trial must be >= 0, got {gpus_per_trial}")
    root = Path(root).absolute()
    root.mkdir(parents=True, exist_ok=True)
    device = "cuda" if gpus_per_trial > 0 else "cpu"
    results: dict[str, TrialResult] = {}
    pending: list[_Pending] = []
    for trial in trials:
        log_dir, log_file = root / trial.name, root / f"{trial.name}.log"
        if is_finished(log_dir):
            results[trial.name] = TrialResult(trial, "skipped", None, 0.0, log_dir, log_file)
        else:
            pending.append(_Pending(trial, log_dir, log_file))
    echo(f"sweep: {len(trials)} trials in {root}: {len(results)} finished (skipped), "
         f"{len(pending)} to run")
    if not pending:
        return [results[t.name] for t in trials]

    import ray

    started = _start_ray(address, num_cpus)
    try:
        available = ray.cluster_resources()
        for key, need in (("CPU", cpus_per_trial), ("GPU", gpus_per_trial)):
            have = available.get(key, 0)
            if need > have:
                msg = f"a trial needs {need} {key} but the Ray cluster has {have:g}"
                if not address:
                    raise ValueError(msg)
                echo(f"warning: {msg}; trials wait until the cluster grows")
        echo(f"Ray: {'local instance' if not address else address}, "
             f"{available.get('CPU', 0):g} CPUs, {available.get('GPU', 0):g} GPUs; per trial "
             f"{cpus_per_trial} CPU (--num_threads {cpus_per_trial}), {gpus_per_trial:g} GPU "
             f"(--device {device})")
        # Workers need not be able to import this module (their sys.path is the driver's cwd and
        # site-packages): ship the task body, which uses the standard library only, by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(
            run_trial_process)
        for p in pending:
            if p.log_dir.exists():
                p.moved_aside = move_aside(p.log_dir, p.log_file)
                echo(f"unfinished {p.log_dir.name} moved aside to {p.moved_aside}")
            args = p.trial.run_args(p.log_dir, cpus_per_trial, device)
            p.ref = task.remote(args, str(REPO_ROOT), str(p.log_file))
        by_ref = {p.ref: p for p in pending}
        waiting = list(by_ref)
        try:
            while waiting:
                ready, waiting = ray.wait(waiting, num_returns=1)
                p = by_ref[ready[0]]
                try:
                    code, seconds = ray.get(ready[0])
                    ok = code == 0 and is_finished(p.log_dir)
                    res = TrialResult(p.trial, "done" if ok else "failed", code, seconds, p.log_dir,
                                      p.log_file, p.moved_aside,
                                      "" if ok or code != 0 else f"exit 0 but no {FINAL_FILE}")
                except ray.exceptions.RayError as err:
                    res = TrialResult(p.trial, "failed", None, 0.0, p.log_dir, p.log_file,
                                      p.moved_aside, f"Ray task failed: {_first_line(err)}")
                results[p.trial.name] = res
                echo(f"[{len(results)}/{len(trials)}] {res.status} {res.name} "
                     f"(exit {res.exit_code}, {res.seconds:.1f} s)")
        except KeyboardInterrupt:
            for ref in waiting:
                ray.cancel(ref, force=True)
            for ref in waiting:
                p = by_ref[ref]
                results[p.trial.name] = TrialResult(p.trial, "failed", None, 0.0, p.log_dir,
                                                    p.log_file, p.moved_aside, "interrupted")
            echo(format_summary([results[t.name] for t in trials if t.name in results]))
            raise
    finally:
        if started:
            ray.shutdown()
    return [results[t.name] for t in trials]


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


def format_summary(results: Sequence[TrialResult]) -> str:
    """A fixed-width table: trial, status, exit code, seconds, console log file."""
    rows = [("trial", "status", "exit", "seconds", "log")]
    for r in results:
        rows.append((r.name, r.status, "-" if r.exit_code is None else str(r.exit_code),
                     "-" if r.status == "skipped" else f"{r.seconds:.1f}",
                     str(r.log_file) + (f"  ({r.error})" if r.error else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                        row[3].rjust(widths[3]), row[4]]).rstrip() for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)


def default_root(sweep_name: str | None) -> Path:
    return Path("data/sweeps") / (sweep_name or time.strftime("%Y%m%d-%H%M%S"))


# ----------------------------------------------------------------------------------------------
# The command


@click.command(name="sweep", context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--experiments", required=True, help="comma list, e.g. qmp_dnc,dnc_sac")
@click.option("--envs", required=True, help="comma list of env ids, e.g. MazeLarge-10-v0,JacoReachMT5-v1")
@click.option("--seeds", default="0", show_default=True, help="comma list and/or ranges: 0,1,2 or 0-2")
@click.option("--grid", multiple=True, metavar="FLAG=V1,V2",
              help="a run.py flag and its values, one axis of the cartesian product (repeatable); "
                   "a list value takes spaces: \"hidden_sizes=64 64,256 256\"")
@click.option("--root", default=None, help="sweep dir holding one log dir per trial "
              "[default: data/sweeps/<--sweep_name or a timestamp>]; re-launch with the same one to resume")
@click.option("--sweep_name", default=None, help="name of the default --root")
@click.option("--cpus_per_trial", type=click.IntRange(min=1), default=1, show_default=True,
              help="Ray CPUs per trial, also the trial's --num_threads")
@click.option("--gpus_per_trial", type=click.FloatRange(min=0), default=0, show_default=True,
              help="Ray GPUs per trial (fractions share a GPU); > 0 gives --device cuda, else --device cpu")
@click.option("--address", default=None,
              help="existing Ray cluster (e.g. auto or HOST:6379) [default: start a local instance]")
@click.option("--num_cpus", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray instance [default: the usable cores]")
@click.option("--dry_run", is_flag=True, help="print the trial commands and exit")
@click.argument("extra", nargs=-1, type=click.UNPROCESSED, metavar="[-- RUN.PY FLAGS...]")
@click.pass_context
def sweep_command(ctx, experiments, envs, seeds, grid, root, sweep_name, cpus_per_trial,
                  gpus_per_trial, address, num_cpus, dry_run, extra):
    """Run a grid of experiments x envs x --grid flag values x seeds as Ray tasks.

    One log dir per trial, ROOT/<experiment>_<env>[_<flag>=<value>...]_s<seed>, console output in
    ROOT/<trial>.log. Finished trials (final_evaluation.json present) are skipped on re-launch;
    unfinished dirs are moved to ROOT.failed/<trial>.failed-N and re-run. Exits 1 if any trial
    failed.
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
        mismatches = finished_mismatches(trials, root_path, validate_trials(trials, root_path))
        if mismatches:
            raise ValueError(f"{len(mismatches)} finished trial(s) in {root_path} were run with other "
                             "flags; use another --root (or remove those dirs to re-run them):\n  "
                             + "\n  ".join(mismatches))
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    device = "cuda" if gpus_per_trial > 0 else "cpu"
    if dry_run:
        for t in trials:
            command = f"{shlex.quote(sys.executable)} run.py " + shlex.join(
                t.run_args(root_path / t.name, cpus_per_trial, device))
            click.echo(("# finished, skipped: " if is_finished(root_path / t.name) else "") + command)
        click.echo(f"# {len(trials)} trials, cwd {REPO_ROOT}, "
                   f"Ray: {address or 'local instance'}, {cpus_per_trial} CPU / {gpus_per_trial:g} GPU each")
        return
    try:
        results = run_sweep(trials, root_path, cpus_per_trial=cpus_per_trial,
                            gpus_per_trial=gpus_per_trial, address=address, num_cpus=num_cpus,
                            echo=click.echo)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    click.echo(format_summary(results))
    if any(r.status == "failed" for r in results):
        ctx.exit(1)
