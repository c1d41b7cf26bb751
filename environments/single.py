"""Any registered gymnasium continuous-control id as a one-task suite."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from environments.base import TaskSuite


def is_single_task_id(env_id: str) -> bool:
    return env_id in gym.registry and gym.registry[env_id].entry_point is not None


def build_single_task_suite(env_id: str) -> TaskSuite:
    """Wrap ``gymnasium.make(env_id)`` as a suite with T = 1.

    Raises:
        ValueError: if the env's action space is not a Box (only continuous control).
    """
    spec = gym.registry[env_id]
    probe = gym.make(env_id)
    try:
        if not isinstance(probe.action_space, gym.spaces.Box):
            raise ValueError(
                f"--env={env_id} has a {type(probe.action_space).__name__} action space; "
                "only Box (continuous) action spaces are supported"
            )
    finally:
        probe.close()
    max_steps = spec.max_episode_steps or 1000

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None):
        env = gym.make(env_id, render_mode=render_mode, max_episode_steps=None)
        # gym.make adds its own TimeLimit when the spec has one; the suite adds ours.
        while isinstance(env, gym.wrappers.TimeLimit):
            env = env.env
        return gym.wrappers.FlattenObservation(env) if not _is_flat(env) else env

    return TaskSuite(
        env_id=env_id,
        task_names=(env_id,),
        make_task_env=make_task_env,
        max_episode_steps=max_steps,
        min_reward=-np.inf,
        success_is_meaningful=False,
    )


def _is_flat(env: gym.Env) -> bool:
    space = env.observation_space
    return isinstance(space, gym.spaces.Box) and len(space.shape) == 1
