"""Tests of CTPG's HalfCheetahMT5-v0 (gravity) and HalfCheetahMT8-v0 (body parts), anchors §1.13."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import environments  # noqa: E402,F401  (registers the ids)
from environments.halfcheetah import (  # noqa: E402
    MIN_REWARD,
    HalfCheetahVariantEnv,
    build_halfcheetah_mt5,
    build_halfcheetah_mt8,
    cheetah_spec,
)

MT5 = build_halfcheetah_mt5()
MT8 = build_halfcheetah_mt8()
# HalfCheetah-v2 body masses under mujoco-py (torso, bthigh, bshin, bfoot, fthigh, fshin, ffoot).
V2_MASSES = [6.36031332, 1.53524804, 1.58093995, 1.0691906, 1.42558747, 1.17885117, 0.84986945]


def test_suite_facts_and_spaces():
    assert MT5.task_names == ("Gravity1.0", "Gravity0.5", "Gravity0.75", "Gravity1.5", "Gravity1.25")
    assert MT8.task_names == (
        "BigTorso", "SmallTorso", "BigThigh", "SmallThigh", "BigLeg", "SmallLeg", "BigFoot", "SmallFoot"
    )
    for suite, n in ((MT5, 5), (MT8, 8)):
        assert suite.num_tasks == n and suite.max_episode_steps == 1000
        assert suite.success_is_meaningful is False
        assert suite.min_reward == MIN_REWARD < -0.6
        for k in (0, n - 1):
            env = suite.make_env(k)
            assert env.observation_space.shape == (17 + n,)
            assert env.observation_space.dtype == np.float32
            assert env.action_space.shape == (6,)
            np.testing.assert_array_equal(env.action_space.low, -1.0)
            np.testing.assert_array_equal(env.action_space.high, 1.0)
            obs, _ = env.reset(seed=0)
            assert obs.shape == (17 + n,) and obs.dtype == np.float32
            np.testing.assert_array_equal(obs[17:], np.eye(n)[k])
            env.close()
    for builder in (build_halfcheetah_mt5, build_halfcheetah_mt8):
        with pytest.raises(ValueError, match="--sparse_tasks"):
            builder(sparse_tasks=(1,))


def test_default_model_has_v2_masses():
    model = cheetah_spec().compile()
    np.testing.assert_allclose(model.body_mass[1:], V2_MASSES, rtol=1e-6)
    assert model.opt.timestep == pytest.approx(0.01)


def _free_fall(env: HalfCheetahVariantEnv, vx: float = 0.0) -> None:
    qpos = env.init_qpos.copy()
    qpos[1] = 5.0  # rootz: far above the floor
    qvel = np.zeros(env.model.nv)
    qvel[0] = vx
    env.set_state(qpos, qvel)


def test_mt5_task_order_is_ctpgs():
    # CTPG's halfcheetah_gravity.MT5 env list: HalfCheetah-v2, GravityHalf (-4.905),
    # GravityThreeQuarters (-7.3575), GravityOneAndHalf (-14.715), GravityOneAndQuarter (-12.2625).
    expected = [("Gravity1.0", -9.81), ("Gravity0.5", -4.905), ("Gravity0.75", -7.3575),
                ("Gravity1.5", -14.715), ("Gravity1.25", -12.2625)]
    got = []
    for k, name in enumerate(MT5.task_names):
        env = MT5.make_env(k)
        gravity = env.unwrapped.model.opt.gravity.copy()
        env.close()
        np.testing.assert_allclose(gravity[:2], 0.0)
        got.append((name, round(float(gravity[2]), 6)))
    assert got == expected


def test_gravity_tasks_change_the_dynamics():
    scales = (1.0, 0.5, 0.75, 1.5, 1.25)
    vz = []
    for k, s in enumerate(scales):
        env = MT5.make_env(k).unwrapped
        env.reset(seed=0)
        np.testing.assert_allclose(env.model.opt.gravity, [0.0, 0.0, -9.81 * s])
        _free_fall(env)
        env.step(np.zeros(6))
        vz.append(env.data.qvel[1])
        env.close()
    assert vz[0] < -0.3
    np.testing.assert_allclose(np.array(vz) / vz[0], scales, rtol=1e-6)


@pytest.mark.parametrize(
    "task,geoms,scale",
    [(0, ("torso",), 1.25), (1, ("torso",), 0.75), (2, ("bthigh", "fthigh"), 1.25),
     (3, ("bthigh", "fthigh"), 0.75), (4, ("bshin", "fshin"), 1.25), (5, ("bshin", "fshin"), 0.75),
     (6, ("bfoot", "ffoot"), 1.25), (7, ("bfoot", "ffoot"), 0.75)],
)
def test_body_tasks_scale_the_named_geoms(task, geoms, scale):
    base = cheetah_spec().compile()
    env = MT8.make_env(task)
    model = env.unwrapped.model
    assert model.body_mass.sum() == pytest.approx(14.0)  # settotalmass
    np.testing.assert_allclose(model.body_pos, base.body_pos)
    for i in range(model.ngeom):
        name = model.geom(i).name
        if name in geoms:
            body = model.geom_bodyid[i]
            heavier = bool(model.body_mass[body] > base.body_mass[body])
            assert heavier is (scale > 1)
            if name == "torso":  # fromto capsule: only the radius is a size entry
                assert model.geom_size[i, 0] == pytest.approx(0.046 * scale)
                assert model.geom_size[i, 1] == pytest.approx(base.geom_size[i, 1])
            else:
                np.testing.assert_allclose(model.geom_size[i, :2], base.geom_size[i, :2] * scale)
        elif name != "floor":
            np.testing.assert_allclose(model.geom_size[i], base.geom_size[i])
    env.close()


def test_reward_at_constructed_state():
    env = HalfCheetahVariantEnv(gravity_scale=0.75)
    env.reset(seed=0)
    _free_fall(env, vx=2.0)
    _, reward, terminated, truncated, info = env.step(np.zeros(6))
    assert reward == pytest.approx(2.0, abs=1e-6)  # no torque, no contact: v stays 2
    assert info["x_velocity"] == pytest.approx(2.0, abs=1e-6)
    assert not terminated and not truncated and info["success"] is False
    action = np.array([0.5, -0.5, 1.0, 0.0, 0.2, -1.0])
    x_before = env.data.qpos[0]
    _, reward, _, _, info = env.step(action)
    v = (env.data.qpos[0] - x_before) / 0.05
    assert info["reward_ctrl"] == pytest.approx(-0.1 * np.sum(action**2))
    assert reward == pytest.approx(v - 0.1 * np.sum(action**2))
    env.close()


def test_no_termination_and_truncation_at_1000():
    env = MT8.make_env(3)
    env.reset(seed=0)
    raw = env.unwrapped
    qpos = raw.init_qpos.copy()
    qpos[2] = np.pi  # upside down: still no termination
    raw.set_state(qpos, np.zeros(raw.model.nv))
    _, _, terminated, truncated, info = env.step(np.zeros(6))
    assert not terminated and not truncated and info["success"] is False
    env._elapsed_steps = 999
    _, _, terminated, truncated, info = env.step(np.zeros(6))
    assert not terminated and truncated and info["task_id"] == 3
    env.close()


def test_same_seed_same_first_obs():
    for suite in (MT5, MT8):
        a = suite.make_env(1).reset(seed=5)[0]
        b = suite.make_env(1).reset(seed=5)[0]
        c = suite.make_env(1).reset(seed=6)[0]
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_render_frame():
    env = MT8.make_env(0, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert frame.std() > 1.0


def test_gymnasium_make_and_make_vec():
    for env_id, n in (("HalfCheetahMT5-v0", 5), ("HalfCheetahMT8-v0", 8)):
        env = gym.make(env_id, task=n - 1)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (17 + n,)
        env.close()
        venv = gym.make_vec(env_id, num_envs=1)
        obs, _ = venv.reset(seed=0)
        assert obs.shape == (n, 17 + n)
        _, rew, _, _, info = venv.step(np.zeros((n, 6), np.float32))
        assert rew.shape == (n,)
        np.testing.assert_array_equal(info["task_id"], np.arange(n))
        venv.close()
