"""Vectorised collection over all tasks, and evaluation (DESIGN §5, reference §2.3, §3.13).

One gymnasium ``SyncVectorEnv`` holds T * E sub-envs (task-major). Each step the behaviour
policy acts for all of them in one batched call; the transition of sub-env (t, e) goes to
task t's buffer whatever policy produced it. Episodes continue across calls to
:meth:`Sampler.collect` (off-policy collection by steps, docs/deviations.md).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from learning.env_state import capture_vector_env, restore_vector_env
from learning.policies.behaviour import SwitchState
from learning.replay_buffer import TransitionBatch


class TaskSuite(Protocol):
    """What the sampler needs of a task suite (``environments.base.TaskSuite`` provides it; learning/
    does not import environments)."""

    num_tasks: int
    episode_info_keys: dict[str, str]

    def make_vector_env(self, envs_per_task: int, *, test: bool = False, seed: int = 0,
                        render_mode: str | None = None) -> Any: ...


@dataclass
class EpisodeRecord:
    """Statistics of finished episodes, one list per task (reference §3.13 log_performance)."""

    returns: list[list[float]]
    discounted_returns: list[list[float]]
    lengths: list[list[int]]
    successes: list[list[bool]]
    terminations: list[list[bool]]
    extras: dict[str, list[list[float]]] = field(default_factory=dict)

    @classmethod
    def empty(cls, num_tasks: int, extra_keys=()) -> "EpisodeRecord":
        lists = lambda: [[] for _ in range(num_tasks)]  # noqa: E731
        return cls(lists(), lists(), lists(), lists(), lists(), {k: lists() for k in extra_keys})


@contextlib.contextmanager
def single_thread():
    """Run the body with one torch intra-op thread.

    Acting works on tiny batches; with several OpenMP threads each small op pays thread
    synchronisation, which becomes ~100x slower when the cores are shared (bench/).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def step_info_values(info: dict, key: str, done: np.ndarray, default: float = 0.0) -> np.ndarray:
    """Per-env value of ``key`` in this step's info; for envs that just finished an episode the
    value comes from ``final_info`` (gymnasium SAME_STEP autoreset). Shape (N,)."""
    n = done.shape[0]
    out = np.full(n, default, dtype=np.float64)
    if key in info:
        mask = info.get("_" + key, np.ones(n, bool))
        out[mask] = np.asarray(info[key], dtype=np.float64)[mask]
    final = info.get("final_info")
    if final is not None and key in final:
        mask = final.get("_" + key, np.ones(n, bool)) & done
        out[mask] = np.asarray(final[key], dtype=np.float64)[mask]
    return out


class Sampler:
    """Steps T * E envs with a behaviour policy and accounts finished episodes per task.

    Args:
        suite: the task suite.
        envs_per_task: E.
        obs_indices: raw-observation indices the networks see.
        device: where observations are sent for the policy.
        seed: seeds sub-env i with ``seed + i`` at the first reset.
        test: build the evaluation copies of the envs.
        discount: gamma for discounted returns in the statistics.
    """

    def __init__(self, suite: TaskSuite, envs_per_task: int, obs_indices: np.ndarray,
                 device: torch.device, seed: int, test: bool = False, discount: float = 0.99):
        self.suite, self.envs_per_task, self.device = suite, envs_per_task, device
        self.num_tasks = suite.num_tasks
        self.obs_indices = torch.as_tensor(obs_indices, device=device)
        self.discount = discount
        self.env = suite.make_vector_env(envs_per_task, test=test, seed=seed)
        self.extra_keys = tuple(suite.episode_info_keys)
        obs, _ = self.env.reset(seed=seed)
        self._obs = self._to_tensor(obs)
        shape = (self.num_tasks, envs_per_task)
        self._ep_return, self._ep_disc = np.zeros(shape), np.zeros(shape)
        self._ep_len = np.zeros(shape, dtype=np.int64)
        self._ep_success = np.zeros(shape, dtype=bool)
        self._ep_extra_sum = {k: np.zeros(shape) for k in self.extra_keys}

    def _to_tensor(self, obs: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        return t.reshape(self.num_tasks, self.envs_per_task, -1)

    def network_obs(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.index_select(-1, self.obs_indices)

    def step(self, behaviour, state: SwitchState, record: EpisodeRecord,
             deterministic: bool = False, active: np.ndarray | None = None):
        """Advance every sub-env one step.

        Args:
            active: optional (T, E) bool; finished episodes of inactive envs are not recorded.

        Returns:
            (transition fields for this step, each (T, E, ...), chosen policy (T, E), done (T, E)).
        """
        obs = self.network_obs(self._obs)
        action, chosen = behaviour.act(obs, state, deterministic)
        t, e = self.num_tasks, self.envs_per_task
        next_raw, reward, terminated, truncated, info = self.env.step(
            action.reshape(t * e, -1).cpu().numpy())
        done = terminated | truncated
        real_next = np.asarray(next_raw, dtype=np.float32).copy()
        if "final_obs" in info:
            for i in np.flatnonzero(info["_final_obs"]):
                real_next[i] = info["final_obs"][i]
        success = step_info_values(info, "success", done).reshape(t, e) > 0
        extras = {k: step_info_values(info, k, done).reshape(t, e) for k in self.extra_keys}
        reward = reward.reshape(t, e)
        done_te, term_te = done.reshape(t, e), terminated.reshape(t, e)
        self._accumulate(reward, success, extras, done_te, term_te, record, active)
        transition = TransitionBatch(
            obs, action, torch.as_tensor(reward, dtype=torch.float32, device=self.device),
            self.network_obs(self._to_tensor(real_next)),
            torch.as_tensor(term_te, dtype=torch.float32, device=self.device))
        self._obs = self._to_tensor(next_raw)
        state.episode_started(torch.as_tensor(done_te, device=state.since_reset.device))
        return transition, chosen, done_te

    def _accumulate(self, reward, success, extras, done, terminated, record, active):
        self._ep_disc += reward * self.discount ** self._ep_len
        self._ep_return += reward
        self._ep_len += 1
        self._ep_success |= success
        for k, v in extras.items():
            self._ep_extra_sum[k] = v + (self._ep_extra_sum[k] if self._averaged(k) else 0.0)
        for ti, ei in zip(*np.nonzero(done)):
            if active is None or active[ti, ei]:
                record.returns[ti].append(float(self._ep_return[ti, ei]))
                record.discounted_returns[ti].append(float(self._ep_disc[ti, ei]))
                record.lengths[ti].append(int(self._ep_len[ti, ei]))
                record.successes[ti].append(bool(self._ep_success[ti, ei]))
                record.terminations[ti].append(bool(terminated[ti, ei]))
                for k in self.extra_keys:
                    value = self._ep_extra_sum[k][ti, ei]
                    if self._averaged(k):
                        value /= self._ep_len[ti, ei]
                    record.extras[k][ti].append(float(value))
        for arr in self._episode_accumulators():
            arr[done] = 0

    def _episode_accumulators(self) -> tuple[np.ndarray, ...]:
        """The per-env (T, E) running episode statistics, zeroed when an episode restarts."""
        return (self._ep_return, self._ep_disc, self._ep_len, self._ep_success,
                *self._ep_extra_sum.values())

    def _averaged(self, key: str) -> bool:
        """Velocity-like keys are averaged over the episode; others are read at its last step."""
        return self.suite.episode_info_keys[key] == "Velocity"

    def collect(self, behaviour, state: SwitchState, steps_per_env: int, record: EpisodeRecord,
                observer=None):
        """Collect ``steps_per_env`` steps from every sub-env; ``observer(transition, done)``, when
        given, sees every step (CTPG's segment recording).

        Returns:
            (transitions with fields (T, E * steps_per_env, ...), selection counts (T, T)
            where [i, j] counts task i's steps taken by policy j).
        """
        steps, counts = [], torch.zeros(self.num_tasks, self.num_tasks, dtype=torch.long)
        with single_thread():
            for _ in range(steps_per_env):
                transition, chosen, done = self.step(behaviour, state, record)
                if observer is not None:
                    observer(transition, done)
                steps.append(transition)
                counts += torch.nn.functional.one_hot(chosen.cpu(), self.num_tasks).sum(1)
        batch = TransitionBatch(*(torch.cat(field, dim=1) for field in zip(*steps)
                                  if field[0] is not None))  # the unset optional weight
        return batch, counts

    def reset(self) -> None:
        """Start fresh episodes in every sub-env (env RNGs continue; no re-seeding)."""
        obs, _ = self.env.reset()
        self._obs = self._to_tensor(obs)
        for arr in self._episode_accumulators():
            arr[...] = 0

    def state_dict(self) -> dict:
        """Env states (:mod:`learning.env_state`), current observations and running episode
        statistics: what a resumed run needs to continue the interrupted episodes exactly."""
        return {"env": capture_vector_env(self.env), "obs": self._obs.cpu(),
                "accumulators": [a.copy() for a in self._episode_accumulators()]}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` on a sampler built with the same suite and arguments."""
        restore_vector_env(self.env, state["env"])
        self._obs = state["obs"].to(self.device)
        for arr, saved in zip(self._episode_accumulators(), state["accumulators"]):
            arr[...] = saved

    def close(self) -> None:
        self.env.close()


def evaluate(sampler: Sampler, behaviour, episodes_per_task: int) -> EpisodeRecord:
    """Run ``episodes_per_task`` deterministic episodes per task on the test envs (reference §3.13).

    The sampler's E copies per task run in waves; within a wave each copy contributes its
    first episode only. Success of an episode = any step with ``info["success"]``.
    """
    record = EpisodeRecord.empty(sampler.num_tasks, sampler.extra_keys)
    with single_thread():
        _evaluate_waves(sampler, behaviour, episodes_per_task, record)
    return record


def _evaluate_waves(sampler: Sampler, behaviour, remaining: int, record: EpisodeRecord) -> None:
    t, e = sampler.num_tasks, sampler.envs_per_task
    while remaining > 0:
        active = np.zeros((t, e), dtype=bool)
        active[:, : min(e, remaining)] = True
        sampler.reset()
        state = SwitchState.initial(t, e, sampler.device)
        while active.any():
            _, _, done = sampler.step(behaviour, state, record, deterministic=True, active=active)
            active &= ~done
        remaining -= min(e, remaining)

