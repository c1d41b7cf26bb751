"""Working with a run's snapshots: ``run.py resume LOGDIR`` and ``run.py evaluate LOGDIR``.

Resume entry points: :func:`resume_run` (the whole ``run.py resume``, returning its exit code,
for callers such as the sweep) and :func:`prepare_resume` (a restored trainer, for the library).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import socket
import sys
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

import click
import numpy as np
import torch

from experiment_utils import read_variant, resolve_device
from garage_experiments import build_trainer, config_from_run
from learning.run_lock import RunLock, RunLockedError
from learning.sampler import evaluate, evaluation_seed
from learning.trainer import NonFiniteLossError, TrainingInterrupted

MODES = {"mop": "", "p": "p/"}  # evaluation mode -> the trainer's log prefix (reference §3.13)
EXIT_LOCKED = 75  # sysexits' EX_TEMPFAIL: another process writes the run; try again later


class InexactResumeWarning(UserWarning):
    """The snapshot holds no replay buffer: the resumed run starts a new warm-up and episodes."""


class SnapshotFallbackWarning(UserWarning):
    """The preferred snapshot was unreadable; an older one is used (the message names both)."""


# ------------------------------------------------------------------------------ snapshots
def _epoch_of(path: Path) -> int:
    match = re.fullmatch(r"itr_(\d+)\.pt", path.name)
    return int(match.group(1)) if match else -1


def read_snapshot(log_dir: Path, preferred: Sequence[str], device, keys: Sequence[str],
                  explicit: Path | None = None) -> tuple[Path, dict]:
    """Load the first readable snapshot: ``explicit`` alone when given, else the ``preferred``
    names in ``log_dir`` and then every ``itr_<epoch>.pt``, newest epoch first.

    A file is readable when ``torch.load`` succeeds and the dict holds one of ``keys``. Passing
    over an unreadable file that exists warns (:class:`SnapshotFallbackWarning`) with the
    reason and the file used instead.

    Returns:
        (the file used, its loaded dict).

    Raises:
        ValueError: nothing readable (the message lists every file tried and why).
    """
    names = [explicit] if explicit is not None else \
        [log_dir / n for n in preferred] + sorted(log_dir.glob("itr_*.pt"), key=_epoch_of, reverse=True)
    problems: list[str] = []
    for path in names:
        if not path.is_file():
            continue
        try:
            state = torch.load(path, map_location=device, weights_only=False)
            if not isinstance(state, dict) or not any(k in state for k in keys) or "epoch" not in state:
                raise ValueError(f"not a snapshot: no {' or '.join(repr(k) for k in keys)}")
        except Exception as err:  # noqa: BLE001 - torch.load raises anything on a damaged file
            problems.append(f"{path.name}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
            continue
        if problems:
            warnings.warn(f"{log_dir}: unreadable snapshot ({'; '.join(problems)}); using {path.name} "
                          f"(epoch {state['epoch']})", SnapshotFallbackWarning, stacklevel=2)
        return path, state
    if explicit is not None:
        raise ValueError(f"--snapshot {explicit}: " + ("; ".join(problems) or "no such file"))
    tried = "; ".join(problems) if problems else f"none of {', '.join(preferred)} or itr_*.pt exists"
    raise ValueError(f"LOGDIR {log_dir} holds no readable snapshot ({tried}); "
                     "the run has not finished an epoch yet, or its snapshots are damaged")


def load_weights(trainer, state: dict) -> int:
    """Load the policy and critic weights of a loaded ``policy.pt`` or ``params.pt`` dict into the
    trainer's algorithm; returns the snapshot's epoch."""
    if "policy" in state:
        trainer.algorithm.policy.load_state_dict(state["policy"])
        trainer.algorithm.qf.load_state_dict(state["qf"])
    else:
        trainer.algorithm.load_state_dict(state["algorithm"])
    return int(state["epoch"])


# ------------------------------------------------------------------------------ resume
def record_resume(log_dir: Path, entry: dict, n_epochs: int) -> None:
    """Append ``entry`` to variant.json's ``"resumes"`` list and set its ``n_epochs`` (the total
    the run now aims at); the file is replaced atomically."""
    path = log_dir / "variant.json"
    variant = read_variant(log_dir)
    variant["n_epochs"] = n_epochs
    variant.setdefault("resumes", []).append(entry)
    tmp = path.with_name(f".variant.json.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(variant, indent=2, default=str))
    tmp.replace(path)


def prepare_resume(log_dir: Path | str, n_epochs: int | None = None):
    """A trainer restored from the run's newest readable snapshot, holding the run's lock.

    Order: read variant.json, take the run's lock (before anything is written), load
    ``params.pt`` (an unreadable one falls back to the newest readable ``itr_<epoch>.pt``, with a
    :class:`SnapshotFallbackWarning`), check that epochs are left, build the trainer, restore it,
    then record the resume in variant.json (``"resumes"``: time, host, pid, snapshot file,
    snapshot epoch, first new epoch, new n_epochs, whether the buffer was restored; top-level
    ``n_epochs`` set to the new total). ``train()`` releases the lock when it returns.

    With ``--snapshot_buffer`` the snapshot holds the replay buffer and env states and the run
    continues exactly as the uninterrupted run would have (on the CPU); without it training
    continues with an empty buffer (a new warm-up) and fresh episodes, announced by an
    :class:`InexactResumeWarning`.

    Args:
        log_dir: the run directory; its logs are appended to.
        n_epochs: a new total number of epochs (to extend a finished run); default the run's.

    Raises:
        ValueError: no or broken variant.json, no readable snapshot, or nothing left to run.
        RunLockedError: another process is writing the run.
    """
    log_dir = Path(log_dir)
    overrides = {} if n_epochs is None else {"n_epochs": n_epochs}
    config = config_from_run(log_dir, **overrides)
    lock = RunLock(log_dir).acquire()
    try:
        device = resolve_device(config.device, config.gpu)
        path, state = read_snapshot(log_dir, ["params.pt"], device, keys=["algorithm"])
        start = int(state["epoch"]) + 1
        if start >= config.n_epochs:
            raise ValueError(f"{log_dir} already ran {start} of --n_epochs {config.n_epochs} epochs; "
                             "pass --n_epochs N (larger) to continue it")
        trainer = build_trainer(config, log_dir)
        trainer.lock = lock
        trainer.load_snapshot(state)
        restored = "buffer" in state
        if not restored:
            warnings.warn(f"{path.name} holds no replay buffer (the run was started without "
                          "--snapshot_buffer True): training continues with an empty buffer (a new "
                          f"warm-up of --min_buffer_size {config.min_buffer_size}) and fresh episodes, "
                          "so it does not continue exactly", InexactResumeWarning, stacklevel=2)
        record_resume(log_dir, {
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "host": socket.gethostname(), "pid": os.getpid(), "snapshot": path.name,
            "snapshot_epoch": start - 1, "from_epoch": start, "n_epochs": config.n_epochs,
            "buffer_restored": restored}, config.n_epochs)
        (log_dir / "final_evaluation.json").unlink(missing_ok=True)
        return trainer
    except BaseException:
        if "trainer" in locals():
            trainer.close()
        lock.release()
        raise


@contextlib.contextmanager
def _warnings_echoed(echo: Callable[..., None]):
    """Show the body's warnings as ``warning: <message>`` lines on stderr."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            for w in caught:
                echo(f"warning: {w.message}", err=True)


FINAL_KEYS = ("Evaluation/SuccessRate", "Evaluation/p/SuccessRate", "Evaluation/AverageReturn",
              "Evaluation/p/AverageReturn")


def train_to_exit_code(trainer, echo: Callable[..., None] = click.echo) -> int:
    """Train and print the final pooled metrics; returns the exit code: 0, 130 / 143 on a
    signal, 1 on a non-finite loss, :data:`EXIT_LOCKED` when another process writes the run."""
    try:
        final = trainer.train()
    except TrainingInterrupted as stop:
        echo(str(stop), err=True)
        return stop.exit_code
    except NonFiniteLossError as err:
        echo(f"error: {err}", err=True)
        return 1
    except RunLockedError as err:
        echo(f"error: {err}", err=True)
        return EXIT_LOCKED
    for key in FINAL_KEYS:
        if key in final:
            echo(f"final {key}: {final[key]:.3f}")
    echo(f"logs in {trainer.log_dir}")
    return 0


def train_and_report(trainer) -> None:
    """:func:`train_to_exit_code`, exiting the process unless it returns 0."""
    code = train_to_exit_code(trainer)
    if code:
        sys.exit(code)


def resume_run(log_dir: Path | str, n_epochs: int | None = None,
               echo: Callable[..., None] = click.echo) -> int:
    """``run.py resume LOGDIR [--n_epochs N]`` as a function: restore (:func:`prepare_resume`),
    train to the end and return the exit code; messages and warnings go to ``echo``.

    Exit codes: 0 finished; 2 bad input (no or broken variant.json, no readable snapshot,
    nothing left to run; message ``Error: ...``); :data:`EXIT_LOCKED` (75) another process
    writes the run (message names its pid and host); 130 / 143 stopped by SIGINT / SIGTERM
    after a snapshot (resume again to continue); 1 a non-finite loss.
    """
    with _warnings_echoed(echo):
        try:
            trainer = prepare_resume(log_dir, n_epochs)
        except ValueError as err:
            echo(f"Error: {err}", err=True)
            return 2
        except RunLockedError as err:
            echo(f"Error: {err}", err=True)
            return EXIT_LOCKED
    echo(f"log dir: {trainer.log_dir} (resuming at epoch {trainer.start_epoch})")
    return train_to_exit_code(trainer, echo)


@click.command("resume")
@click.argument("log_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--n_epochs", type=click.IntRange(min=1), default=None,
              help="new total number of epochs (to extend a finished run) [default: the run's]")
def resume_command(log_dir, n_epochs):
    """Continue a run from its last snapshot, appending to its progress.csv and TensorBoard log.

    Takes the run's lock (a run being written by another process is refused, exit 75); an
    unreadable params.pt falls back to the newest readable itr_<epoch>.pt; variant.json records
    each resume. Exact continuation needs the run to have been started with --snapshot_buffer
    True; otherwise a warning says the buffer starts empty.
    """
    sys.exit(resume_run(log_dir, n_epochs))


# ------------------------------------------------------------------------------ evaluate
def logged_evaluation(log_dir: Path, epoch: int) -> dict[str, dict]:
    """The evaluation progress.csv logged at ``epoch``: mode -> {"success", "return"} (a metric
    the run did not log is left out; a mode without a logged evaluation is absent)."""
    try:
        with open(log_dir / "progress.csv", newline="") as f:
            row = next((r for r in csv.DictReader(f) if r.get("Epoch") == str(epoch)), None)
    except OSError:
        return {}
    out: dict[str, dict] = {}
    for mode, prefix in MODES.items():
        metrics = {name: float(row[key]) for name, key in
                   (("success", f"Evaluation/{prefix}SuccessRate"), ("return", f"Evaluation/{prefix}AverageReturn"))
                   if row and row.get(key)}
        if "return" in metrics:
            out[mode] = metrics
    return out


def evaluate_run(log_dir: Path | str, episodes: int | None = None, modes=("mop", "p"),
                 video: bool = False, snapshot: Path | str | None = None,
                 seed: int | None = None) -> dict[str, dict]:
    """Evaluate a saved run's policies on the test envs, deterministically (reference §3.13).

    Each mode is evaluated as the trainer does (:func:`learning.sampler.evaluation_seed` of the
    seed, the snapshot's epoch and the mode), so with the defaults it reproduces the evaluation
    the run logged at the snapshot's epoch, whatever modes are chosen (with
    ``--distillation_period``, an epoch's evaluation precedes its distillation and differs).

    Args:
        log_dir: the run directory (its ``variant.json`` rebuilds the networks and envs).
        episodes: episodes per task (default: the run's ``--num_evaluation_episodes // T``).
        modes: ``mop`` (the behaviour mixture of QMP runs; the own policies otherwise) and/or
            ``p`` (each task's own policy); ``p`` is skipped for runs without a mixture.
        video: also render one episode per task and mode to ``<log_dir>/videos``.
        snapshot: the weights to load (default ``policy.pt``, else ``params.pt``, else the
            newest readable ``itr_<epoch>.pt``).
        seed: the seed evaluations are derived from (default: the run's ``--seed``).

    Returns:
        mode -> {"epoch", "snapshot", "seed", "tasks": [{task, name, success, return, episodes,
        extras...}], pooled "success" and "return"}; "success" is None for suites whose success
        is meaningless (HalfCheetah, one-task gymnasium ids).

    Raises:
        ValueError: not a run directory, a broken variant.json, no readable snapshot, or an
            unknown mode.
    """
    log_dir = Path(log_dir)
    config = config_from_run(log_dir)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"--mode {bad[0]!r}; allowed: {', '.join(MODES)}")
    device = resolve_device(config.device, config.gpu)
    path, state = read_snapshot(log_dir, ["policy.pt", "params.pt"], device, keys=["policy", "algorithm"],
                                explicit=Path(snapshot) if snapshot is not None else None)
    seed = config.seed if seed is None else seed
    trainer = build_trainer(config, log_dir)
    try:
        epoch = load_weights(trainer, state)
        per_task = episodes or max(1, config.num_evaluation_episodes // trainer.num_tasks)
        results = {}
        for mode in modes:
            prefix = MODES[mode]
            if prefix not in trainer.eval_modes:
                continue
            behaviour = trainer.eval_modes[prefix]
            record = evaluate(trainer.eval_sampler, behaviour, per_task,
                              seed=evaluation_seed(seed, epoch, prefix))
            results[mode] = {**_summary(record, trainer.suite, epoch), "snapshot": str(path), "seed": seed}
            if video:
                from tools.video import record_videos
                record_videos(trainer.suite, behaviour, trainer.sampler.obs_indices.cpu().numpy(),
                              trainer.sampler.device, log_dir / "videos", tag=f"evaluate_{mode}",
                              num_videos=trainer.num_tasks, width=config.vis_width,
                              height=config.vis_height, fps=config.vis_fps, seed=config.seed + 30_000)
    finally:
        trainer.close()
    return results


def _summary(record, suite, epoch: int) -> dict:
    with_success = getattr(suite, "success_is_meaningful", True)
    tasks = []
    for k in range(suite.num_tasks):
        row = {"task": k, "name": suite.task_names[k], "episodes": len(record.returns[k]),
               "success": float(np.mean(record.successes[k])) if with_success else None,
               "return": float(np.mean(record.returns[k]))}
        for key, name in suite.episode_info_keys.items():
            row[name] = float(np.mean(record.extras[key][k]))
        tasks.append(row)
    return {"epoch": epoch, "tasks": tasks,
            "success": float(np.mean([t["success"] for t in tasks])) if with_success else None,
            "return": float(np.mean([t["return"] for t in tasks]))}


def _cell(value, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def format_results(results: dict[str, dict], logged: dict[str, dict] | None = None) -> str:
    """A plain-text table per mode: task, name, success rate ('-' where success is meaningless),
    mean return (and extras); with ``logged``, the values the run logged at that epoch."""
    lines = []
    for mode, res in results.items():
        extras = [k for k in res["tasks"][0] if k not in ("task", "name", "episodes", "success", "return")]
        lines.append(f"mode {mode} (snapshot epoch {res['epoch']}, "
                     f"{res['tasks'][0]['episodes']} episodes per task)")
        lines.append("  ".join(["task", f"{'name':<28}", "success", "   return", *extras]))
        for t in res["tasks"]:
            cells = [f"{t['task']:>4}", f"{t['name'][:28]:<28}", _cell(t["success"], 7, 3),
                     f"{t['return']:9.2f}", *(f"{t[k]:.3f}" for k in extras)]
            lines.append("  ".join(cells))
        lines.append(f"{'mean':>4}  {'':<28}  {_cell(res['success'], 7, 3)}  {res['return']:9.2f}")
        if logged and mode in logged:
            lines.append(f"{'logged':>4}  {'(progress.csv, epoch ' + str(res['epoch']) + ')':<28}  "
                         f"{_cell(logged[mode].get('success'), 7, 3)}  {logged[mode]['return']:9.2f}")
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("log_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--episodes", type=click.IntRange(min=1), default=None,
              help="episodes per task [default: the run's --num_evaluation_episodes // T]")
@click.option("--mode", "modes", type=click.Choice(list(MODES)), multiple=True,
              help="mop: the behaviour mixture (QMP runs; the own policies otherwise); p: each task's "
                   "own policy. Repeat for both [default: both]")
@click.option("--video", is_flag=True, help="also render one episode per task to LOG_DIR/videos")
@click.option("--snapshot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="weights to load [default: LOG_DIR/policy.pt, else params.pt, else the newest "
                   "readable itr_<epoch>.pt]")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
              help="seed of the evaluation episodes [default: the run's --seed, which repeats the "
                   "evaluation the run logged at the snapshot's epoch]")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              is_flag=False, flag_value="-",
              help="also write the results as JSON to this file; --json alone (or --json=-): JSON to "
                   "stdout instead of the table")
def evaluate_command(log_dir, episodes, modes, video, snapshot, seed, json_out):
    """Evaluate a saved run: per-task success and return, printed; no new log dir.

    With the defaults it repeats the evaluation the run logged at the snapshot's epoch (the
    'logged' line shows that row of progress.csv).
    """
    with _warnings_echoed(click.echo):
        try:
            results = evaluate_run(log_dir, episodes, modes or tuple(MODES), video, snapshot, seed)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
    epoch = next(iter(results.values()))["epoch"] if results else None
    logged = logged_evaluation(log_dir, epoch) if epoch is not None and episodes is None and seed is None \
        else {}
    if json_out is None or json_out != "-":
        click.echo(format_results(results, logged))
    if json_out is not None:
        report = json.dumps({"log_dir": str(log_dir), "modes": results, "logged": logged}, indent=2)
        if json_out == "-":
            click.echo(report)
        else:
            Path(json_out).write_text(report + "\n")
