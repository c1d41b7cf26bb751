"""MazeLarge-10-v0: reward, success and termination at known positions (reference §4.2)."""

import gymnasium as gym
import numpy as np
import pytest

import environments
from environments.maze import LARGE_10_TASKS


def at(env, pos, vel=(0.0, 0.0)):
    env.unwrapped.set_state(np.asarray(pos, float), np.asarray(vel, float))


def test_spaces_one_hot_and_hidden_task_id():
    suite = environments.get_suite("MazeLarge-10-v0")
    assert suite.num_tasks == 10 and suite.max_episode_steps == 600 and suite.min_reward == -1.0
    env = suite.make_env(3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (14,) and env.action_space.shape == (2,)
    assert obs[4:].tolist() == [0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
    assert suite.network_obs_indices(14, False).tolist() == [0, 1, 2, 3]
    assert suite.network_obs_indices(14, True).tolist() == list(range(14))


def test_reset_is_near_the_start_cell_and_seeded():
    suite = environments.get_suite("MazeLarge-10-v0")
    a, _ = suite.make_env(1).reset(seed=5)
    b, _ = suite.make_env(1).reset(seed=5)
    c, _ = suite.make_env(1).reset(seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert np.all(np.abs(a[:2] - np.array(LARGE_10_TASKS[1][0])) <= 0.1)


def test_dense_reward_success_and_termination_at_known_positions():
    env = environments.get_suite("MazeLarge-10-v0").make_env(0)
    env.reset(seed=0)
    goal = np.array(LARGE_10_TASKS[0][1], float)
    at(env, goal + [0.0, 1.0])  # one cell away: no success, reward exp(-d) - 1
    _, r, term, trunc, info = env.step(np.zeros(2))
    d = info["distance"]
    assert not info["success"] and not term and not trunc
    assert r == pytest.approx(np.exp(-d) - 1.0) and 0.9 < d < 1.1
    at(env, goal + [0.3, 0.0])
    _, r, term, _, info = env.step(np.zeros(2))
    assert info["success"] and term and r == pytest.approx(np.exp(-info["distance"]) - 1.0)


def test_sparse_task_reward_is_success_indicator():
    suite = environments.get_suite("MazeLarge-10-v0", sparse_tasks=(0,))
    assert suite.min_reward == -1.0  # the other 9 tasks stay dense
    env = suite.make_env(0)
    env.reset(seed=0)
    at(env, np.array(LARGE_10_TASKS[0][1], float) + [0.0, 1.0])
    assert env.step(np.zeros(2))[1] == 0.0
    at(env, np.array(LARGE_10_TASKS[0][1], float))
    assert env.step(np.zeros(2))[1] == 1.0
    with pytest.raises(ValueError, match="--sparse_tasks"):
        environments.get_suite("MazeLarge-10-v0", sparse_tasks=(10,))


def test_walls_block_and_time_limit_truncates():
    env = environments.get_suite("MazeLarge-10-v0").make_env(0)
    env.reset(seed=0)
    at(env, (1.0, 3.0))  # row 0 above is wall: pushing towards smaller x must stop near 0.4
    for t in range(599):
        _, _, term, trunc, _ = env.step(np.array([-1.0, 0.0], np.float32))
        assert not term and not trunc
    _, _, term, trunc, _ = env.step(np.array([-1.0, 0.0], np.float32))
    assert trunc and not term
    assert env.unwrapped.data.qpos[0] > 0.3
    assert np.all(np.abs(env.unwrapped.data.qvel) <= 5.0)


def test_gymnasium_registration_and_render():
    env = gym.make("MazeLarge-10-v0", task=2, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (480, 480, 3) and frame.std() > 0
    vec = gym.make_vec("MazeLarge-10-v0", num_envs=2)
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (20, 14) and obs[2, 4 + 1] == 1.0
    vec.close()


def test_quick_start_suite_tasks_at_known_positions():
    """MazeQuick-4-v0: four tasks from cell (3, 3) of the same large maze; goals in open cells."""
    from environments.maze import LARGE_MAZE, QUICK_4_TASKS

    suite = environments.get_suite("MazeQuick-4-v0")
    assert suite.num_tasks == 4 and suite.max_episode_steps == 600 and suite.min_reward == -1.0
    expected_goals = [(1, 1), (5, 1), (1, 4), (3, 6)]
    expected_d = [np.hypot(2, 2), np.hypot(2, 2), np.hypot(2, 1), 3.0]  # from (3, 3), by hand
    for task, (start, goal) in enumerate(QUICK_4_TASKS):
        assert start == (3, 3) and goal == expected_goals[task]
        assert LARGE_MAZE[goal[0]][goal[1]] == "O" and LARGE_MAZE[3][3] == "O"
        env = suite.make_env(task)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (8,) and obs[4 + task] == 1.0
        at(env, (3.0, 3.0))
        _, r, term, _, info = env.step(np.zeros(2))
        assert info["distance"] == pytest.approx(expected_d[task], abs=1e-6)
        assert r == pytest.approx(np.exp(-expected_d[task]) - 1.0, abs=1e-6) and not term
        at(env, np.array(goal, float) + [0.0, 0.4])
        _, _, term, _, info = env.step(np.zeros(2))
        assert info["success"] and term
