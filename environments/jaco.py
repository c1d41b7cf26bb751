"""``JacoReachMT5-v1``: the multistage Jaco reacher with 5 tasks (reference §4.1).

Each task moves the hand through three sub-goals in a fixed order (world frame, metres):
g0 = (0.2, 0.3, 0.5), g1 = (0.3, 0.0, 0.3), g2 = (0.4, -0.3, 0.4), g3 = (0.4, 0.3, 0.2).

=====  ===================  ==========================================  ======
task   sequence             reward variant                              shift
=====  ===================  ==========================================  ======
0      g0 -> g1 -> g2       dense distance + time penalty               0
1      g0 -> g1 -> g3       dense distance + success bonus              -2
2      g1 -> g3 -> g2       dense distance + time penalty               0
3      g1 -> g2 -> g0       sparse: time penalty only                   0
4      stay at start hand   dense distance only                         0
=====  ===================  ==========================================  ======

Raw observation (18, float32): qpos (6), qvel (6), one-hot of the current stage (3; all
zeros once the stage reaches 3), hand position (3, private: networks never see it).
:class:`~environments.base.TaskOneHot` appends the task one-hot (5) after it, giving 23.

Per step (§4.1), with d = ||goal - hand|| after simulating and success = d < 0.05:
non-stay tasks advance the stage on success (terminate after the 3rd sub-goal); the stay
task counts successful steps, stage = count // 30, and terminates at 90 successes. Reward
= dist_term + stage_term + ctrl_term + shift with dist_term = -d (0 for task 3);
stage_term = -0.4 * max(3 - stage, 0) (tasks 0, 2, 3; stage after the update),
200 * [success] (task 1), 0 (task 4); ctrl_term = -0.01 ||a||^2 - 0.001 mean|qvel|
- 1e-5 mean|qacc|. If the simulation yields a non-finite state or raises a MuJoCo warning,
the step returns reward -100, the previous observation and ``terminated=True``.

Metric: evaluation logs ``StagesCompleted`` (``info["stages_completed"]`` at the last step of
an episode, 0..3, via ``episode_info_keys``) next to ``SuccessRate``. SuccessRate only says
that the current sub-goal was reached at some step; in the stay task the hand starts on its
goal, so even a random policy scores about 1. StagesCompleted is the suite's metric (§4.1).

Physics (environments/jaco_model.py): the original's arm, written from its numbers (§4.1a). The
start pose is its qpos0, with joint 5 at its ref -2.8 rad, outside the joint's range: the limit
snaps it into range within the first steps, as in the original. The shoulder motor (10 N m)
cannot hold the hand still at g2, g3 or the start pose (111-118 % needed); g0 and g1 can be held.
The stay task's goal is the hand position right after each reset (§4.1a; docs/deviations.md).

QMP-Domain mixture (paper §5.3.2), rule used by :func:`domain_mixture`: each task is the
token sequence (start, s1, s2, s3) and owns the three directed segments
start->s1, s1->s2, s2->s3 (the stay task's goals are its own token "hand", so it shares
nothing). W[i, j] = number of segments of task i that task j also has (W[i, i] = 3 > 0);
the matrix is W with each row divided by its sum.
"""

from __future__ import annotations

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium.envs.mujoco import MujocoEnv

from environments.base import TaskSuite
from environments import jaco_model
from environments.jaco_model import HAND_BODY, TARGET_BODY, build_jaco_model

ENV_ID = "JacoReachMT5-v1"
SUBGOALS = {
    "g0": (0.2, 0.3, 0.5),
    "g1": (0.3, 0.0, 0.3),
    "g2": (0.4, -0.3, 0.4),
    "g3": (0.4, 0.3, 0.2),
}
STAY = "hand"  # token of the stay task's goal (the start hand position)
TASK_SEQUENCES = (
    ("g0", "g1", "g2"),
    ("g0", "g1", "g3"),
    ("g1", "g3", "g2"),
    ("g1", "g2", "g0"),
    (STAY, STAY, STAY),
)
TASK_NAMES = (
    "reach_g0_g1_g2",
    "reach_g0_g1_g3_bonus",
    "reach_g1_g3_g2",
    "reach_g1_g2_g0_sparse",
    "stay",
)
NUM_STAGES = 3
SUCCESS_RADIUS = 0.05
STAY_STEPS_PER_STAGE = 30
MAX_EPISODE_STEPS = 200
MIN_REWARD = -5.0
INSTABILITY_PENALTY = -100.0
OBS_DIM = 18
HAND_OBS_DIMS = (15, 16, 17)


class JacoReachMultistageEnv(MujocoEnv):
    """One task of the multistage reacher (raw env: no task one-hot, no time limit).

    Args:
        task: task index in [0, 5) (see module docstring).
        render_mode: gymnasium render mode or None.
        width: render width in pixels.
        height: render height in pixels.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 25}

    def __init__(
        self, task: int, render_mode: str | None = None, width: int = 480, height: int = 480
    ):
        if not 0 <= task < len(TASK_SEQUENCES):
            raise ValueError(f"task={task} out of range for {ENV_ID}: allowed 0..4")
        self.task = task
        obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(OBS_DIM,), dtype=np.float32)
        MujocoEnv.__init__(
            self,
            jaco_model.__file__,  # only checked for existence; the model is built below
            frame_skip=4,
            observation_space=obs_space,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config={
                "distance": 1.9,
                "azimuth": 150.0,
                "elevation": -25.0,
                "lookat": np.array([0.2, 0.0, 0.3]),
            },
        )
        self.init_qpos = self.model.qpos0.copy()  # joint 5 at its ref -2.8 (§4.1a)
        self._hand_id = self.model.body(HAND_BODY).id
        self._mocap_id = self.model.body(TARGET_BODY).mocapid[0]
        # Stay task: its three goals are set to the hand position right after each reset (see
        # reset_model); the other tasks' goals are the fixed sub-goals.
        self.goals = np.array(
            [jaco_model.hand_position(self.model, self.init_qpos) if g == STAY else SUBGOALS[g] for g in TASK_SEQUENCES[task]],
            dtype=np.float64,
        )
        self.is_stay = TASK_SEQUENCES[task][0] == STAY
        self.stage = 0
        self.success_count = 0
        self._last_obs = np.zeros(OBS_DIM, dtype=np.float32)

    def _initialize_simulation(self):
        model = build_jaco_model(self.width, self.height)
        return model, mujoco.MjData(model)

    def _step_mujoco_simulation(self, ctrl, n_frames):
        self.data.ctrl[:] = ctrl
        mujoco.mj_step(self.model, self.data, nstep=n_frames)
        mujoco.mj_kinematics(self.model, self.data)  # hand / target poses at the new state

    @property
    def hand_pos(self) -> np.ndarray:
        """(3,) hand position in metres."""
        return self.data.xpos[self._hand_id].copy()

    @property
    def goal(self) -> np.ndarray:
        """(3,) current sub-goal in metres (the last one once all stages are done)."""
        return self.goals[min(self.stage, NUM_STAGES - 1)]

    def _set_goal_marker(self) -> None:
        self.data.mocap_pos[self._mocap_id] = self.goal
        mujoco.mj_kinematics(self.model, self.data)

    def _get_obs(self) -> np.ndarray:
        one_hot = np.zeros(NUM_STAGES)
        if self.stage < NUM_STAGES:
            one_hot[self.stage] = 1.0
        obs = np.concatenate([self.data.qpos, self.data.qvel, one_hot, self.hand_pos])
        return obs.astype(np.float32)

    def reset_model(self) -> np.ndarray:
        """qpos = qpos0 + U(+-0.01), qvel = U(+-0.001), stage 0 (§4.1).

        The stay task's goal becomes the hand position of this reset (§4.1a: the original stored a
        live view of the hand position, so its training envs' stay goal was the hand at each reset;
        its test env's goal was wherever that env's hand happened to be, the §4.1 "Bug", not kept).
        """
        qpos = self.init_qpos + self.np_random.uniform(-0.01, 0.01, self.model.nq)
        qvel = self.np_random.uniform(-0.001, 0.001, self.model.nv)
        self.set_state(qpos, qvel)
        if self.is_stay:
            self.goals[:] = self.hand_pos
        self.stage = 0
        self.success_count = 0
        self._set_goal_marker()
        self._last_obs = self._get_obs()
        return self._last_obs

    def step(self, action):
        """Advance 4 physics steps of 0.01 s; reward and stages as in §4.1."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        warnings_before = int(self.data.warning.number.sum())
        self.do_simulation(action, self.frame_skip)
        unstable = int(self.data.warning.number.sum()) > warnings_before or not (
            np.all(np.isfinite(self.data.qpos))
            and np.all(np.isfinite(self.data.qvel))
            and np.all(np.isfinite(self.data.qacc))
        )
        if unstable:
            info = {"success": False, "stages_completed": self.stage, "unstable": True}
            return self._last_obs.copy(), INSTABILITY_PENALTY, True, False, info

        dist = float(np.linalg.norm(self.goal - self.hand_pos))
        success = dist < SUCCESS_RADIUS
        if success:
            if self.is_stay:
                self.success_count += 1
                self.stage = min(self.success_count // STAY_STEPS_PER_STAGE, NUM_STAGES)
            else:
                self.stage += 1
        terminated = self.stage >= NUM_STAGES
        if not terminated:
            self._set_goal_marker()

        reward, terms = self.reward_terms(dist, success, action)
        obs = self._get_obs()
        self._last_obs = obs
        info = {"success": success, "stages_completed": self.stage, "distance": dist, **terms}
        if self.render_mode == "human":
            self.render()
        return obs, reward, terminated, False, info

    def reward_terms(
        self, dist: float, success: bool, action: np.ndarray
    ) -> tuple[float, dict[str, float]]:
        """Reward of one step (§4.1) from the hand-goal distance (m), success and action (6,).

        Uses ``self.stage`` after the stage update and the current qvel / qacc.

        Returns:
            ``(reward, terms)`` with terms ``dist_reward``, ``stage_reward``, ``ctrl_reward``.
        """
        task = self.task
        dist_term = 0.0 if task == 3 else -dist
        if task in (0, 2, 3):
            stage_term = -0.4 * max(NUM_STAGES - self.stage, 0)
        elif task == 1:
            stage_term = 200.0 * float(success)
        else:
            stage_term = 0.0
        ctrl_term = (
            -0.01 * float(np.sum(np.square(action)))
            - 0.001 * float(np.mean(np.abs(self.data.qvel)))
            - 1e-5 * float(np.mean(np.abs(self.data.qacc)))
        )
        shift = -2.0 if task == 1 else 0.0
        terms = {"dist_reward": dist_term, "stage_reward": stage_term, "ctrl_reward": ctrl_term}
        return dist_term + stage_term + ctrl_term + shift, terms


def domain_mixture() -> np.ndarray:
    """(5, 5) row-stochastic QMP-Domain matrix from shared sub-goal segments (module docstring)."""
    segments = []
    for seq in TASK_SEQUENCES:
        tokens = ("start",) + seq
        segments.append({(a, b) for a, b in zip(tokens[:-1], tokens[1:])})
    n = len(TASK_SEQUENCES)
    w = np.array([[len(segments[i] & segments[j]) for j in range(n)] for i in range(n)], float)
    # The stay task's segment set collapses to {(start, hand), (hand, hand)}: keep its diagonal.
    return w / w.sum(axis=1, keepdims=True)


def build_jaco_reach_mt5(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """The ``JacoReachMT5-v1`` suite (§4.1): T = 5, 200 steps, min_reward -5.

    Raises:
        ValueError: if ``sparse_tasks`` is non-empty (task 3 is sparse by definition).
    """
    if sparse_tasks:
        raise ValueError(
            f"--sparse_tasks is not supported by {ENV_ID} (task 3 is sparse by definition); "
            f"got {tuple(sparse_tasks)}"
        )

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None):
        return JacoReachMultistageEnv(task, render_mode=render_mode)

    return TaskSuite(
        env_id=ENV_ID,
        task_names=TASK_NAMES,
        make_task_env=make_task_env,
        max_episode_steps=MAX_EPISODE_STEPS,
        min_reward=MIN_REWARD,
        private_obs_dims=HAND_OBS_DIMS,
        episode_info_keys={"stages_completed": "StagesCompleted"},
        domain_mixture=domain_mixture(),
    )
