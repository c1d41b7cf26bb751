"""The sub-envs of one vector env stepped in N worker processes (``--n_workers N``).

:class:`WorkerVectorEnv` gives each of N processes a contiguous slice of the sub-envs and behaves
like the in-process ``SyncVectorEnv`` with ``SAME_STEP`` autoreset that
:meth:`~environments.base.TaskSuite.make_vector_env` builds: flat ``(num_envs, ...)``
observations; the same info dicts (each worker returns every sub-env's own info, and they are
merged here in sub-env order by gymnasium's ``_add_info``, as ``SyncVectorEnv`` merges them, so
``final_obs``/``final_info``/``success`` and their ``_key`` masks are identical); the same seeding
(``reset(seed=s)`` seeds sub-env i with ``s + i``). gymnasium's ``AsyncVectorEnv`` would need
one process per sub-env (50 on MT50).

Workers ignore SIGINT and SIGTERM (a Ctrl-C, or a scheduler's SIGTERM, reaches the whole process
group; the trainer finishes its epoch, snapshots and closes the envs). They exit on ``close``,
when the parent's end of their pipe closes (the parent died), or are killed by ``close`` after a
timeout; envs left open are closed at interpreter exit, before multiprocessing joins its children.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.util  # noqa: F401 - its exit hook (join the children) is registered before ours
import signal
import sys
import traceback
import weakref
from copy import deepcopy
from typing import Any, Callable, Sequence

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import CloudpickleWrapper, batch_space, concatenate, create_empty_array, iterate


_OPEN: "weakref.WeakSet[WorkerVectorEnv]" = weakref.WeakSet()


@atexit.register
def _close_open_envs() -> None:
    """Workers ignore SIGTERM, so multiprocessing's exit hook (terminate, then join) would wait
    forever for the workers of an env nobody closed; atexit runs this hook first."""
    for env in list(_OPEN):
        env.close()


def _step(env: gym.Env, action) -> tuple:
    """One sub-env's part of ``SyncVectorEnv.step`` with SAME_STEP autoreset: (obs, reward,
    terminated, truncated, {final_obs, final_info} or None, info)."""
    obs, reward, terminated, truncated, info = env.step(action)
    final = None
    if terminated or truncated:
        final = {"final_obs": obs, "final_info": info}
        obs, info = env.reset()
    return obs, reward, terminated, truncated, final, info


def _reset(env: gym.Env, seed: int | None, options: dict | None) -> tuple:
    return env.reset(seed=seed, options=options)


def _call(env: gym.Env, name: str, args: tuple, kwargs: dict) -> Any:
    attr = env.get_wrapper_attr(name)
    return attr(*args, **kwargs) if callable(attr) else attr


def _worker(pipe, parent_end, env_fns: list) -> None:
    """Builds its sub-envs, replies with their spaces, then answers each message ``(fn, args)``
    with ``(True, [fn(env, *a) for env, a in zip(envs, args)])`` or ``(False, traceback)``;
    ``None`` (close) or a closed pipe ends it."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    parent_end.close()  # fork: the child's copy of the parent's end; EOF then means the parent is gone
    envs = []
    try:
        envs = [fn() for fn in env_fns]
        reply = (True, [(e.observation_space, e.action_space, e.metadata, e.render_mode) for e in envs])
    except Exception:  # noqa: BLE001 - reported in the parent
        reply = (False, traceback.format_exc())
    try:
        while True:
            pipe.send(reply)
            message = pipe.recv() if envs else None
            if message is None:
                break
            fn, args = message
            try:
                reply = (True, [fn(env, *a) for env, a in zip(envs, args)])
            except Exception:  # noqa: BLE001 - reported in the parent
                reply = (False, traceback.format_exc())
    except (EOFError, OSError):
        pass  # the parent is gone
    finally:
        for env in envs:
            env.close()
        pipe.close()


class WorkerVectorEnv(gym.vector.VectorEnv):
    """``SyncVectorEnv(env_fns, autoreset_mode=SAME_STEP)`` with the sub-envs split into
    ``n_workers`` contiguous slices, each stepped in its own process.

    Args:
        env_fns: one constructor per sub-env.
        n_workers: worker processes, in ``[1, len(env_fns)]``.
        context: multiprocessing start method (default ``fork`` on Linux: the workers start
            at once and never touch torch or CUDA; else ``spawn``, the constructors then travel
            by cloudpickle).

    Raises:
        ValueError: ``n_workers`` out of range.
        RuntimeError: a worker failed (its traceback is in the message).
    """

    def __init__(self, env_fns: Sequence[Callable[[], gym.Env]], n_workers: int,
                 context: str | None = None):
        n = len(env_fns)
        self._pipes, self._processes, self._pending = [], [], []
        if not 1 <= n_workers <= n:
            raise ValueError(f"n_workers={n_workers}; allowed: 1..{n} (the number of sub-envs)")
        self.num_envs, self.autoreset_mode = n, gym.vector.AutoresetMode.SAME_STEP
        self._slices = [slice(int(a[0]), int(a[-1]) + 1)
                        for a in np.array_split(np.arange(n), n_workers)]
        ctx = mp.get_context(context or ("fork" if sys.platform.startswith("linux") else "spawn"))
        try:
            for k, part in enumerate(self._slices):
                parent, child = ctx.Pipe()
                fns = [CloudpickleWrapper(fn) for fn in env_fns[part]]
                process = ctx.Process(target=_worker, args=(child, parent, fns), daemon=True,
                                      name=f"env-worker-{k}")
                process.start()
                child.close()
                self._pipes.append(parent)
                self._processes.append(process)
                self._pending.append(True)
                _OPEN.add(self)
            spaces = [s for part in self._receive_all() for s in part]
        except BaseException:
            self.close()
            raise
        obs_space, act_space, metadata, self.render_mode = spaces[0]
        if any(o != obs_space or a != act_space for o, a, _, _ in spaces):
            self.close()
            raise RuntimeError("the sub-envs of a WorkerVectorEnv must share observation and action spaces")
        self.metadata = {**metadata, "autoreset_mode": self.autoreset_mode}
        self.single_observation_space, self.single_action_space = obs_space, act_space
        self.observation_space = batch_space(obs_space, n)
        self.action_space = batch_space(act_space, n)
        self._observations = create_empty_array(obs_space, n=n, fn=np.zeros)
        self._autoreset_envs = np.zeros(n, dtype=np.bool_)  # as SyncVectorEnv's (env_state reads it)

    def _receive_all(self) -> list:
        """Every worker's reply, in worker order; raises after all replies are in."""
        replies = []
        for k, (pipe, process) in enumerate(zip(self._pipes, self._processes)):
            try:
                replies.append(pipe.recv())
            except (EOFError, OSError):
                process.join(1)
                replies.append((False, f"worker {k} exited (exit code {process.exitcode})"))
            self._pending[k] = False
        errors = [r for ok, r in replies if not ok]
        if errors:
            raise RuntimeError(f"an env worker failed:\n{errors[0]}")
        return [r for _, r in replies]

    def _run(self, fn: Callable, args: list[tuple]) -> list:
        """``fn(sub_env_i, *args[i])`` for every sub-env, in the workers; results in sub-env order."""
        for k, (pipe, part) in enumerate(zip(self._pipes, self._slices)):
            try:
                pipe.send((fn, args[part]))
            except OSError as err:
                raise RuntimeError(f"env worker {k} is gone ({err!r})") from None
            self._pending[k] = True
        return [r for part in self._receive_all() for r in part]

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict | None = None):
        if options and "reset_mask" in options:
            raise NotImplementedError("WorkerVectorEnv.reset does not take a reset_mask")
        seeds = [None] * self.num_envs if seed is None else (
            [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else list(seed))
        if len(seeds) != self.num_envs:
            raise ValueError(f"{len(seeds)} seeds for num_envs={self.num_envs}")
        results = self._run(_reset, [(s, options) for s in seeds])
        infos: dict[str, Any] = {}
        for i, (_, info) in enumerate(results):
            infos = self._add_info(infos, info, i)
        self._autoreset_envs[:] = False
        self._observations = concatenate(self.single_observation_space, [r[0] for r in results],
                                         self._observations)
        return deepcopy(self._observations), infos

    def step(self, actions):
        results = self._run(_step, [(a,) for a in iterate(self.action_space, actions)])
        rewards = np.array([r[1] for r in results], dtype=np.float64)
        terminations = np.array([r[2] for r in results], dtype=np.bool_)
        truncations = np.array([r[3] for r in results], dtype=np.bool_)
        infos: dict[str, Any] = {}
        for i, (_, _, _, _, final, info) in enumerate(results):
            if final is not None:
                infos = self._add_info(infos, final, i)
            infos = self._add_info(infos, info, i)
        self._observations = concatenate(self.single_observation_space, [r[0] for r in results],
                                         self._observations)
        self._autoreset_envs = terminations | truncations
        return deepcopy(self._observations), rewards, terminations, truncations, infos

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple:
        """``SyncVectorEnv.call``: the method ``name`` of every sub-env called (or its value)."""
        return tuple(self._run(_call, [(name, args, kwargs)] * self.num_envs))

    def get_attr(self, name: str) -> tuple:
        return self.call(name)

    def render(self) -> tuple:
        return self.call("render")

    def map_envs(self, fn: Callable, args: Sequence | None = None) -> list:
        """``[fn(env) for env in sub-envs]``, or ``fn(env, args[i])``, run in the workers; ``fn``
        must be picklable (a module-level function). :mod:`learning.env_state` uses it."""
        return self._run(fn, [()] * self.num_envs if args is None else [(a,) for a in args])

    def close_extras(self, **kwargs: Any) -> None:
        for pipe, pending in zip(self._pipes, self._pending):
            try:
                if pending and pipe.poll(5):  # a reply left unread (interrupted mid-step)
                    pipe.recv()
                pipe.send(None)
            except (OSError, EOFError):
                pass
        for process in self._processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        for pipe in self._pipes:
            pipe.close()

    def __del__(self):
        if not getattr(self, "closed", True):
            self.close()
