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
from environments.jaco_model import GEARS, HAND_BODY, hand_position, solve_ik  # noqa: E402

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


# --- The original arm (reference §4.1a), restated here independently of jaco_model.py -----------
# Kinematic chain: (frame pos in parent, frame quat w x y z, hinge axis, ref) per joint; the base
# frame sits at (0, 0, 0.25) with the identity rotation.
CHAIN = (
    ((0, 0, 0.1535), (0, 0, 1, 0), (0, 0, -1), 0.0),
    ((0, 0, -0.1185), (0, 0, 0.707107, 0.707107), (0, 0, 1), 0.0),
    ((0.41, 0, 0), (0, 0.707107, 0.707107, 0), (0, 0, -1), 0.0),
    ((0.207, 0, -0.01125), (0, 0.707107, 0, -0.707107), (0, 0, -1), 0.0),
    ((0.0343, 0, -0.06588), (0.887011, 0, -0.461749, 0), (0, 0, -1), -2.8),
    ((0.0343, 0, -0.06588), (0.627211, -0.326506, -0.326506, 0.627211), (0, 0, -1), 0.0),
)
RANGES = ((-0.8, 0.8), (-1.5, 0.7)) + ((-0.698132, 0.698132),) * 4
ORIGINAL_QPOS0 = (0, 0, 0, 0, -2.8, 0)
ORIGINAL_START_HAND = (0.4100, 0.1192, 0.2394)  # the hand at qpos0 (§4.1a)
BODY_MASSES = (0.787504, 0.613151, 1.85031, 0.70372, 0.227408, 0.227408, 0.58074)  # base .. hand
GEARS_ORIGINAL = (5, 10, 10, 10, 10, 10)
# Holding shares (largest |gravity torque| / motor limit, the shoulder) with the hand at rest on
# each point (§4.1a); the IK solution is the damped-least-squares one from qpos0 clipped into range.
ORIGINAL_HOLD_SHARE = {"g0": 0.833, "g1": 0.924, "g2": 1.113, "g3": 1.178, "stay": 1.088}
HOLD_SHARE_TOL = 0.02


def quat_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
        [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
        [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)],
    ])


def axis_angle_matrix(axis, angle) -> np.ndarray:
    k = np.asarray(axis, float)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def reference_hand(q) -> np.ndarray:
    """Hand origin (3,) by chaining the restated frames: R <- R Rq(frame) Raxis(q - ref)."""
    pos, rot = np.array([0.0, 0.0, 0.25]), np.eye(3)
    for (p, quat, axis, ref), angle in zip(CHAIN, q):
        pos = pos + rot @ np.asarray(p, float)
        rot = rot @ quat_matrix(quat) @ axis_angle_matrix(axis, angle - ref)
    return pos


def dls_ik(model, goal, q_start, iters=1000):
    """Test-local IK: damped least squares on the hand origin, clipped 0.02 inside the ranges."""
    data = mujoco.MjData(model)
    hand = model.body(HAND_BODY).id
    lo, hi = np.array(RANGES).T + np.array([[0.02], [-0.02]])
    q = np.clip(np.array(q_start, dtype=float), lo, hi)
    jac = np.zeros((3, model.nv))
    for _ in range(iters):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        e = np.asarray(goal) - data.xpos[hand]
        if np.linalg.norm(e) < 1e-6:
            break
        mujoco.mj_jacBody(model, data, jac, None, hand)
        q = np.clip(q + jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), e), lo, hi)
    return q, float(np.linalg.norm(e))


def holding_share(model, q) -> np.ndarray:
    """Per-joint |gravity torque| / motor max torque at rest (mj_inverse, qvel = qacc = 0)."""
    data = mujoco.MjData(model)
    data.qpos[:] = q
    mujoco.mj_inverse(model, data)
    return np.abs(data.qfrc_bias) / np.asarray(GEARS_ORIGINAL, float)


def test_forward_kinematics_match_restated_chain():
    env = JacoReachMultistageEnv(0)
    np.testing.assert_allclose(env.model.qpos0, ORIGINAL_QPOS0)
    np.testing.assert_allclose(hand_position(env.model, env.model.qpos0), ORIGINAL_START_HAND,
                               atol=1e-4)
    np.testing.assert_allclose(reference_hand(ORIGINAL_QPOS0), ORIGINAL_START_HAND, atol=1e-4)
    rng = np.random.default_rng(0)
    lo, hi = np.array(RANGES).T
    for _ in range(200):
        q = rng.uniform(lo, hi)
        np.testing.assert_allclose(hand_position(env.model, q), reference_hand(q), atol=1e-5)
    env.close()


def test_arm_physics_match_original():
    m = JacoReachMultistageEnv(0).model
    arm = [m.body(n).id for n in ("jaco_link_base", "jaco_link_1", "jaco_link_2", "jaco_link_3",
                                  "jaco_link_4", "jaco_link_5", HAND_BODY)]
    np.testing.assert_allclose(m.body_mass[arm], BODY_MASSES, rtol=1e-6)
    assert m.body_mass.sum() == pytest.approx(sum(BODY_MASSES))  # geoms add no mass
    np.testing.assert_allclose(m.body_inertia[m.body(HAND_BODY).id],
                               (0.000817146, 0.000671192, 0.000606807), rtol=1e-5)
    np.testing.assert_allclose(m.body_ipos[m.body("jaco_link_2").id], (0.206657, -1.55e-7, -0.030675))
    assert np.all(m.jnt_limited == 1)
    np.testing.assert_allclose(m.jnt_range, RANGES)
    np.testing.assert_allclose(m.dof_damping, 0.5)
    np.testing.assert_allclose(m.dof_armature, 0.01)
    np.testing.assert_allclose(m.actuator_gear[:, 0], GEARS_ORIGINAL)
    np.testing.assert_allclose(m.actuator_ctrlrange, [[-1.0, 1.0]] * 6)
    np.testing.assert_allclose(m.opt.gravity, [0, 0, -9.8])
    assert m.opt.timestep == 0.01 and m.opt.iterations == 10
    assert m.opt.integrator == mujoco.mjtIntegrator.mjINT_EULER
    floor = m.geom("floor").id
    arm_geoms = [g for g in range(m.ngeom) if m.geom_bodyid[g] in arm[1:]]
    assert len(arm_geoms) == 6
    assert all(m.geom_contype[g] == 1 and m.geom_conaffinity[g] == 0 for g in arm_geoms)
    assert m.geom_contype[floor] == 1 and m.geom_conaffinity[floor] == 1
    np.testing.assert_allclose(m.geom_margin[arm_geoms], 0.001)
    target = m.geom("target_sphere").id
    assert m.geom_size[target][0] == pytest.approx(0.049) and m.geom_contype[target] == 0


@pytest.mark.parametrize("name", ["g0", "g1", "g2", "g3", "stay"])
def test_holding_torque_share_matches_original(name):
    env = JacoReachMultistageEnv(4)
    goal = np.array(ORIGINAL_START_HAND if name == "stay" else SUBGOALS[name])
    q, err = dls_ik(env.model, goal, ORIGINAL_QPOS0)
    assert err < 1e-4
    share = holding_share(env.model, q)
    assert np.argmax(share) == 1  # the shoulder dominates
    assert share.max() == pytest.approx(ORIGINAL_HOLD_SHARE[name], abs=HOLD_SHARE_TOL)
    env.close()


@pytest.mark.parametrize("name", ["g0", "g1", "g2", "g3", "stay"])
def test_best_static_hold_keeps_only_g0_g1(name):
    """At rest on the goal under motor-clipped gravity compensation, the hand stays in the
    success ball for all 50 steps only at g0 and g1 (it needs 111-118 % of the shoulder's torque
    elsewhere). The original model, with the same controller, stays 50 / 50 / 7 / 6 / 9 steps."""
    env = JacoReachMultistageEnv(4)
    goal = np.array(ORIGINAL_START_HAND if name == "stay" else SUBGOALS[name])
    q, _ = dls_ik(env.model, goal, ORIGINAL_QPOS0)
    env.set_state(q, np.zeros(6))
    inside = 0
    for _ in range(50):
        env.do_simulation(hold_action(env), env.frame_skip)
        inside += np.linalg.norm(env.hand_pos - goal) < 0.05
    if name in ("g0", "g1"):
        assert inside == 50
    else:
        assert 4 <= inside <= 12
    env.close()


def random_held_actions(env, rng, hold, steps=200, goal=None):
    """One 200-step episode of random +-1 actions, each held ``hold`` steps: (qpos per step
    (steps, 6), whether the hand came within 0.05 m of ``goal``)."""
    env.reset(seed=int(rng.integers(2**31)))
    qpos, reached = [], False
    for t in range(steps):
        if t % hold == 0:
            action = rng.choice([-1.0, 1.0], size=6)
        env.do_simulation(action, env.frame_skip)
        qpos.append(env.data.qpos.copy())
        if goal is not None and np.linalg.norm(env.hand_pos - goal) < 0.05:
            reached = True
    return np.array(qpos), reached


def test_joint5_snaps_into_range_and_every_joint_stays_in_range():
    """Start: joint 5 at its ref -2.8, outside [-0.698, 0.698]; the limit brings it in within 3
    steps (§4.1a). Under saturated actions every joint then stays in its range, up to MuJoCo's
    soft-limit give (the original's default solref: ~0.02 rad under a held 10 N m, up to 0.3 rad
    when a light wrist link hits its limit at speed), where dm_control's arm drifted 15-47 rad."""
    env = JacoReachMultistageEnv(0)
    env.reset(seed=0)
    assert env.data.qpos[4] == pytest.approx(-2.8, abs=0.011)
    rng = np.random.default_rng(0)
    lo, hi = np.array(RANGES).T
    excess = []
    for _ in range(20):
        qpos, _ = random_held_actions(env, rng, hold=20)
        assert qpos[2, 4] > -0.698132 - 0.3
        excess.append(np.maximum(lo - qpos[3:], qpos[3:] - hi).max(axis=1))
    excess = np.concatenate(excess)
    assert excess.max() < 0.3 and np.median(excess) < 0.03
    env.close()


def test_exploration_statistic_matches_original():
    """Share of 400 episodes of random +-1 actions held 20 steps whose hand comes within 0.05 m
    of g0: 0.365 on the original's numbers with boxes, 0.367 with its meshes (§4.1a)."""
    env = JacoReachMultistageEnv(0)
    rng = np.random.default_rng(0)
    goal = np.array(SUBGOALS["g0"])
    share = np.mean([random_held_actions(env, rng, hold=20, goal=goal)[1] for _ in range(400)])
    assert share == pytest.approx(0.365, abs=0.05)
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


def test_scripted_controller_completes_task_1():
    """Gravity compensation + PD completes g0 -> g1 -> g3: g0 and g1 are held, g3 is passed
    through on the way down (it cannot be held, see above)."""
    env = JacoReachMultistageEnv(1)
    env.reset(seed=0)
    targets = [solve_ik(env.model, g)[0] for g in env.goals]
    for t in range(200):
        a = scripted_action(env, targets[min(env.stage, 2)])
        _, _, term, _, info = env.step(a)
        if term:
            break
    assert term and info["stages_completed"] == 3 and "unstable" not in info
    env.close()


def test_stay_task_goal_is_hand_at_each_reset_and_counts_successes(suite):
    """The stay goal is the hand right after each reset (§4.1a's reading of the original), in
    training and test envs alike, and does not move during the episode."""
    train = suite.make_env(4).unwrapped
    test = suite.make_env(4, test=True).unwrapped
    assert train.is_stay and test.is_stay and train.goals is not test.goals
    for seed in (0, 1):
        for env in (train, test):
            env.reset(seed=seed)
            hand = reference_hand(env.data.qpos)  # independent FK of the reset pose
            np.testing.assert_allclose(env.goals, np.tile(hand, (3, 1)), atol=1e-6)
            assert np.linalg.norm(hand - ORIGINAL_START_HAND) < 0.02
    goal = test.goals[0].copy()
    _, _, _, _, info = test.step(np.ones(6))
    np.testing.assert_allclose(test.goals[0], goal)
    train.goals[:] = 0.0  # mutating one instance must not leak into another (§4.1 "Bug")
    np.testing.assert_allclose(test.goals[0], goal)
    test.reset(seed=0)
    home_hand = test.goals[0].copy()
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


class TeleportingBehaviour:
    """Test behaviour: puts the hand on the current goal until task k has reached
    ``target[k]`` stages (stay task: ``stay_successes`` successful steps), then only holds."""

    def __init__(self, sampler, target, stay_successes):
        self.envs = [e.unwrapped for e in sampler.env.envs]
        self.target, self.stay_successes = target, stay_successes

    def act(self, obs, state, deterministic):
        import torch

        actions = []
        for env in self.envs:
            if (env.success_count < self.stay_successes if env.is_stay
                    else env.stage < self.target[env.task]):
                place_hand(env, env.goal)
            actions.append(hold_action(env))
        t, e = obs.shape[:2]
        chosen = torch.arange(t)[:, None].expand(t, e)
        return torch.as_tensor(np.array(actions), dtype=torch.float32).reshape(t, e, 6), chosen


@pytest.mark.filterwarnings("ignore::dowel.tabular_input.TabularInputWarning")
def test_evaluation_logs_stages_completed(suite):
    """StagesCompleted (Jaco's metric, reference §4.1) is the last step's stage of each
    evaluation episode, logged pooled and per task (time limit cut to 50 steps for speed)."""
    import dataclasses

    import torch
    from dowel import tabular

    from learning.sampler import Sampler, evaluate
    from learning.trainer import log_episode_stats

    short = dataclasses.replace(suite, max_episode_steps=50)
    sampler = Sampler(short, 1, short.network_obs_indices(23, include_task_id=False),
                      torch.device("cpu"), seed=0, test=True)
    behaviour = TeleportingBehaviour(sampler, target=(1, 2, 3, 0), stay_successes=40)
    record = evaluate(sampler, behaviour, episodes_per_task=1)
    sampler.close()
    # task 0..3 stop at stage 1, 2, 3 (terminated), 0; stay: 40 (+ a few) successes // 30 = 1
    assert [r[0] for r in record.extras["stages_completed"]] == [1, 2, 3, 0, 1]
    assert [r[0] for r in record.lengths] == [50, 50, 3, 50, 50]
    assert [r[0] for r in record.successes] == [True, True, True, False, True]
    tabular.clear()
    pooled = log_episode_stats("Evaluation/", record, short, epoch=0)
    assert pooled["Evaluation/StagesCompleted"] == pytest.approx(7 / 5)
    logged = tabular.as_dict
    assert logged["Evaluation/Task4/StagesCompleted"] == 1.0
    assert logged["Evaluation/Task2/StagesCompleted"] == 3.0
    tabular.clear()
