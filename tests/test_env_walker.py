"""Tests of Walker2dMT4-v0 (reference §4.3)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import environments  # noqa: E402,F401  (registers the ids)
from environments.walker import (  # noqa: E402
    Walker2dTaskEnv,
    build_walker2d_mt4,
    walker_reward,
    walker_spec,
)

SUITE = build_walker2d_mt4()


def test_suite_facts_and_spaces():
    assert SUITE.num_tasks == 4
    assert SUITE.task_names == ("forward", "backward", "balance", "crawl")
    assert SUITE.max_episode_steps == 1000
    assert SUITE.min_reward == 0.0
    assert SUITE.episode_info_keys == {"x_velocity": "Velocity"}
    for k in range(4):
        env = SUITE.make_env(k)
        assert env.observation_space.shape == (21,)
        assert env.observation_space.dtype == np.float32
        assert env.action_space.shape == (6,)
        np.testing.assert_array_equal(env.action_space.low, -1.0)
        np.testing.assert_array_equal(env.action_space.high, 1.0)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (21,) and obs.dtype == np.float32
        np.testing.assert_array_equal(obs[17:], np.eye(4)[k])
        env.close()


def test_sparse_tasks_rejected():
    with pytest.raises(ValueError, match="--sparse_tasks"):
        build_walker2d_mt4(sparse_tasks=(0,))


def test_model_matches_original():
    plain, crawl = walker_spec(False).compile(), walker_spec(True).compile()
    assert plain.opt.timestep == pytest.approx(0.002)
    assert plain.opt.integrator == 1  # RK4
    np.testing.assert_allclose(plain.actuator_gear[:, 0], 100.0)
    friction = {plain.geom(i).name: plain.geom_friction[i, 0] for i in range(plain.ngeom)}
    assert friction["foot_geom"] == pytest.approx(0.9)
    assert friction["foot_left_geom"] == pytest.approx(1.9)
    # mujoco-py era masses (torso, thigh, leg, foot).
    np.testing.assert_allclose(plain.body_mass[1:5], [3.53429174, 3.92699082, 2.71433605, 2.94053072])
    assert "ceiling_long" not in [plain.geom(i).name for i in range(plain.ngeom)]
    g = crawl.geom("ceiling_long")
    np.testing.assert_allclose(crawl.geom_pos[g.id], [8.0, 0.0, 1.0])
    np.testing.assert_allclose(crawl.geom_size[g.id], [6.0, 2.0, 0.1])


def test_reward_function_terms():
    r, t = walker_reward("forward", v=4.0, nz=1.0, delta_h=1.1, foot_speed=10.0, ctrl=-0.002)
    assert t["x_vel_reward"] == pytest.approx(2.0)
    assert r == pytest.approx(2.0 + 0.1 - 0.0 - 0.002 + 1.0 - 0.1)
    r, t = walker_reward("backward", v=-3.0, nz=0.5, delta_h=0.6, foot_speed=0.0, ctrl=0.0)
    assert t["x_vel_reward"] == pytest.approx(3.0) and t["x_velocity"] == pytest.approx(-3.0)
    assert r == pytest.approx(3.0 + 0.05 - 0.5 + 1.0)
    r, t = walker_reward("balance", v=-0.5, nz=1.0, delta_h=1.3, foot_speed=50.0, ctrl=0.0)
    assert r == pytest.approx(-0.5 + 0.1 - 0.1 + 1.0)
    assert t["x_velocity"] == pytest.approx(-0.5) and t["foot_reward"] == 0.0
    r, t = walker_reward("crawl", v=1.0, nz=1.0, delta_h=0.0, foot_speed=0.0, ctrl=0.0, ceiling_contact=True)
    assert t["x_vel_reward"] == pytest.approx(2.0) and t["collision_penalty"] == -10.0
    assert r == pytest.approx(2.0 - 10.0 + 0.1 + 1.0)
    with pytest.raises(ValueError):
        walker_reward("jump", 0.0, 1.0, 1.1, 0.0, 0.0)


def _airborne(env: Walker2dTaskEnv, vx: float, x: float = 0.0) -> None:
    """Free fall high above the floor with root x velocity ``vx`` (so v stays exactly vx)."""
    qpos = env.init_qpos.copy()
    qpos[0], qpos[1] = x, 3.0
    qpos[3:] = [-0.2, -0.3, 0.1, -0.2, -0.3, 0.1]
    qvel = np.zeros(env.model.nv)
    qvel[0] = vx
    env.set_state(qpos, qvel)


@pytest.mark.parametrize(
    "task,vx,x_vel_reward,x_velocity",
    [("forward", 2.0, 2.0, 2.0), ("forward", 5.0, 1.0, 1.0), ("backward", -2.0, 2.0, -2.0),
     ("balance", 0.5, -0.5, 0.5), ("crawl", 1.0, 2.0, 1.0)],
)
def test_reward_at_constructed_state(task, vx, x_vel_reward, x_velocity):
    env = Walker2dTaskEnv(task)
    env.reset(seed=0)
    _airborne(env, vx)
    # No torque and no contact: nothing acts along x, so v over the step is exactly vx.
    _, reward, terminated, truncated, info = env.step(np.zeros(6))
    assert not terminated and not truncated and not info["success"]
    assert info["x_vel_reward"] == pytest.approx(x_vel_reward, abs=1e-6)
    assert info["x_velocity"] == pytest.approx(x_velocity, abs=1e-6)
    assert info["ctrl_reward"] == 0.0
    assert info["foot_reward"] == pytest.approx(0.0, abs=1e-9)
    xpos = env.data.xpos
    delta_h = xpos[1, 2] - max(xpos[4, 2], xpos[7, 2])
    assert info["delta_h"] == pytest.approx(delta_h)
    assert info["nz"] == pytest.approx(np.cos(env.data.qpos[2]))
    terms = ("x_vel_reward", "ctrl_reward", "alive_reward", "angle_reward", "height_reward",
             "foot_reward", "collision_penalty")
    assert reward == pytest.approx(sum(info[k] for k in terms))
    expected, _ = walker_reward(task, vx, info["nz"], delta_h, -100 * info["foot_reward"],
                                info["ctrl_reward"])
    assert reward == pytest.approx(expected, abs=1e-6)
    _airborne(env, vx)
    _, reward, _, _, info = env.step(np.full(6, 0.5))
    assert info["ctrl_reward"] == pytest.approx(-1e-3 * 6 * 0.25)
    env.close()


def _lying(env: Walker2dTaskEnv, height: float) -> None:
    qpos = env.init_qpos.copy()
    qpos[1], qpos[2] = height, np.pi / 2
    env.set_state(qpos, np.zeros(env.model.nv))


def test_fallen_walker_terminates():
    for task, should_end in (("forward", True), ("balance", True), ("crawl", False)):
        env = Walker2dTaskEnv(task)
        env.reset(seed=0)
        _lying(env, 0.6)  # below 0.8, above crawl's 0.3
        _, _, terminated, truncated, info = env.step(np.zeros(6))
        assert terminated is should_end and not truncated and not info["success"]
        env.close()


def test_ceiling_contact_terminates_crawl_only():
    for task, should_end in (("crawl", True), ("forward", False)):
        env = Walker2dTaskEnv(task)
        env.reset(seed=0)
        qpos = env.init_qpos.copy()
        qpos[0] = 8.0  # standing under the ceiling: torso top 1.5 > underside 0.9
        env.set_state(qpos, np.zeros(env.model.nv))
        _, reward, terminated, _, info = env.step(np.zeros(6))
        assert terminated is should_end
        assert info["ceiling_contact"] is should_end
        assert info["collision_penalty"] == (-10.0 if should_end else 0.0)
        env.close()


def test_time_limit_is_truncation_with_success():
    env = SUITE.make_env(2)
    env.reset(seed=0)
    raw = env.unwrapped
    for t, last in ((500, False), (999, True)):
        raw.set_state(raw.init_qpos.copy(), np.zeros(raw.model.nv))
        raw._t, env._elapsed_steps = t, t
        _, _, terminated, truncated, info = env.step(np.zeros(6))
        assert not terminated
        assert truncated is last and info["success"] is last
        assert info["task_id"] == 2
    env.close()


def test_same_seed_same_first_obs():
    for k in (0, 2):
        a = SUITE.make_env(k).reset(seed=7)[0]
        b = SUITE.make_env(k).reset(seed=7)[0]
        c = SUITE.make_env(k).reset(seed=8)[0]
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)


def test_reset_runs_random_steps():
    env = Walker2dTaskEnv("balance")
    obs, _ = env.reset(seed=1)
    assert env._t == 0
    # 10 random-action steps move the joints well beyond the 0.01 reset noise.
    assert np.abs(obs[2:8]).max() > 0.02
    env.close()


def test_render_frame():
    env = SUITE.make_env(3, render_mode="rgb_array")
    env.reset(seed=0)
    frame = env.render()
    env.close()
    assert frame.shape == (480, 480, 3) and frame.dtype == np.uint8
    assert frame.std() > 1.0


def test_gymnasium_make_and_make_vec():
    env = gym.make("Walker2dMT4-v0", task=3)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (21,)
    env.close()
    venv = gym.make_vec("Walker2dMT4-v0", num_envs=1)
    obs, _ = venv.reset(seed=0)
    assert obs.shape == (4, 21)
    obs, rew, term, trunc, info = venv.step(np.zeros((4, 6), np.float32))
    assert rew.shape == (4,)
    np.testing.assert_array_equal(info["task_id"], [0, 1, 2, 3])
    venv.close()
