"""Meta-World MT10 / MT50 (reference §4.4) on metaworld 3.x (``-v3`` envs).

Each task env is one Meta-World class that holds all 50 goal/object variations ("tasks" in
Meta-World's vocabulary) of that class and switches to the next variation of a random
permutation on every reset (reshuffled after a full pass), like the original's per-task
wrapper (§4.4). Train envs draw their variations from ``metaworld.MT10(seed)`` /
``metaworld.MT50(seed)``, test envs from the benchmark seeded with ``seed + 100`` (§4.4).
Goals are observable (Meta-World's MT override), so the raw observation is Meta-World's
39-dim vector (hand 3, gripper 1, objects 14, previous frame 18, goal 3); the suite appends
the one-hot (49 / 89 entries). Rewards are Meta-World's "v2" shaped rewards in [0, 10]
(the ``reward_function_version`` default of the v3 classes); success is ``info["success"]``;
episodes never terminate and are truncated at 500 steps by the suite's TimeLimit.
"""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import numpy as np

from environments.base import TaskSuite

MT10_TASKS: tuple[str, ...] = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3",
    "drawer-close-v3", "button-press-topdown-v3", "peg-insert-side-v3",
    "window-open-v3", "window-close-v3",
)  # fmt: skip
"""MT10 task order (= one-hot index), §4.4."""

MT50_TASKS: tuple[str, ...] = tuple(
    f"{name}-v3"
    for name in (
        "assembly", "basketball", "bin-picking", "box-close", "button-press-topdown",
        "button-press-topdown-wall", "button-press", "button-press-wall", "coffee-button",
        "coffee-pull", "coffee-push", "dial-turn", "disassemble", "door-close", "door-lock",
        "door-open", "door-unlock", "hand-insert", "drawer-close", "drawer-open",
        "faucet-open", "faucet-close", "hammer", "handle-press-side", "handle-press",
        "handle-pull-side", "handle-pull", "lever-pull", "peg-insert-side",
        "pick-place-wall", "pick-out-of-hole", "reach", "push-back", "push", "pick-place",
        "plate-slide", "plate-slide-side", "plate-slide-back", "plate-slide-back-side",
        "peg-unplug-side", "soccer", "stick-push", "stick-pull", "push-wall", "reach-wall",
        "shelf-place", "sweep-into", "sweep", "window-open", "window-close",
    )
)  # fmt: skip
"""MT50 task order of the original (Meta-World v2 order at commit 04be337a, §4.4), -v3 names.

It differs from metaworld 3's own MT50 order (e.g. peg-insert-side, reach, push move)."""

MAX_EPISODE_STEPS = 500
"""Time limit of every Meta-World task (§4.0 table)."""

TEST_SEED_OFFSET = 100
"""Test envs use the benchmark seeded with ``seed + 100`` (§4.4)."""

_INNER_MAX_PATH_LENGTH = 1 << 30
"""Meta-World raises when stepped past its own ``max_path_length`` (500); the suite's TimeLimit
owns truncation, so the inner limit is pushed out of reach."""


@functools.lru_cache(maxsize=4)
def _benchmark(kind: str, seed: int) -> Any:
    """``metaworld.MT10(seed)`` or ``metaworld.MT50(seed)``, cached (construction takes
    about 5 s for MT10 and 25 s for MT50 on one core)."""
    import metaworld

    if kind == "MT10":
        return metaworld.MT10(seed=seed)
    if kind == "MT50":
        return metaworld.MT50(seed=seed)
    raise ValueError(f"unknown Meta-World benchmark kind {kind!r}")


def class_variations(kind: str, seed: int, name: str) -> tuple[Any, list[Any]]:
    """The env class and its 50 variations (``metaworld.types.Task``) from a cached benchmark.

    Args:
        kind: ``"MT10"`` or ``"MT50"``.
        seed: benchmark seed (already offset by 100 for test envs).
        name: Meta-World env name, e.g. ``"reach-v3"``.
    """
    bench = _benchmark(kind, seed)
    tasks = [t for t in bench.train_tasks if t.env_name == name]
    assert len(tasks) == 50, (name, len(tasks))
    return bench.train_classes[name], tasks


class MetaWorldVariationEnv(gym.Wrapper):
    """One Meta-World class cycling through its goal variations on every reset (§4.4).

    Observation: float32 (39,) — Meta-World's frame-stacked observation with the goal visible.
    Action: float32 (4,) in [-1, 1] (mocap Δxyz × 0.01 m, gripper effort).
    ``info["success"]`` is a bool. ``terminated`` and ``truncated`` are always False (the
    suite's TimeLimit truncates at 500 steps).

    Args:
        env_cls: Meta-World v3 env class.
        variations: its goal variations (``Task`` objects).
        seed: seeds the permutation RNG until ``reset(seed=...)`` reseeds it.
        render_mode: gymnasium render mode or None.
    """

    def __init__(
        self, env_cls: type, variations: list[Any], seed: int, render_mode: str | None = None
    ):
        inner = env_cls(render_mode=render_mode)
        inner.max_path_length = _INNER_MAX_PATH_LENGTH
        inner.set_task(variations[0])  # makes the goal observable, fixes the obs bounds
        super().__init__(inner)
        self.variations = list(variations)
        # Meta-World's bounds, except the goal entries (per-class goal ranges) are unbounded
        # so that every task of a suite shares one observation space (SyncVectorEnv needs it).
        low = inner.sawyer_observation_space.low.astype(np.float32)
        high = inner.sawyer_observation_space.high.astype(np.float32)
        low[-3:], high[-3:] = -np.inf, np.inf
        self.observation_space = gym.spaces.Box(low=low, high=high, dtype=np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
        self._rng = np.random.default_rng(seed)
        self._order: np.ndarray = np.zeros(0, dtype=np.int64)
        self._pos = 0
        self.variation_index = -1
        """Index (into ``variations``) of the variation of the current episode."""

    def _next_variation(self) -> int:
        if self._pos >= len(self._order):
            self._order = self._rng.permutation(len(self.variations))
            self._pos = 0
        idx = int(self._order[self._pos])
        self._pos += 1
        return idx

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._order = np.zeros(0, dtype=np.int64)
            self._pos = 0
        self.variation_index = self._next_variation()
        self.env.unwrapped.set_task(self.variations[self.variation_index])
        obs, info = self.env.reset()
        return np.asarray(obs, np.float32), dict(info)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, reward, _, _, info = self.env.step(np.asarray(action, np.float32))
        info = dict(info)
        info["success"] = bool(info.get("success", False))
        return np.asarray(obs, np.float32), float(reward), False, False, info


def _build(kind: str, names: tuple[str, ...], env_id: str, sparse_tasks: tuple[int, ...]):
    if sparse_tasks:
        raise ValueError(f"--sparse_tasks is not supported by {env_id} (dense rewards only)")

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None) -> gym.Env:
        bench_seed = seed + TEST_SEED_OFFSET if test else seed
        env_cls, variations = class_variations(kind, bench_seed, names[task])
        return MetaWorldVariationEnv(env_cls, variations, seed=bench_seed, render_mode=render_mode)

    return TaskSuite(
        env_id=env_id,
        task_names=names,
        make_task_env=make_task_env,
        max_episode_steps=MAX_EPISODE_STEPS,
        min_reward=0.0,
    )


def build_mt10(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """``MetaWorldMT10-v2``: 10 tasks, raw obs 39 + one-hot 10, action 4, 500 steps (§4.4)."""
    return _build("MT10", MT10_TASKS, "MetaWorldMT10-v2", sparse_tasks)


def build_mt50(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """``MetaWorldMT50-v2``: 50 tasks, raw obs 39 + one-hot 50, action 4, 500 steps (§4.4)."""
    return _build("MT50", MT50_TASKS, "MetaWorldMT50-v2", sparse_tasks)
