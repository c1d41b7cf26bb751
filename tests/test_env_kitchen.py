"""Tests of ``KitchenMTEasy-v0`` (reference §4.6)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import environments  # noqa: E402,F401  (registers the ids)
from environments import get_suite  # noqa: E402
from environments.kitchen import (  # noqa: E402
    KitchenTaskEnv,
    SUCCESS_BONUS,
    TASK_NAMES,
    tolerance,
)

ID = "KitchenMTEasy-v0"
NAMES = (
    "slide cabinet-open", "slide cabinet-close", "hinge cabinet-open", "hinge cabinet-close",
    "bottom burner-on", "bottom burner-off", "top burner-on", "top burner-off",
    "light switch-on", "light switch-off",
)
# §4.6 table: element qpos indices, on/open state, off/closed state.
ELEMENTS = {
    "slide cabinet": ([19], [0.37], [-4.655e-4]),
    "hinge cabinet": ([20, 21], [0.0, 1.45], [-6.441e-3, -1.770e-3]),
    "bottom burner": ([11, 12], [-0.88, -0.01], [3.129e-5, -4.512e-5]),
    "top burner": ([15, 16], [-0.92, -0.01], [6.281e-5, 4.050e-5]),
    "light switch": ([17, 18], [-0.69, -0.05], [4.627e-4, -2.269e-4]),
}


def _element(k):
    name = NAMES[k].rsplit("-", 1)[0]
    idx, on, off = ELEMENTS[name]
    turn_on = NAMES[k].endswith(("-open", "-on"))
    start, target = (off, on) if turn_on else (on, off)
    return np.array(idx), np.array(start), np.array(target)


@pytest.fixture(scope="module")
def suite():
    return get_suite(ID)


def _place(env, idx, values):
    raw = env.unwrapped
    qpos = raw.data.qpos.copy()
    qpos[idx] = values
    raw.set_state(qpos, np.zeros(raw.model.nv))


def test_suite_facts_and_spaces(suite):
    assert suite.num_tasks == 10 and suite.task_names == NAMES == TASK_NAMES
    assert suite.max_episode_steps == 140 and suite.min_reward == -20.0
    env = suite.make_env(7)
    assert env.observation_space.shape == (70,)
    assert env.action_space.shape == (9,)
    assert np.all(env.action_space.low == -1) and np.all(env.action_space.high == 1)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (70,) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[60:], np.eye(10, dtype=np.float32)[7])
    assert list(suite.network_obs_indices(70, False)) == list(range(60))
    env.close()


def test_initial_element_states_and_goal_vector():
    goal_vecs = []
    for k in range(10):
        env = KitchenTaskEnv(k)
        obs, _ = env.reset(seed=1)
        idx, start, target = _element(k)
        np.testing.assert_allclose(env.data.qpos[idx], start, atol=1e-6)
        np.testing.assert_allclose(env._target, target, atol=1e-6)
        # noisy object qpos in the observation (±0.0005), noisy robot qpos (±0.01)
        assert np.all(np.abs(obs[idx] - env.data.qpos[idx]) <= 5e-4 + 1e-6)
        assert np.all(np.abs(obs[:9] - env.data.qpos[:9]) <= 1e-2 + 1e-6)
        assert not np.allclose(obs[:9], env.data.qpos[:9])
        goal = obs[30:60]
        assert goal[22] == pytest.approx(-0.75)  # microwave overwrite
        np.testing.assert_allclose(goal[[11, 12]], [-0.88, -0.01], atol=1e-6)  # bottom burner on
        np.testing.assert_allclose(goal[[17, 18]], [-0.69, -0.05], atol=1e-6)  # light on
        if NAMES[k].split(" ")[0] in ("slide", "hinge", "top"):
            np.testing.assert_allclose(goal[idx], target, atol=1e-6)
        goal_vecs.append(goal)
        env.close()
    np.testing.assert_array_equal(goal_vecs[4], goal_vecs[5])  # §6 #17 quirk
    np.testing.assert_array_equal(goal_vecs[8], goal_vecs[9])
    assert not np.array_equal(goal_vecs[0], goal_vecs[1])
    assert goal_vecs[1][19] == pytest.approx(-4.655e-4, abs=1e-6)


def test_success_gives_bonus_and_terminates(suite):
    for k in range(10):
        env = suite.make_env(k)
        env.reset(seed=k)
        idx, _, target = _element(k)
        _place(env, idx, target)
        _, reward, terminated, truncated, info = env.step(np.zeros(9))
        assert info["success"] and terminated and not truncated, NAMES[k]
        assert reward == SUCCESS_BONUS == 2800.0
        env.close()


def test_dense_reward_range_and_formula(suite):
    env = suite.make_env(1)  # slide cabinet-close: starts open at 0.37, threshold 0.1
    env.reset(seed=3)
    raw = env.unwrapped
    reward, info = raw.compute_reward()
    # at the start state in_place sits exactly at its margin (value 0.1); reach does not (its
    # margin comes from the end_effector site, dist_hand from the finger bodies)
    assert info["in_place"] == pytest.approx(0.1)
    assert 0.0 < info["reach"] < 1.0 and info["reach"] != pytest.approx(0.1, abs=1e-3)
    assert reward == pytest.approx(20 * (0.4 * 0.1 + 0.6 * info["reach"] - 1))
    _place(env, [19], [0.25])  # dist_goal 0.25 > 0.1: no success
    reward, info = raw.compute_reward()
    assert not info["success"]
    assert info["dist_goal"] == pytest.approx(0.25 + 4.655e-4, abs=1e-6)
    expected_in_place = tolerance(info["dist_goal"], 0.1, 0.37 + 4.655e-4 - 0.1)
    assert 0.1 < expected_in_place < 1 and info["in_place"] == pytest.approx(expected_in_place)
    assert reward == pytest.approx(20 * (0.4 * info["in_place"] + 0.6 * info["reach"] - 1))
    rng = np.random.default_rng(0)
    env.reset(seed=4)
    for _ in range(25):
        _, reward, terminated, _, info = env.step(rng.uniform(-1, 1, 9))
        assert -20.0 <= reward <= 0.0 and not terminated and not info["success"]
    env.close()


def test_tolerance_matches_dm_control():
    from dm_control.utils import rewards

    for x in (0.0, 0.05, 0.1, 0.2, 0.5, 1.3):
        for margin in (0.0, 0.27, 1.0):
            ref = rewards.tolerance(x, bounds=(0, 0.1), margin=margin, sigmoid="gaussian",
                                    value_at_margin=0.1)
            assert tolerance(x, 0.1, margin) == pytest.approx(float(ref))


def _site(env, name):
    return env.data.site_xpos[mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_SITE, name)].copy()


def _finger_midpoint(env):
    ids = [mujoco.mj_name2id(env.model, mujoco.mjtObj.mjOBJ_BODY, b)
           for b in ("panda0_leftfinger", "panda0_rightfinger")]
    assert min(ids) >= 0
    return 0.5 * (env.data.xpos[ids[0]] + env.data.xpos[ids[1]])


# A non-trivial arm pose (within the joint ranges) with asymmetric finger openings.
_ARM_QPOS = np.array([0.6, -1.1, 1.2, -2.0, 0.5, 1.3, 1.0, 0.012, 0.033])


def _set_robot(env, robot_qpos):
    qpos = env.data.qpos.copy()
    qpos[:9] = robot_qpos
    env.set_state(qpos, np.zeros(env.model.nv))


@pytest.mark.parametrize("task,site", [(1, "slide_site"), (5, "knob2_site")])
def test_dist_hand_uses_finger_body_origins(task, site):
    env = KitchenTaskEnv(task)
    env.reset(seed=0)
    for state in ("reset", "posed"):
        if state == "posed":
            _set_robot(env, _ARM_QPOS)
        expected = np.linalg.norm(_site(env, site) - _finger_midpoint(env))
        _, info = env.compute_reward()
        assert info["dist_hand"] == pytest.approx(expected, abs=1e-9), state
        assert env.distances()[1] == pytest.approx(expected, abs=1e-9), state
    env.close()


def test_finger_midpoint_lies_short_of_end_effector():
    # chain.xml: end_effector site at z = 0.210 of link 7, finger bodies at z = 0.1654 of the
    # hand; with equal finger openings their midpoint is on the axis, 0.0446 m short of it.
    env = KitchenTaskEnv(0)
    env.reset(seed=0)
    _set_robot(env, np.r_[_ARM_QPOS[:7], 0.02, 0.02])
    mid, ee = _finger_midpoint(env), _site(env, "end_effector")
    assert np.linalg.norm(mid - ee) == pytest.approx(0.210 - 0.1654, abs=1e-6)
    np.testing.assert_allclose(env.hand_position(), mid, atol=1e-12)
    env.close()


@pytest.mark.parametrize("task,site", [(1, "slide_site"), (5, "knob2_site")])
def test_reach_margin_uses_end_effector_at_reset(task, site):
    from dm_control.utils import rewards

    env = KitchenTaskEnv(task)
    env.reset(seed=0)
    d0 = np.linalg.norm(_site(env, site) - _site(env, "end_effector"))  # at the reset state
    margin = abs(d0 - 0.08)
    for state in ("reset", "posed"):
        if state == "posed":
            _set_robot(env, _ARM_QPOS)  # element untouched: in_place stays at its margin (0.1)
        dist_hand = np.linalg.norm(_site(env, site) - _finger_midpoint(env))
        reach = float(rewards.tolerance(dist_hand, bounds=(0, 0.08), margin=margin,
                                        sigmoid="gaussian", value_at_margin=0.1))
        reward, info = env.compute_reward()
        assert not info["success"]
        assert info["reach"] == pytest.approx(reach, rel=1e-9), state
        assert reward == pytest.approx(20 * (0.4 * 0.1 + 0.6 * reach - 1), rel=1e-9), state
    env.close()


def test_velocity_control_targets():
    env = KitchenTaskEnv(2)
    env.reset(seed=0)
    a = np.linspace(-0.9, 0.9, 9)
    prev = env._last_robot_qpos.copy()
    env.step(a)
    bounds = env.robot_pos_bound[:9]
    expected = np.clip(prev + 2.0 * a * 0.08, bounds[:, 0], bounds[:, 1])
    np.testing.assert_allclose(env.data.ctrl[:9], expected, atol=1e-9)
    env.close()


def test_truncation_at_140(suite):
    env = suite.make_env(0)
    env.reset(seed=0)
    for t in range(1, 141):
        _, _, terminated, truncated, _ = env.step(np.zeros(9))
        assert not terminated
        assert truncated == (t == 140)
    env.close()


def test_sparse_tasks():
    s = get_suite(ID, sparse_tasks=(1,))
    env = s.make_env(1)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.zeros(9))
    assert reward == 0.0 and not terminated and not info["success"]
    _place(env, [19], [0.0])
    _, reward, terminated, _, info = env.step(np.zeros(9))
    assert reward == 1.0 and terminated and info["success"]
    env.close()
    dense = s.make_env(0)
    dense.reset(seed=0)
    assert dense.step(np.zeros(9))[1] < 0
    dense.close()
    with pytest.raises(ValueError, match="sparse_tasks"):
        get_suite(ID, sparse_tasks=(10,))


def test_same_seed_same_first_obs(suite):
    def first(seed, test=False):
        env = suite.make_env(3, test=test, seed=0)
        obs = env.reset(seed=seed)[0]
        env.close()
        return obs

    np.testing.assert_array_equal(first(5), first(5))
    assert not np.array_equal(first(5), first(6))
    # without a reset seed, the construction seed decides
    a, b = KitchenTaskEnv(3, seed=9), KitchenTaskEnv(3, seed=9)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])


def test_render_frame(suite):
    env = suite.make_env(8, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert frame.std() > 1.0


def test_gym_make_and_make_vec():
    env = gym.make(ID, task=4)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (70,) and obs[60 + 4] == 1.0
    env.close()
    venv = gym.make_vec(ID, num_envs=1)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (10, 70)
    np.testing.assert_array_equal(obs[:, 60:], np.eye(10, dtype=np.float32))
    obs, rew, term, trunc, info = venv.step(np.zeros((10, 9)))
    assert rew.shape == (10,) and np.all(rew <= 0) and not term.any()
    venv.close()
