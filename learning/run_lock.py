"""One writer per run directory: an exclusive lock file ``<log_dir>/run.lock``.

Every process that writes a run (a new run's training, ``run.py resume``) holds the lock while it
writes; a second writer is refused with :class:`RunLockedError`, which names the holder's pid and
host. The lock is filelock's :class:`~filelock.SoftFileLease`: an exclusively created marker file
holding the owner's pid, host name, process start time and a claim token, which a background
thread of the holder refreshes every ``lease / 3`` seconds.

Stale locks:

* holder on this host no longer running (SIGKILL, a crash, an OOM kill): taken over at once;
* holder on another host: its pid cannot be checked from here, so the contender waits until the
  claim has not been refreshed for a whole lease (``LEASE_SECONDS``, measured on its own clock),
  then takes it over; a holder that still runs keeps refreshing and the contender is refused
  after that wait. A requeued cluster job on another node therefore continues a run whose first
  job was killed, and never writes beside one that still runs.

Either takeover warns (:class:`StaleLockWarning`). Should a holder lose its claim anyway (its
refresh thread starved for a whole lease, the marker deleted by hand), :attr:`RunLock.lost` says
so and the trainer stops before writing another snapshot.

Why not ``fcntl.flock``: it needs the file system's support (Lustre mounted without ``-o flock``
refuses it; ``-o localflock`` and NFS's ``local_lock=flock`` lock on one host only, silently), and
it records nobody's pid or host, so a refusal could not say who is writing. The marker needs only
exclusive file creation, which shared file systems provide, and its refreshes make a dead
holder on another host detectable without synchronised clocks.
"""

from __future__ import annotations

import os
import socket
import sys
import warnings
from pathlib import Path

from filelock import SoftFileLease, Timeout

LOCK_FILE = "run.lock"
LEASE_SECONDS = 600.0  # a claim not refreshed for this long (its holder refreshes every third) is stale


class RunLockedError(RuntimeError):
    """Another live process holds the run's lock; ``pid`` and ``host`` name it (None: unreadable)."""

    def __init__(self, log_dir: Path, pid: int | None, host: str | None, waited: float = 0.0):
        self.log_dir, self.pid, self.host = Path(log_dir), pid, host
        lock = self.log_dir / LOCK_FILE
        holder = f"pid {pid} on host {host}" if pid is not None else "an unknown process"
        if waited:
            hint = (f"; its claim was still being refreshed after {waited:.0f} s of waiting, so it runs: "
                    "wait for it to finish or stop it (SIGTERM snapshots and exits)")
        else:
            hint = "; wait for it to finish or stop it (SIGTERM snapshots and exits)"
        super().__init__(f"{self.log_dir} is being written by {holder} (lock {lock}){hint}")


class RunLockLost(RuntimeError):
    """The holder's claim was taken away while it ran (see :attr:`RunLock.lost`)."""


class StaleLockWarning(UserWarning):
    """The run's lock was left by a process that no longer runs (or no longer refreshes it) and was
    taken over."""


def lock_holder(log_dir: Path | str) -> tuple[int | None, str | None]:
    """(pid, host) recorded in ``<log_dir>/run.lock``; (None, None) when absent or unreadable.

    filelock writes ``key=value`` lines (``pid=``, ``host=``, ...) after a protocol line.
    """
    try:
        text = (Path(log_dir) / LOCK_FILE).read_text()
    except (OSError, UnicodeDecodeError):
        return None, None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    try:
        return int(fields["pid"]), fields.get("host")
    except (KeyError, ValueError):
        return None, None


def _alive(pid: int) -> bool:
    """True when a process with this pid runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, under another user
        return True
    return True


class RunLock:
    """The exclusive writer lock of one run directory.

    Args:
        log_dir: the run directory (must exist).
        lease: seconds after which an unrefreshed claim of another host is stale (all writers of
            a run must use the same value; tests shorten it).

    Use :meth:`acquire` / :meth:`release`, or ``with RunLock(d):``. Keep a reference while
    holding it: the lock is released when the object is garbage-collected.
    """

    def __init__(self, log_dir: Path | str, lease: float = LEASE_SECONDS):
        self.log_dir, self.lease = Path(log_dir), float(lease)
        self.lost: str | None = None  # why the claim was lost while held (None: not lost)
        self._lock = SoftFileLease(str(self.log_dir / LOCK_FILE), lease_duration=self.lease,
                                   thread_local=False, on_compromise=self._compromised)

    def _compromised(self, compromise) -> None:
        self.lost = str(compromise.reason)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._lock.is_locked

    def acquire(self, wait_for_other_hosts: bool = True) -> RunLock:
        """Take the lock, at once or after a foreign holder's lease expired.

        Raises:
            RunLockedError: a live process on this host holds it, or one on another host kept
                refreshing it for a whole lease (or ``wait_for_other_hosts`` is False).
        """
        if self.held:
            return self
        here = socket.gethostname()
        before = lock_holder(self.log_dir)
        waited = 0.0
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            pid, host = lock_holder(self.log_dir)
            if host is None or host == here or not wait_for_other_hosts:
                raise RunLockedError(self.log_dir, pid, host) from None
            waited = self.lease * 1.2 + min(5.0, self.lease)
            print(f"{self.log_dir}: locked by pid {pid} on host {host}; waiting up to {waited:.0f} s for "
                  "its claim to expire (it does unless that process still runs)", file=sys.stderr, flush=True)
            try:
                self._lock.acquire(timeout=waited)
            except Timeout:
                raise RunLockedError(self.log_dir, *lock_holder(self.log_dir), waited=waited) from None
            before = (pid, host)
        self.lost = None
        dead_here = before[0] is not None and before[1] == here and not _alive(before[0])
        if dead_here or waited:  # (a foreign holder that released in between needs no warning)
            how = "which no longer runs" if dead_here else f"whose claim was not refreshed for {self.lease:.0f} s"
            warnings.warn(f"{self.log_dir}: took over a stale lock left by pid {before[0]} on host "
                          f"{before[1]}, {how}", StaleLockWarning, stacklevel=2)
        return self

    def release(self) -> None:
        """Release (and delete the marker); a no-op when not held."""
        if self.held:
            self._lock.release(force=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
