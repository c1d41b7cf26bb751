"""Vectorised collection over all tasks, and evaluation (DESIGN §5, reference §2.3, §3.13).

One gymnasium ``SyncVectorEnv`` holds T * E sub-envs (task-major). Each step the behaviour
policy acts for all of them in one batched call; the transition of sub-env (t, e) goes to
task t's buffer whatever policy produced it. Episodes continue across calls to
:meth:`Sampler.collect` (off-policy collection by steps, docs/deviations.md).
"""

from __future__ import annotations

import contextlib
import zlib
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

    Per step the hot path does one host-to-device copy of the network observations (none on the
    CPU, where the tensor shares the numpy array), one batched ``behaviour.act`` and one copy of
    the actions back; everything else (next observations, rewards, terminal flags, episode
    statistics) stays in numpy and :meth:`collect` writes it into preallocated arrays that become
    the batch's tensors once, at the end (bench/bench_collection.py).

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
        self._obs_idx = np.asarray(torch.as_tensor(obs_indices).cpu(), dtype=np.int64).reshape(-1)
        self._on_cpu = torch.device(device).type == "cpu"
        self.discount = discount
        self.env = suite.make_vector_env(envs_per_task, test=test, seed=seed)
        self.extra_keys = tuple(suite.episode_info_keys)
        self._averaged_keys = {k: suite.episode_info_keys[k] == "Velocity" for k in self.extra_keys}
        obs, _ = self.env.reset(seed=seed)
        self._set_obs(obs)
        shape = (self.num_tasks, envs_per_task)
        self._ep_return, self._ep_disc = np.zeros(shape), np.zeros(shape)
        self._ep_len = np.zeros(shape, dtype=np.int64)
        self._ep_success = np.zeros(shape, dtype=bool)
        self._ep_extra_sum = {k: np.zeros(shape) for k in self.extra_keys}

    # ------------------------------------------------------------------ observations
    def _select(self, raw32: np.ndarray) -> np.ndarray:
        """(N, raw_dim) float32 -> (N, obs_dim) network observation (a new array)."""
        return raw32[:, self._obs_idx]

    def _set_obs(self, raw) -> None:
        """Current raw observations (N, raw_dim), any dtype: kept as float32 (T, E, raw_dim) and
        as the network observation (T, E, obs_dim), numpy and torch (on ``device``)."""
        raw32 = np.array(raw, dtype=np.float32)  # a copy: the env may reuse its buffer
        self._set_obs32(raw32, self._select(raw32))

    def _set_obs32(self, raw32: np.ndarray, net: np.ndarray) -> None:
        t, e = self.num_tasks, self.envs_per_task
        self._raw_np = raw32.reshape(t, e, -1)
        self._net_np = net.reshape(t, e, -1)
        net_t = torch.from_numpy(self._net_np)
        self._net_t = net_t if self._on_cpu else net_t.to(self.device)

    @property
    def _obs(self) -> torch.Tensor:
        """Raw observations (T, E, raw_dim) float32 on ``device``."""
        raw = torch.from_numpy(self._raw_np)
        return raw if self._on_cpu else raw.to(self.device)

    def _to_tensor(self, obs: np.ndarray) -> torch.Tensor:
        t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        return t.reshape(self.num_tasks, self.envs_per_task, -1)

    def network_obs(self, raw: torch.Tensor) -> torch.Tensor:
        return raw.index_select(-1, self.obs_indices)

    # ------------------------------------------------------------------ stepping
    def _advance(self, behaviour, state: SwitchState, record: EpisodeRecord,
                 deterministic: bool = False, active: np.ndarray | None = None):
        """One step of every sub-env, all results but the actions in numpy.

        Returns:
            (obs (T, E, obs_dim) float32, action tensor (T, E, A) as acted, action numpy view
            (T * E, A), reward (T, E) float64, next_obs (T, E, obs_dim) float32 = the real final
            observation where an episode ended, terminated (T, E) bool, done (T, E) bool,
            chosen policy tensor (T, E)).
        """
        t, e = self.num_tasks, self.envs_per_task
        obs_np, obs_t = self._net_np, self._net_t
        action, chosen = behaviour.act(obs_t, state, deterministic)
        action_np = action.reshape(t * e, -1).cpu().numpy()
        next_raw, reward, terminated, truncated, info = self.env.step(action_np)
        done = terminated | truncated
        raw32 = np.array(next_raw, dtype=np.float32)
        next_net = self._select(raw32)
        real_next = next_net
        if "final_obs" in info:
            final_rows = np.flatnonzero(info["_final_obs"])
            if final_rows.size:
                real_next = next_net.copy()
                final = info["final_obs"]
                for i in final_rows:
                    real_next[i] = np.asarray(final[i], dtype=np.float32)[self._obs_idx]
        success = step_info_values(info, "success", done).reshape(t, e) > 0
        extras = {k: step_info_values(info, k, done).reshape(t, e) for k in self.extra_keys}
        reward = np.asarray(reward).reshape(t, e)
        done_te, term_te = done.reshape(t, e), terminated.reshape(t, e)
        any_done = bool(done.any())
        self._accumulate(reward, success, extras, done_te, term_te, record, active, any_done)
        self._set_obs32(raw32, next_net)
        if any_done:
            state.episode_started(torch.as_tensor(done_te, device=state.since_reset.device))
        return (obs_np, action, action_np, reward, real_next.reshape(t, e, -1), term_te, done_te,
                chosen)

    def _transition(self, obs, action, reward, next_obs, terminal) -> TransitionBatch:
        """One step's (T, E, ...) numpy fields as a batch of tensors on ``device``."""
        def tensor(x, dtype=torch.float32):
            return torch.as_tensor(x, dtype=dtype, device=self.device)
        return TransitionBatch(tensor(obs), action, tensor(reward), tensor(next_obs),
                               tensor(terminal))

    def step(self, behaviour, state: SwitchState, record: EpisodeRecord,
             deterministic: bool = False, active: np.ndarray | None = None):
        """Advance every sub-env one step.

        Args:
            active: optional (T, E) bool; finished episodes of inactive envs are not recorded.

        Returns:
            (transition fields for this step, each (T, E, ...), chosen policy (T, E), done (T, E)).
        """
        obs, action, _, reward, next_obs, term, done, chosen = self._advance(
            behaviour, state, record, deterministic, active)
        return self._transition(obs, action, reward, next_obs, term), chosen, done

    def _accumulate(self, reward, success, extras, done, terminated, record, active,
                    any_done: bool = True):
        self._ep_disc += reward * self.discount ** self._ep_len
        self._ep_return += reward
        self._ep_len += 1
        self._ep_success |= success
        for k, v in extras.items():
            self._ep_extra_sum[k] = v + (self._ep_extra_sum[k] if self._averaged(k) else 0.0)
        if not any_done:
            return
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
        return self._averaged_keys[key]

    def collect(self, behaviour, state: SwitchState, steps_per_env: int, record: EpisodeRecord,
                observer=None):
        """Collect ``steps_per_env`` steps from every sub-env; ``observer(transition, done)``, when
        given, sees every step (CTPG's segment recording).

        Returns:
            (transitions with fields (T, E * steps_per_env, ...), selection counts (T, T)
            where [i, j] counts task i's steps taken by policy j).
        """
        t, e, s_total = self.num_tasks, self.envs_per_task, steps_per_env
        obs_dim = self._net_np.shape[-1]
        # Step-major columns per task: column s * E + e holds step s of env copy e.
        obs_buf = np.empty((t, s_total, e, obs_dim), dtype=np.float32)
        next_buf = np.empty((t, s_total, e, obs_dim), dtype=np.float32)
        reward_buf = np.empty((t, s_total, e), dtype=np.float32)
        term_buf = np.empty((t, s_total, e), dtype=np.float32)
        actions, chosen = [], []
        with single_thread():
            for s in range(s_total):
                obs, action, action_np, reward, next_obs, term, done, c = self._advance(
                    behaviour, state, record)
                obs_buf[:, s] = obs
                next_buf[:, s] = next_obs
                reward_buf[:, s] = reward
                term_buf[:, s] = term
                actions.append(action)
                chosen.append(c)
                if observer is not None:
                    observer(TransitionBatch(
                        self._on_device(obs_buf[:, s]), action, self._on_device(reward_buf[:, s]),
                        self._on_device(next_buf[:, s]), self._on_device(term_buf[:, s])), done)
        if s_total:
            action_all = torch.stack(actions, dim=1)  # (T, S, E, A)
            chosen_all = torch.stack(chosen).to("cpu", torch.long)  # (S, T, E)
        else:
            action_all = torch.empty(t, 0, e, 0, device=self.device)
            chosen_all = torch.zeros(0, t, e, dtype=torch.long)
        flat = (chosen_all + torch.arange(t)[:, None] * t).reshape(-1)
        counts = torch.bincount(flat, minlength=t * t).reshape(t, t)
        batch = TransitionBatch(
            self._on_device(obs_buf).reshape(t, s_total * e, obs_dim),
            action_all.reshape(t, s_total * e, -1),
            self._on_device(reward_buf).reshape(t, s_total * e),
            self._on_device(next_buf).reshape(t, s_total * e, obs_dim),
            self._on_device(term_buf).reshape(t, s_total * e))
        return batch, counts

    def _on_device(self, x: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(x)
        return tensor if self._on_cpu else tensor.to(self.device)

    def reset(self, seed: int | None = None) -> None:
        """Start fresh episodes in every sub-env: env RNGs continue, or with ``seed`` sub-env i is
        re-seeded with ``seed + i``."""
        obs, _ = self.env.reset(seed=seed)
        self._set_obs(obs)
        for arr in self._episode_accumulators():
            arr[...] = 0

    def state_dict(self) -> dict:
        """Env states (:mod:`learning.env_state`), current observations and running episode
        statistics: what a resumed run needs to continue the interrupted episodes exactly."""
        return {"env": capture_vector_env(self.env), "obs": torch.from_numpy(self._raw_np.copy()),
                "accumulators": [a.copy() for a in self._episode_accumulators()]}

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict` on a sampler built with the same suite and arguments."""
        restore_vector_env(self.env, state["env"])
        raw = state["obs"].detach().cpu().numpy().reshape(self.num_tasks * self.envs_per_task, -1)
        self._set_obs(raw)
        for arr, saved in zip(self._episode_accumulators(), state["accumulators"]):
            arr[...] = saved

    def close(self) -> None:
        self.env.close()


def evaluation_seed(run_seed: int, epoch: int, mode: str) -> int:
    """The seed of one evaluation: a function of the run's ``--seed``, the epoch and the mode (the
    trainer's log prefix, ``""`` or ``"p/"``) only, in [0, 2**31), so that ``run.py evaluate`` can
    repeat any logged evaluation and no mode's episodes depend on another mode having run."""
    entropy = (run_seed, epoch, zlib.crc32(mode.encode()), 0x65766131)  # last: a tag for "eval"
    return int(np.random.SeedSequence(entropy).generate_state(1)[0] >> 1)


def evaluate(sampler: Sampler, behaviour, episodes_per_task: int,
             seed: int | None = None) -> EpisodeRecord:
    """Run ``episodes_per_task`` deterministic episodes per task on the test envs (reference §3.13).

    The sampler's E copies per task run in waves; within a wave each copy contributes its
    first episode only. Success of an episode = any step with ``info["success"]``.

    Args:
        seed: when given (the trainer passes :func:`evaluation_seed`), the test envs are
            re-seeded with it (sub-env i: ``seed + i``) and the behaviour's torch draws (a
            mixture's policy choice) come from ``torch.manual_seed(seed)`` inside a forked RNG:
            the result depends on the weights and the seed only, and the caller's torch RNG is
            left as it was. None: the envs' and torch's RNGs simply continue.
    """
    record = EpisodeRecord.empty(sampler.num_tasks, sampler.extra_keys)
    device = torch.device(sampler.device)
    forked = [device] if device.type == "cuda" else []
    with single_thread(), torch.random.fork_rng(devices=forked, enabled=seed is not None):
        if seed is not None:
            torch.manual_seed(seed)
        _evaluate_waves(sampler, behaviour, episodes_per_task, record, seed)
    return record


def _evaluate_waves(sampler: Sampler, behaviour, remaining: int, record: EpisodeRecord,
                    seed: int | None = None) -> None:
    t, e = sampler.num_tasks, sampler.envs_per_task
    while remaining > 0:
        active = np.zeros((t, e), dtype=bool)
        active[:, : min(e, remaining)] = True
        if seed is None:
            sampler.reset()
        else:
            sampler.reset(seed)
            seed = None  # later waves continue the envs' RNGs
        state = SwitchState.initial(t, e, sampler.device)
        while active.any():
            done = sampler._advance(behaviour, state, record, deterministic=True, active=active)[6]
            active &= ~done
        remaining -= min(e, remaining)

