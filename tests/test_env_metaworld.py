"""Tests of the Meta-World MT10 / MT50 suites (reference §4.4)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pickle

import gymnasium as gym
import numpy as np
import pytest

import environments  # noqa: F401  (registers the ids)
from environments import metaworld_mt
from environments.metaworld_mt import MT10_TASKS, MT50_TASKS, build_mt10, build_mt50

MT10_ORDER = [
    "reach", "push", "pick-place", "door-open", "drawer-open", "drawer-close",
    "button-press-topdown", "peg-insert-side", "window-open", "window-close",
]  # fmt: skip


@pytest.fixture(scope="module")
def mt10():
    return build_mt10()


def _goal(obs: np.ndarray) -> np.ndarray:
    return obs[36:39]


def test_mt10_facts(mt10):
    assert mt10.env_id == "MetaWorldMT10-v2"
    assert list(mt10.task_names) == [f"{n}-v3" for n in MT10_ORDER]
    assert mt10.num_tasks == 10
    assert mt10.max_episode_steps == 500
    assert mt10.min_reward == 0.0
    assert mt10.private_obs_dims == ()


def test_mt50_names_follow_original_order():
    import metaworld.env_dict as env_dict

    suite = build_mt50()
    assert suite.num_tasks == 50 and len(set(suite.task_names)) == 50
    assert set(suite.task_names) == set(env_dict.MT50_V3)
    # v2 order of the original (§4.4), which differs from metaworld 3's own MT50 order.
    assert suite.task_names[0] == "assembly-v3"
    assert suite.task_names.index("peg-insert-side-v3") == 28
    assert suite.task_names.index("reach-v3") == 31
    assert suite.task_names.index("push-v3") == 33
    assert suite.task_names[-2:] == ("window-open-v3", "window-close-v3")
    assert list(env_dict.MT50_V3).index("reach-v3") != 31


def test_sparse_tasks_rejected():
    with pytest.raises(ValueError, match="--sparse_tasks"):
        build_mt10(sparse_tasks=(0,))


def test_spaces_and_one_hot(mt10):
    env = mt10.make_env(3)
    try:
        assert env.observation_space.shape == (49,)
        assert env.observation_space.dtype == np.float32
        assert env.action_space.shape == (4,)
        np.testing.assert_array_equal(env.action_space.low, -np.ones(4))
        np.testing.assert_array_equal(env.action_space.high, np.ones(4))
        obs, _ = env.reset(seed=0)
        assert obs.shape == (49,) and obs.dtype == np.float32
        expected = np.zeros(10, np.float32)
        expected[3] = 1.0
        np.testing.assert_array_equal(obs[39:], expected)
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        np.testing.assert_array_equal(obs[39:], expected)
        assert info["task_id"] == 3 and isinstance(info["success"], bool)
        assert reward >= 0.0 and not terminated and not truncated
        # Networks see the 39 Meta-World entries; the one-hot only with include_task_id.
        np.testing.assert_array_equal(mt10.network_obs_indices(49, False), np.arange(39))
        np.testing.assert_array_equal(mt10.network_obs_indices(49, True), np.arange(49))
    finally:
        env.close()


def test_variations_cycle_through_all_goals(mt10):
    env = mt10.make_env(0)
    try:
        inner = env.unwrapped
        wrapper = env.env.env
        goals, indices = [], []
        for k in range(51):
            obs, _ = env.reset(seed=7) if k == 0 else env.reset()
            goals.append(_goal(obs).copy())
            indices.append(wrapper.variation_index)
            np.testing.assert_allclose(_goal(obs), inner._target_pos, atol=1e-6)
        # The first 50 resets visit each of the 50 variations once (one permutation pass).
        assert sorted(indices[:50]) == list(range(50))
        assert len({tuple(np.round(g, 6)) for g in goals[:50]}) == 50
        assert not np.allclose(goals[0], goals[1])
    finally:
        env.close()


def test_same_seed_same_first_obs_and_train_test_differ(mt10):
    envs = [mt10.make_env(1, seed=0) for _ in range(2)] + [mt10.make_env(1, seed=0, test=True)]
    try:
        first = [e.reset(seed=11)[0] for e in envs]
        np.testing.assert_array_equal(first[0], first[1])
        assert not np.allclose(_goal(first[0]), _goal(first[2]))
        other_seed = envs[0].reset(seed=12)[0]
        assert not np.allclose(first[0], other_seed)
        # Test variations come from the seed+100 benchmark: disjoint goal sets.
        def rand_vecs(env):
            return {pickle.loads(t.data)["rand_vec"].tobytes() for t in env.env.env.variations}

        train_vecs, test_vecs = rand_vecs(envs[0]), rand_vecs(envs[2])
        assert len(train_vecs) == 50 and not train_vecs & test_vecs
    finally:
        for e in envs:
            e.close()


def test_reach_success_when_hand_at_goal(mt10):
    env = mt10.make_env(0)
    try:
        env.reset(seed=3)
        inner = env.unwrapped
        _, reward, _, _, info = env.step(np.zeros(4, np.float32))
        assert np.linalg.norm(inner.tcp_center - inner._target_pos) > 0.05
        assert not info["success"] and 0.0 <= reward < 10.0
        # Drive the gripper centre onto the goal with a proportional mocap controller.
        for _ in range(80):
            delta = inner._target_pos - inner.tcp_center
            _, reward, terminated, _, info = env.step(np.r_[np.clip(delta * 100, -1, 1), 0.0])
        assert np.linalg.norm(inner.tcp_center - inner._target_pos) <= 0.05
        assert info["success"] is True
        assert reward == pytest.approx(10.0)
        assert not terminated  # success does not end a Meta-World episode
    finally:
        env.close()


def test_truncation_at_500_without_termination(mt10):
    env = mt10.make_env(0)
    try:
        env.reset(seed=0)
        zero = np.zeros(4, np.float32)
        for t in range(1, 501):
            _, _, terminated, truncated, _ = env.step(zero)
            assert not terminated
            assert truncated == (t == 500)
        env.reset()  # the inner Meta-World limit never raises
        assert env.step(zero)[3] is False
    finally:
        env.close()


def test_gym_make_and_make_vec_shapes():
    env = gym.make("MetaWorldMT10-v2", task=2)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (49,) and obs[39 + 2] == 1.0
    finally:
        env.close()
    venv = gym.make_vec("MetaWorldMT10-v2", num_envs=1)
    try:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (10, 49)
        np.testing.assert_array_equal(obs[:, 39:], np.eye(10, dtype=np.float32))
        obs, rew, term, trunc, _ = venv.step(np.zeros((10, 4), np.float32))
        assert obs.shape == (10, 49) and rew.shape == (10,)
    finally:
        venv.close()


def test_rendered_frame(mt10):
    env = mt10.make_env(4, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
        assert frame.std() > 1.0
    finally:
        env.close()


def test_mt50_env_layout(monkeypatch):
    """MT50 wiring with a one-class stand-in benchmark (the real MT50 takes ~25 s to build)."""
    import metaworld

    class OneClassBenchmark:
        def __init__(self, name: str, seed: int):
            mt1 = metaworld.MT1(name, seed=seed)
            self.train_tasks = mt1.train_tasks
            self.train_classes = mt1.train_classes

    monkeypatch.setattr(
        metaworld_mt, "_benchmark", lambda kind, seed: OneClassBenchmark("window-close-v3", seed)
    )
    suite = build_mt50()
    env = suite.make_env(49)
    try:
        assert env.observation_space.shape == (89,)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (89,) and obs[-1] == 1.0 and obs[39:-1].sum() == 0.0
        assert np.any(_goal(obs) != 0.0)  # goal observable
        assert env.step(np.zeros(4, np.float32))[0].shape == (89,)
    finally:
        env.close()


@pytest.mark.slow
def test_mt50_real_benchmark_one_env():
    env = build_mt50().make_env(MT50_TASKS.index("door-open-v3"), seed=0)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (89,) and obs[39 + 15] == 1.0
        assert env.unwrapped.__class__.__name__ == "SawyerDoorEnvV3"
    finally:
        env.close()


def test_mt10_task_classes(mt10):
    import metaworld.env_dict as env_dict

    for k in (0, 9):
        env = mt10.make_env(k)
        try:
            assert isinstance(env.unwrapped, env_dict.ENV_CLS_MAP[MT10_TASKS[k]])
        finally:
            env.close()
