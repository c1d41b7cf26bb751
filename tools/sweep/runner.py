"""Running a sweep's unfinished trials as Ray tasks, and stopping them cleanly on a signal."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from tools.sweep import trial as trial_body
from tools.sweep.checks import variant_mismatch
from tools.sweep.grid import Trial
from tools.sweep.trial import FINAL_FILE, STOP_FILE, can_resume, is_finished, move_aside

STATUSES = ("done", "skipped", "interrupted", "failed")
INTERRUPTED_CODES = (130, 143)  # a trial stopped by SIGINT / SIGTERM after saving its snapshot
WAIT_SECONDS = 0.5  # the driver's loop looks at received signals this often


@dataclass
class TrialResult:
    trial: Trial
    status: str  # see STATUSES; interrupted: stopped by a signal, its snapshot resumes it
    exit_code: int | None  # None: skipped, or the Ray task itself failed / was cancelled
    seconds: float
    log_dir: Path
    log_file: Path
    moved_aside: Path | None = None  # where an unusable log dir of an earlier attempt went
    error: str = ""  # why a failed trial has no exit code (Ray error, interrupted)
    resumed: bool = False  # continued from its snapshot (run.py resume)

    @property
    def name(self) -> str:
        return self.trial.name


@dataclass
class _Pending:
    trial: Trial
    log_dir: Path
    log_file: Path
    moved_aside: Path | None = None
    resume: bool = False
    ref: object = field(default=None, repr=False)


class SweepInterrupted(Exception):
    """The sweep driver got SIGINT / SIGTERM; ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.exit_code = 128 + signum


class _Signals:
    """SIGINT/SIGTERM received by the driver, in order (set by the handler, read by the loop:
    raising from the handler would surface inside Ray's C++ wait)."""

    def __init__(self):
        self.received: list[int] = []

    def install(self) -> dict:
        """Handle SIGINT/SIGTERM (main thread only); returns the previous handlers. Installed after
        ``ray.init``, they replace Ray's fatal-signal handler (its C++ stack dump) in the driver."""
        if threading.current_thread() is not threading.main_thread():
            return {}
        return {s: signal.signal(s, lambda signum, frame: self.received.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}


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


def decide(p: _Pending, expected: dict[str, dict] | None) -> str | None:
    """Set ``p.resume`` for an unfinished trial: True when its dir holds a snapshot of a run with
    the flags the trial gets now (``expected``, by trial name); returns why a dir that exists
    cannot be resumed (None when it can, or when there is no dir)."""
    p.resume = False
    if not p.log_dir.exists():
        return None
    if not can_resume(p.log_dir):
        return "it has no snapshot"
    mine = (expected or {}).get(p.trial.name)
    why = variant_mismatch(p.log_dir, mine) if mine is not None else None
    p.resume = why is None
    return None if p.resume else f"it was run with other flags ({why})"


def plan(pending: Sequence[_Pending], expected: dict[str, dict] | None, echo: Callable[[str], None]) -> None:
    """Decide (:func:`decide`), for each unfinished trial with a log dir, resume or a fresh start,
    moving the dirs that cannot be resumed aside (:func:`move_aside`)."""
    for p in pending:
        why = decide(p, expected)
        if p.resume:
            echo(f"unfinished {p.trial.name}: resuming from its snapshot")
        elif why is not None:
            p.moved_aside = move_aside(p.log_dir, p.log_file)
            echo(f"unfinished {p.trial.name}: {why}; moved aside to {p.moved_aside}, starting afresh")


def _result(p: _Pending, outcome, error: str = "") -> TrialResult:
    if outcome is None:
        return TrialResult(p.trial, "failed" if not error.startswith("interrupted") else "interrupted", None, 0.0,
                           p.log_dir, p.log_file, p.moved_aside, error, p.resume)
    code, seconds, how = outcome
    if code == 0 and is_finished(p.log_dir):
        status, error = "done", ""
    elif code in INTERRUPTED_CODES:
        status, error = "interrupted", "stopped by a signal; re-launch to resume"
    else:
        status, error = "failed", "" if code != 0 else f"exit 0 but no {FINAL_FILE}"
    return TrialResult(p.trial, status, code, seconds, p.log_dir, p.log_file, p.moved_aside, error,
                       how == "resumed")


def run_sweep(trials: Sequence[Trial], root: Path | str, *, cpus_per_trial: int = 1,
              gpus_per_trial: float = 0, address: str | None = None, num_cpus: int | None = None,
              expected: dict[str, dict] | None = None, max_retries: int = 3, stop_timeout: float = 600,
              echo: Callable[[str], None] = print) -> list[TrialResult]:
    """Run every unfinished trial as a Ray task; returns one result per trial, in trial order.

    Re-launch: a finished trial is skipped; an unfinished one with a snapshot whose
    ``variant.json`` agrees with ``expected`` (as :func:`tools.sweep.checks.validate_trials`
    returns it) continues through ``run.py resume LOGDIR``; any other unfinished dir is moved
    aside and the trial starts afresh. Ray retries a task whose worker or node died up to
    ``max_retries`` times (Ray's ``max_retries``); the task body resumes from the snapshot then.

    Ray is started (locally with ``num_cpus``, or connected to ``address``) only when some trial
    is unfinished, and shut down at the end when this call started it. SIGINT / SIGTERM to this
    process: every running trial is asked to stop (one SIGTERM: it finishes its epoch, saves a
    snapshot and exits 143, its message in its console log), waited for up to ``stop_timeout``
    seconds (then cancelled), the summary is printed and :class:`SweepInterrupted` raised; a
    second signal cancels the trials at once.

    Raises:
        ValueError: bad resources (a trial needs more CPUs or GPUs than a local instance has).
        SweepInterrupted: on SIGINT / SIGTERM.
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
    for t in trials:
        log_dir, log_file = root / t.name, root / f"{t.name}.log"
        if is_finished(log_dir):
            results[t.name] = TrialResult(t, "skipped", None, 0.0, log_dir, log_file)
        else:
            pending.append(_Pending(t, log_dir, log_file))
            decide(pending[-1], expected)
    resumable = sum(p.resume for p in pending)
    echo(f"sweep: {len(trials)} trials in {root}: {len(results)} finished (skipped), "
         f"{resumable} to resume from a snapshot, {len(pending) - resumable} to start")
    if not pending:
        return [results[t.name] for t in trials]

    import ray

    started = _start_ray(address, num_cpus)
    signals = _Signals()
    handlers = signals.install()
    stop_file = root / STOP_FILE
    stop_file.unlink(missing_ok=True)
    try:
        _check_resources(ray.cluster_resources(), cpus_per_trial, gpus_per_trial, address, device, echo)
        plan(pending, expected, echo)
        # Workers need not be able to import the project (their sys.path is the driver's cwd and
        # site-packages): ship the task body, which uses the standard library only, by value.
        ray.cloudpickle.register_pickle_by_value(sys.modules[trial_body.__name__])
        task = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=max_retries,
                          retry_exceptions=False)(trial_body.run_trial_process)
        for p in pending:
            args = p.trial.run_args(p.log_dir, cpus_per_trial, device)
            p.ref = task.remote(args, str(trial_body.REPO_ROOT), str(p.log_dir), str(p.log_file))
        by_ref = {p.ref: p for p in pending}
        waiting = list(by_ref)

        def collect(ready) -> None:
            for ref in ready:
                p = by_ref[ref]
                try:
                    res = _result(p, ray.get(ref))
                except ray.exceptions.RayError as err:
                    res = _result(p, None, f"Ray task failed: {_first_line(err)}")
                results[p.trial.name] = res
                how = " (resumed)" if res.resumed else ""
                echo(f"[{len(results)}/{len(trials)}] {res.status} {res.name}{how} "
                     f"(exit {res.exit_code}, {res.seconds:.1f} s)")

        while waiting and not signals.received:
            ready, waiting = ray.wait(waiting, num_returns=1, timeout=WAIT_SECONDS)
            collect(ready)
        if signals.received:
            signum = signals.received[0]
            echo(f"{signal.Signals(signum).name}: asking {len(waiting)} unfinished trial(s) to stop (each "
                 f"finishes its epoch and saves a snapshot; up to {stop_timeout:g} s; send it again to "
                 "cancel them now). Re-launch the same sweep to resume them.")
            stop_file.touch()
            deadline = time.monotonic() + stop_timeout
            while waiting and time.monotonic() < deadline and len(signals.received) < 2:
                ready, waiting = ray.wait(waiting, num_returns=1, timeout=WAIT_SECONDS)
                collect(ready)
            for ref in waiting:
                ray.cancel(ref, force=True)
                results[by_ref[ref].trial.name] = _result(by_ref[ref], None, "interrupted (cancelled)")
            echo(format_summary([results[t.name] for t in trials if t.name in results]))
            raise SweepInterrupted(signum)
    finally:
        stop_file.unlink(missing_ok=True)
        if started:
            ray.shutdown()
        for signum, handler in handlers.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
    return [results[t.name] for t in trials]


def _check_resources(available: dict, cpus: int, gpus: float, address: str | None, device: str,
                     echo: Callable[[str], None]) -> None:
    for key, need in (("CPU", cpus), ("GPU", gpus)):
        have = available.get(key, 0)
        if need > have:
            msg = f"a trial needs {need} {key} but the Ray cluster has {have:g}"
            if not address:
                raise ValueError(msg)
            echo(f"warning: {msg}; trials wait until the cluster grows")
    echo(f"Ray: {'local instance' if not address else address}, {available.get('CPU', 0):g} CPUs, "
         f"{available.get('GPU', 0):g} GPUs; per trial {cpus} CPU (--num_threads {cpus}), {gpus:g} GPU "
         f"(--device {device})")


def _first_line(err: BaseException) -> str:
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


def format_summary(results: Sequence[TrialResult]) -> str:
    """A fixed-width table: trial, status, exit code, seconds, console log file."""
    rows = [("trial", "status", "exit", "seconds", "log")]
    for r in results:
        status = r.status + (" (resumed)" if r.resumed else "")
        rows.append((r.name, status, "-" if r.exit_code is None else str(r.exit_code),
                     "-" if r.status == "skipped" else f"{r.seconds:.1f}",
                     str(r.log_file) + (f"  ({r.error})" if r.error else "")))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].rjust(widths[2]),
                        row[3].rjust(widths[3]), row[4]]).rstrip() for row in rows]
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    lines.append(", ".join(f"{n} {s}" for s, n in counts.items()))
    return "\n".join(lines)
