"""Tests of MetaWorldCDS-v1: door/drawer tasks in one composed scene (reference §4.5)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym
import mujoco
import numpy as np
import pytest

import environments  # noqa: F401  (registers the ids)
from environments.metaworld_cds import CDS_TASKS, build_cds
from environments.metaworld_cds_scene import DOOR_POS, DRAWER_POS, scene_model

ZERO = np.zeros(4, np.float32)


@pytest.fixture(scope="module")
def suite():
    return build_cds()


def _make(suite, task, **kw):
    env = suite.make_env(task, **kw)
    env.reset(seed=0)
    return env, env.unwrapped


def _set_and_step(u, env, door: float | None = None, drawer: float | None = None):
    if door is not None:
        u._set_joint(u.door_qpos_adr, u.door_qvel_adr, door)
    if drawer is not None:
        u._set_joint(u.drawer_qpos_adr, u.drawer_qvel_adr, drawer)
    return env.step(ZERO)


def test_facts_and_sparse_rejected(suite):
    assert suite.env_id == "MetaWorldCDS-v1"
    assert suite.task_names == ("door-open", "door-close", "drawer-open", "drawer-close")
    assert suite.max_episode_steps == 500 and suite.min_reward == 0.0
    with pytest.raises(ValueError, match="--sparse_tasks"):
        build_cds(sparse_tasks=(1,))


def test_scene_composed_from_metaworld_assets():
    model = scene_model()
    assert model.nq == 11 and model.nu == 2 and model.nmocap == 1
    np.testing.assert_allclose(model.body("door").pos, DOOR_POS)
    np.testing.assert_allclose(model.body("drawer").pos, DRAWER_POS)
    for name in ("doorjoint", "goal_slidey"):
        model.joint(name)  # raises KeyError if missing
    assert model.opt.timestep == pytest.approx(0.0025)


@pytest.mark.parametrize("task", range(4))
def test_spaces_and_observation_layout(suite, task):
    env, u = _make(suite, task)
    try:
        assert env.observation_space.shape == (25,) and env.observation_space.dtype == np.float32
        assert env.action_space.shape == (4,)
        np.testing.assert_array_equal(env.action_space.low, -np.ones(4))
        np.testing.assert_array_equal(env.action_space.high, np.ones(4))
        obs, reward, terminated, truncated, info = env.step(ZERO)
        assert obs.shape == (25,) and obs.dtype == np.float32
        np.testing.assert_array_equal(obs[21:], np.eye(4, dtype=np.float32)[task])
        np.testing.assert_allclose(obs[:3], u.data.body("hand").xpos, atol=1e-5)
        np.testing.assert_allclose(
            obs[4:7], u.get_body_com("drawer_link") + [0, -0.16, 0], atol=1e-5
        )
        np.testing.assert_allclose(obs[11:14], u.data.geom("handle").xpos, atol=1e-5)
        np.testing.assert_allclose(obs[18:21], u._target_pos, atol=1e-5)
        assert info["task_id"] == task and isinstance(info["success"], bool)
        assert reward >= 0.0 and not terminated and not truncated
        assert not info["success"]  # every task starts unsolved
        # Only the task's own object moves away from its default position.
        if CDS_TASKS[task].door:
            np.testing.assert_allclose(u.model.body("drawer").pos, DRAWER_POS)
        else:
            np.testing.assert_allclose(u.model.body("door").pos, DOOR_POS)
    finally:
        env.close()


def test_door_open_success_when_door_open(suite):
    env, u = _make(suite, 0)
    try:
        target = u._target_pos
        np.testing.assert_allclose(target, u.model.body("door").pos + [-0.3, -0.45, 0.0])
        lo, hi = np.array(CDS_TASKS[0].obj_low), np.array(CDS_TASKS[0].obj_high)
        assert np.all(u.model.body("door").pos >= lo) and np.all(u.model.body("door").pos <= hi)
        obs, reward, _, _, info = _set_and_step(u, env, door=-np.pi / 2)
        assert abs(obs[11] - target[0]) <= 0.08
        assert info["success"] and reward == pytest.approx(10.0)
        # The door reward reads the door entries from the object slots (remapping, §4.5).
        remapped = u.reward_obs(obs[:21])
        np.testing.assert_array_equal(remapped[4:11], obs[11:18])
        assert abs(obs[4] - target[0]) > 0.08  # un-remapped slots hold the drawer
    finally:
        env.close()


def test_door_close_starts_open_and_succeeds_when_closed(suite):
    env, u = _make(suite, 1)
    try:
        assert u.data.qpos[u.door_qpos_adr] == pytest.approx(-np.pi / 2, abs=1e-3)
        np.testing.assert_allclose(u.hand_init_pos, [-0.6, 0.6, 0.2])
        obs, reward, _, _, info = env.step(ZERO)
        assert not info["success"] and reward < 1.0
        obs, reward, _, _, info = _set_and_step(u, env, door=0.0)
        assert np.linalg.norm(obs[11:14] - u._target_pos) <= 0.08
        assert info["success"] and reward == pytest.approx(10.0)
    finally:
        env.close()


def test_drawer_open_success_at_target(suite):
    env, u = _make(suite, 2)
    try:
        np.testing.assert_allclose(u._target_pos, u.model.body("drawer").pos + [0, -0.36, 0.09])
        np.testing.assert_allclose(u.model.site("goal").pos, u._target_pos)
        obs, reward, _, _, info = env.step(ZERO)
        assert not info["success"] and info["obj_to_target"] > 0.15
        # Handle moved onto the target (constructed observation), then a real open drawer.
        constructed = obs[:21].astype(np.float64)
        constructed[4:7] = u._target_pos
        r, info = u.evaluate_state(constructed, ZERO)
        assert info["success"] and 5.0 <= r <= 10.0
        constructed[4:7] = u._target_pos + [0, 0.04, 0]
        assert not u.evaluate_state(constructed, ZERO)[1]["success"]
        _, reward_open, _, _, info = _set_and_step(u, env, drawer=-0.16)
        assert info["obj_to_target"] < 0.031 and reward_open > reward
    finally:
        env.close()


def test_drawer_close_starts_open_and_succeeds_when_closed(suite):
    env, u = _make(suite, 3)
    try:
        assert u.data.qpos[u.drawer_qpos_adr] == pytest.approx(-0.15, abs=1e-3)
        obs, reward, _, _, info = env.step(ZERO)
        assert not info["success"] and info["obj_to_target"] > 0.1
        obs, reward, _, _, info = _set_and_step(u, env, drawer=0.0)
        assert np.linalg.norm(obs[4:7] - u._target_pos) <= 0.065
        assert info["success"] and reward == pytest.approx(10.0)
    finally:
        env.close()


def _hamacher(a, b):
    return 0.0 if a + b == 0 else a * b / (a + b - a * b)


def test_drawer_close_margins_use_v2_handle_offset(suite):
    from dm_control.utils import rewards

    env, u = _make(suite, 3)
    try:
        m, d = u.model, u.data
        link = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "drawer_link")
        drawer = m.body_pos[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_BODY, "drawer")].copy()
        # get_body_com (mujoco-py and gymnasium alike) is the body frame origin, xpos.
        link_open = d.xpos[link].copy()  # the drawer is pulled out by 0.15 m at reset
        # Meta-World v2 SawyerDrawerCloseEnvV2: reset-time handle = link + (0, -0.16, 0.05);
        # target = drawer body + (0, -0.16, 0.09).
        handle0 = link_open + np.array([0.0, -0.16, 0.05])
        target = drawer + np.array([0.0, -0.16, 0.09])
        np.testing.assert_allclose(u.obj_init_pos, handle0, atol=1e-12)
        np.testing.assert_allclose(u._target_pos, target, atol=1e-12)
        sites = [mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, n)
                 for n in ("rightEndEffector", "leftEndEffector")]
        tcp = d.site_xpos[sites].mean(axis=0)
        # Constructed observation: handle half-way home (not a success), gripper command 1.
        obs = u._get_obs().astype(np.float64)
        obj = target + np.array([0.0, -0.08, 0.0])
        obs[4:7] = obj
        action = np.array([0.0, 0.0, 0.0, 1.0], np.float32)
        in_place = rewards.tolerance(
            np.linalg.norm(obj - target), bounds=(0, 0.05),
            margin=abs(np.linalg.norm(handle0 - target) - 0.05), sigmoid="long_tail")
        reach = rewards.tolerance(
            np.linalg.norm(obj - tcp), bounds=(0, 0.005),
            margin=abs(np.linalg.norm(handle0 - u.init_tcp) - 0.005), sigmoid="gaussian")
        expected = 10.0 * _hamacher(_hamacher(float(reach), 1.0), float(in_place))
        reward, info = u.evaluate_state(obs, action)
        assert not info["success"] and info["obj_to_target"] == pytest.approx(0.08)
        assert info["in_place_reward"] == pytest.approx(float(in_place), rel=1e-9)
        assert reward == pytest.approx(expected, rel=1e-9) and 0.0 < reward < 10.0
        # Success reads the observed (offset-0) handle: 0.06 from the target succeeds, 0.07 not.
        for gap, ok in ((0.06, True), (0.07, False)):
            obs[4:7] = target + np.array([0.0, -gap, 0.0])
            assert bool(u.evaluate_state(obs, action)[1]["success"]) is ok
    finally:
        env.close()


def test_determinism_variations_and_train_test(suite):
    a, b = suite.make_env(2, seed=5), suite.make_env(2, seed=5)
    t = suite.make_env(2, seed=5, test=True)
    try:
        oa, ob, ot = a.reset(seed=9)[0], b.reset(seed=9)[0], t.reset(seed=9)[0]
        np.testing.assert_array_equal(oa, ob)
        assert not np.allclose(oa[18:21], ot[18:21])  # test variations differ
        goals = {tuple(np.round(a.reset()[0][18:21], 5)) for _ in range(5)}
        assert len(goals) == 5  # every reset switches to another variation
        steps = [a.step(ZERO)[0] for _ in range(3)]
        b.reset(seed=9)
        for _ in range(5):
            b.reset()
        np.testing.assert_array_equal(steps, [b.step(ZERO)[0] for _ in range(3)])
        u = a.unwrapped
        assert sorted(u.variations[:, 0]) != sorted(t.unwrapped.variations[:, 0])
        assert np.all(u.variations >= CDS_TASKS[2].obj_low)
        assert np.all(u.variations <= CDS_TASKS[2].obj_high)
    finally:
        for e in (a, b, t):
            e.close()


def test_truncation_at_500_never_terminates(suite):
    env, _ = _make(suite, 3)
    try:
        for t in range(1, 501):
            _, _, terminated, truncated, _ = env.step(ZERO)
            assert not terminated and truncated == (t == 500)
    finally:
        env.close()


def test_rendered_frame(suite):
    env = suite.make_env(0, render_mode="rgb_array")
    try:
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
        assert frame.std() > 1.0
    finally:
        env.close()


def test_gym_make_and_make_vec():
    env = gym.make("MetaWorldCDS-v1", task=1)
    try:
        obs, _ = env.reset(seed=0)
        assert obs.shape == (25,) and obs[22] == 1.0
    finally:
        env.close()
    venv = gym.make_vec("MetaWorldCDS-v1", num_envs=2)
    try:
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (8, 25)
        np.testing.assert_array_equal(obs[:, 21:], np.repeat(np.eye(4, dtype=np.float32), 2, 0))
        obs, rew, term, trunc, _ = venv.step(np.zeros((8, 4), np.float32))
        assert obs.shape == (8, 25) and rew.shape == (8,) and not term.any()
    finally:
        venv.close()
