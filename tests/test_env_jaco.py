"""Tests of the ``JacoReachMT5-v1`` suite (environments/jaco.py, reference §4.1)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import environments  # noqa: E402,F401  (registers the ids)
from environments.jaco import (  # noqa: E402
    SUBGOALS,
    JacoReachMultistageEnv,
    build_jaco_reach_mt5,
)
from environments.jaco_model import GEARS, HOME_QPOS, hand_position, solve_ik  # noqa: E402

ID = "JacoReachMT5-v1"


@pytest.fixture(scope="module")
def suite():
    return build_jaco_reach_mt5()


def hold_action(env: JacoReachMultistageEnv) -> np.ndarray:
    """Action cancelling gravity at the current state (qfrc_bias / gear, clipped)."""
    mujoco.mj_forward(env.model, env.data)
    return np.clip(env.data.qfrc_bias / np.asarray(GEARS), -1.0, 1.0)


def place_hand(env: JacoReachMultistageEnv, goal: np.ndarray) -> None:
    """Put the arm at rest in a configuration whose hand is at ``goal``."""
    q, err = solve_ik(env.model, goal, q_start=env.data.qpos.copy())
    assert err < 1e-3
    env.set_state(q, np.zeros(6))


def scripted_action(env: JacoReachMultistageEnv, q_target: np.ndarray) -> np.ndarray:
    """Gravity compensation + joint PD towards ``q_target`` (light gains on the wrist)."""
    tmp = mujoco.MjData(env.model)
    tmp.qpos[:] = env.data.qpos
    mujoco.mj_forward(env.model, tmp)
    kp = np.array([20.0, 20.0, 20.0, 2.0, 2.0, 1.0])
    kd = np.array([2.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    tau = tmp.qfrc_bias + kp * (q_target - env.data.qpos) - kd * env.data.qvel
    return np.clip(tau / np.asarray(GEARS), -1.0, 1.0)


def test_spaces_names_and_suite_facts(suite):
    assert suite.num_tasks == 5
    assert suite.task_names[3].endswith("sparse") and suite.task_names[4] == "stay"
    assert len(set(suite.task_names)) == 5
    assert suite.max_episode_steps == 200 and suite.min_reward == -5.0
    assert suite.private_obs_dims == (15, 16, 17)
    assert suite.episode_info_keys == {"stages_completed": "StagesCompleted"}
    assert suite.raw_obs_dim() == 23
    for k in range(5):
        env = suite.make_env(k)
        assert env.observation_space.shape == (23,)
        assert env.action_space.shape == (6,)
        assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
        obs, _ = env.reset(seed=0)
        assert obs.dtype == np.float32 and obs.shape == (23,)
        np.testing.assert_array_equal(obs[18:], np.eye(5)[k])
        np.testing.assert_array_equal(obs[12:15], [1, 0, 0])  # stage one-hot
        np.testing.assert_allclose(obs[15:18], env.unwrapped.hand_pos, atol=1e-6)
        env.close()
    kept = suite.network_obs_indices(23, include_task_id=True)
    assert not set(kept) & {15, 16, 17} and len(kept) == 20
    assert len(suite.network_obs_indices(23, include_task_id=False)) == 15


def test_sparse_tasks_rejected():
    with pytest.raises(ValueError, match="--sparse_tasks"):
        build_jaco_reach_mt5(sparse_tasks=(3,))


def test_gym_make_and_make_vec():
    env = gym.make(ID, task=2)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (23,) and obs[18 + 2] == 1.0
    env.close()
    venv = gym.make_vec(ID, num_envs=1)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (5, 23)
    obs, rew, term, trunc, _ = venv.step(np.zeros((5, 6), np.float32))
    assert obs.shape == (5, 23) and rew.shape == (5,)
    venv.close()


def test_subgoals_reachable_and_holdable():
    env = JacoReachMultistageEnv(0)
    for g in SUBGOALS.values():
        q, err = solve_ik(env.model, np.array(g))
        assert err < 1e-3, g
        env.set_state(q, np.zeros(6))
        # gravity torque needed to hold the pose stays inside the motors' range
        assert np.all(np.abs(env.data.qfrc_bias) / np.asarray(GEARS) < 0.9)
    env.close()


def test_hand_on_subgoal_advances_stage_with_success(suite):
    env = suite.make_env(0)
    env.reset(seed=0)
    raw = env.unwrapped
    np.testing.assert_allclose(raw.data.mocap_pos[0], SUBGOALS["g0"])
    _, r0, _, _, info = env.step(np.zeros(6))
    assert not info["success"] and info["stages_completed"] == 0
    assert r0 < -0.4 * 3  # -d - 1.2 + ctrl
    place_hand(raw, np.array(SUBGOALS["g0"]))
    obs, reward, term, trunc, info = env.step(hold_action(raw))
    assert info["success"] and info["stages_completed"] == 1 and not term
    np.testing.assert_array_equal(obs[12:15], [0, 1, 0])
    np.testing.assert_allclose(raw.data.mocap_pos[0], SUBGOALS["g1"])
    # reward = -d + stage term with the updated stage (-0.4 * 2) + ctrl term (§4.1)
    assert info["dist_reward"] == pytest.approx(-info["distance"]) and info["distance"] < 0.05
    assert info["stage_reward"] == pytest.approx(-0.8)
    assert -0.1 < info["ctrl_reward"] < 0
    assert reward == pytest.approx(info["dist_reward"] - 0.8 + info["ctrl_reward"])
    env.close()


def test_success_bonus_task_reward(suite):
    env = suite.make_env(1)
    env.reset(seed=0)
    place_hand(env.unwrapped, np.array(SUBGOALS["g0"]))
    _, reward, _, _, info = env.step(hold_action(env.unwrapped))
    assert info["success"] and info["stage_reward"] == 200.0
    assert reward == pytest.approx(info["dist_reward"] + 200 + info["ctrl_reward"] - 2)
    _, reward, _, _, info = env.step(np.zeros(6))
    assert not info["success"] and info["stage_reward"] == 0.0
    assert reward == pytest.approx(-info["distance"] + info["ctrl_reward"] - 2)
    env.close()


def test_sparse_task_has_no_distance_term(suite):
    env = suite.make_env(3)
    env.reset(seed=0)
    rewards = []
    for _ in range(3):
        _, r, _, _, info = env.step(np.zeros(6))
        assert info["dist_reward"] == 0.0 and info["distance"] > 0.05
        assert r == pytest.approx(-1.2 + info["ctrl_reward"])
        rewards.append(r)
    place_hand(env.unwrapped, np.array(SUBGOALS["g1"]))
    _, r, _, _, info = env.step(hold_action(env.unwrapped))
    assert info["success"] and r == pytest.approx(-0.8 + info["ctrl_reward"])
    env.close()


def test_termination_after_third_subgoal_vs_truncation(suite):
    env = suite.make_env(2)
    env.reset(seed=0)
    raw = env.unwrapped
    for stage, name in enumerate(("g1", "g3", "g2")):
        place_hand(raw, np.array(SUBGOALS[name]))
        obs, r, term, trunc, info = env.step(hold_action(raw))
        assert info["success"] and info["stages_completed"] == stage + 1
        assert term == (stage == 2) and not trunc
    assert info["stage_reward"] == 0.0
    np.testing.assert_array_equal(obs[12:15], [0, 0, 0])
    env.reset(seed=1)
    for t in range(200):
        _, _, term, trunc, _ = env.step(np.zeros(6))
        assert not term
    assert trunc
    env.close()


@pytest.mark.parametrize("task", [0, 1, 2, 3, 4])
def test_scripted_controller_completes_every_task(task):
    env = JacoReachMultistageEnv(task)
    env.reset(seed=0)
    targets = [solve_ik(env.model, g)[0] for g in env.goals]
    for t in range(200):
        a = scripted_action(env, targets[min(env.stage, 2)])
        _, _, term, _, info = env.step(a)
        if term:
            break
    assert term and info["stages_completed"] == 3 and "unstable" not in info
    if task == 4:
        assert t + 1 == 90  # 90 successful steps, one per step from the start
    env.close()


def test_stay_task_goal_is_own_start_hand_and_counts_successes(suite):
    train = suite.make_env(4).unwrapped
    test = suite.make_env(4, test=True).unwrapped
    home_hand = hand_position(train.model, HOME_QPOS)
    for env in (train, test):
        assert env.is_stay
        np.testing.assert_allclose(env.goals, np.tile(home_hand, (3, 1)))
    assert train.goals is not test.goals
    train.goals[:] = 0.0  # mutating one instance must not leak into another (§4.1 "Bug")
    np.testing.assert_allclose(test.goals[0], home_hand)
    test.reset(seed=0)
    for k in range(31):
        place_hand(test, home_hand)
        _, r, term, _, info = test.step(hold_action(test))
        assert info["success"] and not term
        assert info["stage_reward"] == 0.0
        assert r == pytest.approx(-info["distance"] + info["ctrl_reward"])
    assert test.success_count == 31 and info["stages_completed"] == 1
    _, _, _, _, info = test.step(-np.ones(6))
    assert info["stages_completed"] == 1  # failures do not reset the count
    train.close()
    test.close()


def test_instability_penalty_returns_previous_obs(suite):
    env = suite.make_env(0)
    obs0, _ = env.reset(seed=0)
    obs1, *_ = env.step(np.zeros(6))
    env.unwrapped.data.qvel[:] = 1e30  # triggers MuJoCo's bad-qvel warning
    previous_handler = mujoco.get_mju_user_warning()
    mujoco.set_mju_user_warning(lambda msg: None)  # keep MUJOCO_LOG.TXT out of the cwd
    try:
        obs2, r, term, trunc, info = env.step(np.zeros(6))
    finally:
        mujoco.set_mju_user_warning(previous_handler)
    assert r == -100.0 and term and not trunc and info["unstable"]
    np.testing.assert_array_equal(obs2, obs1)
    env.close()


def test_same_seed_same_first_obs(suite):
    a, b = suite.make_env(1), suite.make_env(1)
    oa, _ = a.reset(seed=7)
    ob, _ = b.reset(seed=7)
    np.testing.assert_array_equal(oa, ob)
    oc, _ = a.reset(seed=8)
    assert not np.array_equal(oa, oc)
    a.reset(seed=7)
    for _ in range(3):
        act = np.full(6, 0.3)
        np.testing.assert_array_equal(a.step(act)[0], b.step(act)[0])
    a.close()
    b.close()


def test_render_frame(suite):
    env = suite.make_env(0, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert frame.std() > 5


def test_domain_mixture_rows(suite):
    m = suite.domain_mixture
    assert m.shape == (5, 5)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    assert np.all(np.diag(m) > 0) and np.all(m >= 0)
    # tasks 0 and 1 share start->g0 and g0->g1; the stay task shares nothing
    assert m[0, 1] == pytest.approx(2 / 6) and m[0, 2] == 0.0
    np.testing.assert_array_equal(m[4], [0, 0, 0, 0, 1])
    assert m[4, :4].sum() == 0 and m[:4, 4].sum() == 0
