"""The body of one sweep trial, run as a Ray task: start the trial, or continue it from its
snapshot, as a ``run.py`` subprocess.

Standard library only: Ray ships this module to its workers by value, and a worker's
``sys.path`` need not hold the repository.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FINAL_FILE = "final_evaluation.json"
SNAPSHOT_FILE = "params.pt"
STOP_FILE = ".sweep_stop"  # in ROOT: the driver asks its running trials to stop
POLL_SECONDS = 0.25
LOCK_FILE = "run.lock"  # learning/run_lock.py's marker: key=value lines, pid= and host= among them
WRITER_WAIT_SECONDS = 900.0  # longest wait for an earlier attempt on this host to finish its epoch


def is_finished(log_dir: Path) -> bool:
    """Every epoch ran (``run.py`` writes ``final_evaluation.json`` last)."""
    return (log_dir / FINAL_FILE).is_file()


def can_resume(log_dir: Path) -> bool:
    """An unfinished run with a snapshot and its ``variant.json``: ``run.py resume`` continues it."""
    return not is_finished(log_dir) and (log_dir / SNAPSHOT_FILE).is_file() and (log_dir / "variant.json").is_file()


def failed_root(root: Path) -> Path:
    """Where unusable attempts go: ``<ROOT>.failed``, beside ROOT so that tools reading every
    run dir below ROOT (``run.py plot ROOT``) never see a partial run."""
    return root.with_name(root.name + ".failed")


def move_aside(log_dir: Path, log_file: Path | None = None) -> Path:
    """Move a log dir that cannot be resumed to ``<ROOT>.failed/<trial>.failed-N`` (first free
    N >= 1); the trial's old console log, when given and present, moves inside it as ``sweep.log``."""
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


def local_writer(log_dir: Path) -> int | None:
    """The pid of a live process on this host that holds the run's lock (``run.lock``), else None
    (no lock, an unreadable one, a dead holder, or a holder on another host, whom the lock itself
    waits for)."""
    try:
        text = (log_dir / LOCK_FILE).read_text()
    except (OSError, UnicodeDecodeError):
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        pid = int(fields["pid"])
    except (KeyError, ValueError):
        return None
    if not fields.get("host", "").startswith(socket.gethostname()):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    try:  # Linux: an exited process not yet reaped by its parent (a zombie) writes nothing
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return None
    except (OSError, IndexError):
        pass
    return pid


def _wait_for_writer(log_dir: Path, timeout: float, stop_file: Path) -> None:
    """Wait (up to ``timeout`` seconds) while an earlier attempt of the trial on this host still
    writes the run: a Ray retry after the worker died, whose orphaned trial got SIGTERM and is
    finishing its epoch and snapshot. Resuming then continues from that snapshot instead of being
    refused by the run's lock. Stops waiting when ``stop_file`` appears."""
    deadline = time.monotonic() + timeout
    while local_writer(log_dir) is not None and time.monotonic() < deadline and not stop_file.exists():
        time.sleep(POLL_SECONDS)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the trial when its Ray worker dies (cancelled sweep, Ray shut down)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


def _wait(proc: subprocess.Popen, stop_file: Path) -> int:
    """Wait for the trial; once ``stop_file`` appears (or Ray cancels the task, a
    KeyboardInterrupt here) send it one SIGTERM, which it answers by finishing its epoch, saving a
    snapshot and exiting 143, and keep waiting."""
    signalled = False
    while True:
        try:
            return proc.wait(timeout=POLL_SECONDS)
        except subprocess.TimeoutExpired:
            if not signalled and stop_file.exists():
                proc.send_signal(signal.SIGTERM)
                signalled = True
        except KeyboardInterrupt:
            if signalled:
                proc.kill()
                raise
            proc.send_signal(signal.SIGTERM)
            signalled = True


def run_trial_process(start_args: list[str], cwd: str, log_dir: str, log_file: str) -> tuple[int, float, str]:
    """Run the trial in ``log_dir`` as ``<this python> run.py ...`` in ``cwd``, console output to
    ``log_file``; returns (exit code, seconds, how) with how ``started``, ``resumed`` or
    ``finished`` (nothing left to run) or ``not started`` (the sweep is stopping: exit 143).

    Decided here, on the worker, so that a Ray retry after a lost worker or node does the same,
    once an earlier attempt still writing the run on this host has exited (:func:`_wait_for_writer`):
    a finished run is left alone; an unfinished run with a snapshot continues through
    ``run.py resume LOGDIR`` (the console log is appended to); a log dir without one is moved
    aside (:func:`move_aside`) and the trial starts afresh with ``start_args``.
    """
    path, console, stop_file = Path(log_dir), Path(log_file), Path(log_dir).parent / STOP_FILE
    _wait_for_writer(path, WRITER_WAIT_SECONDS, stop_file)
    if stop_file.exists() and not is_finished(path):  # queued while the sweep stops
        return 128 + signal.SIGTERM, 0.0, "not started"
    if is_finished(path):
        return 0, 0.0, "finished"
    if can_resume(path):
        how, args, mode = "resumed", resume_args(path), "a"
    else:
        if path.exists():
            move_aside(path, console)
        how, args, mode = "started", start_args, "w"
    argv = [sys.executable, str(Path(cwd) / "run.py"), *args]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    start = time.monotonic()
    with open(console, mode) as out:
        out.write(f"$ cd {shlex.quote(cwd)} && {shlex.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)
        code = _wait(proc, stop_file)
    return code, time.monotonic() - start, how


def resume_args(log_dir: Path | str) -> list[str]:
    """Arguments after ``run.py`` that continue a trial from its snapshot: the same path as a
    user's ``run.py resume LOGDIR``."""
    return ["resume", str(log_dir)]
