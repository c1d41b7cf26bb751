"""A run's snapshots: reading them (with fallback to older ones) and ``run.py resume LOGDIR``.

Resume entry points: :func:`resume_run` (the whole ``run.py resume``, returning its exit code,
for callers such as the sweep) and :func:`prepare_resume` (a restored trainer, for the library).
``run.py evaluate`` is in :mod:`tools.evaluate`.
"""

from __future__ import annotations

import contextlib
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
import torch

from experiment_utils import read_variant, resolve_device
from garage_experiments import build_trainer, config_from_run
from learning.run_lock import RunLock, RunLockedError, RunLockLost, StaleLockWarning
from learning.trainer import NonFiniteLossError, TrainingInterrupted

EXIT_LOCKED = 75  # sysexits' EX_TEMPFAIL: another process writes the run; try again later


class InexactResumeWarning(UserWarning):
    """The snapshot holds no replay buffer: the resumed run starts a new warm-up and episodes."""


class SnapshotFallbackWarning(UserWarning):
    """The preferred snapshot was unreadable; an older one is used (the message names both)."""


OUR_WARNINGS = (InexactResumeWarning, SnapshotFallbackWarning, StaleLockWarning)


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
def warnings_echoed(echo: Callable[..., None]):
    """Show the body's resume / snapshot / lock warnings as ``warning: <message>`` lines on
    stderr; other warnings are shown as Python shows them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for category in OUR_WARNINGS:
            warnings.simplefilter("always", category)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, OUR_WARNINGS):
                    echo(f"warning: {w.message}", err=True)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


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
    except (RunLockedError, RunLockLost) as err:
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
    with warnings_echoed(echo):
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
