"""One writer per run directory: an exclusive lock file ``<log_dir>/run.lock``.

Every process that writes a run (a new run's training, ``run.py resume``) holds the lock while it
writes; a second writer is refused with :class:`RunLockedError`, which names the holder's pid and
host. The lock is filelock's :class:`~filelock.SoftFileLock`: an exclusively created marker file
holding the owner's pid, host name and process start time. A marker left by a process that died
on this host (SIGKILL, a crash, an OOM kill) is detected as stale and taken over, with a warning
(:class:`StaleLockWarning`).

Why a marker file rather than ``fcntl.flock``: flock needs the file system to support it (Lustre
mounted without ``-o flock`` and NFSv3 without a lock daemon refuse it or lock only locally) and
records nobody's pid or host, so the refusal could not say who is writing. The marker needs only
exclusive file creation, which every shared file system provides. Its limit: a holder on another
host cannot be proven dead from this host (its pid means nothing here), so such a marker is never
taken over silently; the error says so and names the file to delete once that host's process is
known to be gone.
"""

from __future__ import annotations

import os
import socket
import warnings
from pathlib import Path

from filelock import SoftFileLock, Timeout

LOCK_FILE = "run.lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run's lock; ``pid`` and ``host`` name it (None: unreadable)."""

    def __init__(self, log_dir: Path, pid: int | None, host: str | None):
        self.log_dir, self.pid, self.host = Path(log_dir), pid, host
        lock = self.log_dir / LOCK_FILE
        holder = f"pid {pid} on host {host}" if pid is not None else "an unknown process"
        hint = (f"; {host} is another host, so this one cannot tell whether that process still "
                f"runs: if it does not, delete {lock} and retry" if host and host != socket.gethostname()
                else "; wait for it to finish or stop it (SIGTERM snapshots and exits)")
        super().__init__(f"{self.log_dir} is being written by {holder} (lock {lock}){hint}")


class StaleLockWarning(UserWarning):
    """The run's lock was left by a process that no longer runs on this host and was taken over."""


def lock_holder(log_dir: Path | str) -> tuple[int | None, str | None]:
    """(pid, host) recorded in ``<log_dir>/run.lock``; (None, None) when absent or unreadable.

    filelock writes the marker as lines ``pid``, ``host``, ``start token``.
    """
    try:
        lines = (Path(log_dir) / LOCK_FILE).read_text().splitlines()
        return int(lines[0]), (lines[1] if len(lines) > 1 else None)
    except (OSError, ValueError, IndexError):
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
    """The exclusive writer lock of one run directory (not re-entrant across processes).

    Args:
        log_dir: the run directory (must exist).

    Use :meth:`acquire` / :meth:`release`, or ``with RunLock(d):``.
    """

    def __init__(self, log_dir: Path | str):
        self.log_dir = Path(log_dir)
        self._lock = SoftFileLock(str(self.log_dir / LOCK_FILE), thread_local=False)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._lock.is_locked

    def acquire(self) -> RunLock:
        """Take the lock at once or fail.

        A marker whose pid no longer runs on this host is taken over and reported with a
        :class:`StaleLockWarning` naming the dead holder.

        Raises:
            RunLockedError: a live process (or one on another host) holds it.
        """
        if self.held:
            return self
        before = lock_holder(self.log_dir)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise RunLockedError(self.log_dir, *lock_holder(self.log_dir)) from None
        if before[0] is not None and before[1] == socket.gethostname() and not _alive(before[0]):
            warnings.warn(f"{self.log_dir}: took over a stale lock left by pid {before[0]} on host "
                          f"{before[1]}, which no longer runs", StaleLockWarning, stacklevel=2)
        return self

    def release(self) -> None:
        """Release (and delete the marker); a no-op when not held."""
        if self.held:
            self._lock.release(force=True)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
