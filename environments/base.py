"""The multi-task suite interface shared by every benchmark in ``environments``.

A :class:`TaskSuite` describes T tasks that share one observation and one action space.
Each per-task environment is a plain :class:`gymnasium.Env` whose observation is the task's
own observation followed by the task's one-hot id (length T), the layout the original code
gets from garage's ``TaskOnehotWrapper`` (reference §4.0). The learner never reads the
one-hot to find the task: the task is the leading axis of every tensor. It only feeds the
one-hot to the networks when ``--include_task_id`` is set (see :meth:`TaskSuite.network_obs_indices`).

Per-step ``info`` of every task env holds ``success`` (bool) and ``task_id`` (int); optional
extra keys listed in ``TaskSuite.episode_info_keys`` (for example ``stages_completed``) are
reported at the last step of an episode by evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import gymnasium as gym
import numpy as np


class TaskEnvFactory(Protocol):
    """Builds the raw environment of one task (no one-hot, no time limit).

    Args:
        task: task index in ``[0, T)``.
        test: True for the evaluation copy (Meta-World draws other goal variations for it).
        seed: seed for construction-time randomness (e.g. Meta-World's goal variations).
        render_mode: gymnasium render mode or None.
    """

    def __call__(
        self, task: int, *, test: bool, seed: int, render_mode: str | None
    ) -> gym.Env: ...


@dataclass(frozen=True)
class TaskSuite:
    """A gymnasium multi-task benchmark (reference §4).

    Attributes:
        env_id: registered id, e.g. ``"MazeLarge-10-v0"``.
        task_names: one name per task, in task-index order; T = len(task_names).
        make_task_env: factory of the raw per-task env (see :class:`TaskEnvFactory`).
        max_episode_steps: time limit; reaching it is a truncation (bootstraps).
        min_reward: lowest per-step reward, used by UDS relabelling (reference §3.7).
        private_obs_dims: indices of the raw observation that networks never see
            (e.g. the Jaco hand position, reference §4.1).
        episode_info_keys: extra info keys logged at the end of evaluation episodes, mapped
            to the logged metric name, e.g. ``{"stages_completed": "StagesCompleted"}``.
        domain_mixture: optional (T, T) row-stochastic matrix for QMP-Domain.
        success_is_meaningful: False for suites such as HalfCheetah where return is the metric.
        n_workers: worker processes that step the sub-envs of :meth:`make_vector_env`'s vector
            envs (``--n_workers``; 1: in-process). ``dataclasses.replace(suite, n_workers=N)``
            sets it for every vector env the learner builds from the suite.
    """

    env_id: str
    task_names: tuple[str, ...]
    make_task_env: TaskEnvFactory
    max_episode_steps: int
    min_reward: float
    private_obs_dims: tuple[int, ...] = ()
    episode_info_keys: dict[str, str] = field(default_factory=dict)
    domain_mixture: np.ndarray | None = None
    success_is_meaningful: bool = True
    n_workers: int = 1

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)

    def make_env(
        self,
        task: int,
        *,
        test: bool = False,
        seed: int = 0,
        render_mode: str | None = None,
    ) -> gym.Env:
        """One task's env: raw env -> one-hot appended -> time limit.

        Raises:
            ValueError: if ``task`` is not in ``[0, T)``.
        """
        if not 0 <= task < self.num_tasks:
            raise ValueError(
                f"task={task} is out of range for {self.env_id}: allowed 0..{self.num_tasks - 1}"
            )
        env = self.make_task_env(task, test=test, seed=seed, render_mode=render_mode)
        env = TaskOneHot(env, task, self.num_tasks)
        return gym.wrappers.TimeLimit(env, self.max_episode_steps)

    def make_vector_env(
        self,
        envs_per_task: int = 1,
        *,
        test: bool = False,
        seed: int = 0,
        render_mode: str | None = None,
        n_workers: int | None = None,
    ) -> gym.vector.VectorEnv:
        """All tasks in one vector env with T * envs_per_task sub-envs, task-major.

        Sub-env ``t * envs_per_task + e`` is copy ``e`` of task ``t``. Autoreset is
        ``SAME_STEP``: the final observation of an episode is in ``info["final_obs"]``.
        With one worker (``n_workers``, default the suite's :attr:`n_workers`) it is an in-process
        ``SyncVectorEnv``; with N > 1 a :class:`~environments.workers.WorkerVectorEnv` stepping
        N contiguous slices of the sub-envs in N processes, with the same interface and results.

        Raises:
            ValueError: ``n_workers`` not in ``[1, T * envs_per_task]``.
        """
        fns = [
            (lambda t=t: self.make_env(t, test=test, seed=seed, render_mode=render_mode))
            for t in range(self.num_tasks)
            for _ in range(envs_per_task)
        ]
        n_workers = self.n_workers if n_workers is None else n_workers
        if n_workers != 1:
            from environments.workers import WorkerVectorEnv

            return WorkerVectorEnv(fns, n_workers)
        return gym.vector.SyncVectorEnv(
            fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP
        )

    def raw_obs_dim(self) -> int:
        """Length of one task's observation including the appended one-hot."""
        env = self.make_env(0)
        try:
            return int(np.prod(env.observation_space.shape))
        finally:
            env.close()

    def network_obs_indices(self, raw_obs_dim: int, include_task_id: bool) -> np.ndarray:
        """Indices of the raw observation fed to the networks (reference §4.0 split_observation).

        The original zeroes hidden entries for some suites and slices them off for others;
        both give the same function class, so here they are always sliced off.

        Args:
            raw_obs_dim: length of the raw observation, one-hot included.
            include_task_id: keep the trailing T one-hot entries.

        Returns:
            int64 array of kept indices, ascending.
        """
        base = raw_obs_dim - self.num_tasks
        keep = [i for i in range(base) if i not in set(self.private_obs_dims)]
        if include_task_id:
            keep += list(range(base, raw_obs_dim))
        return np.asarray(keep, dtype=np.int64)


class TaskOneHot(gym.ObservationWrapper):
    """Appends the one-hot task id (length T) to a flat Box observation and ``task_id`` to info."""

    def __init__(self, env: gym.Env, task: int, num_tasks: int):
        super().__init__(env)
        space = env.observation_space
        assert isinstance(space, gym.spaces.Box) and len(space.shape) == 1, space
        self.task = task
        self._one_hot = np.zeros(num_tasks, dtype=np.float32)
        self._one_hot[task] = 1.0
        self.observation_space = gym.spaces.Box(
            low=np.concatenate([space.low.astype(np.float32), np.zeros(num_tasks, np.float32)]),
            high=np.concatenate([space.high.astype(np.float32), np.ones(num_tasks, np.float32)]),
            dtype=np.float32,
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(observation, np.float32), self._one_hot])

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = super().step(action)
        info = dict(info)
        info["task_id"] = self.task
        info["success"] = bool(info.get("success", False))
        return obs, reward, terminated, truncated, info


SuiteBuilder = Callable[..., TaskSuite]
