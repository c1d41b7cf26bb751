"""``KitchenMTEasy-v0``: ten single-element Franka kitchen tasks (reference §4.6).

The simulator is gymnasium-robotics 1.4.2's Franka kitchen (``kitchen_env_model.xml``, the
MuJoCo port of D4RL's adept kitchen) with its joint-velocity controller
(:class:`~gymnasium_robotics.envs.franka_kitchen.franka_env.FrankaRobot`): action (9,) in
[-1, 1] times 2 is a desired joint velocity (rad/s, m/s for the fingers), clipped to the
config's velocity bounds, integrated from the last *observed* (noisy) joint positions over
dt = 40 x 2 ms = 0.08 s and clipped to the config's position bounds; the model's position
actuators then track it (§4.6 "Dynamics/obs").

Per task (index order of §4.6): one element, a start state, a target state and a success
threshold. "-open/-on" tasks start from D4RL's fixed initial qpos (element off/closed) and
target the on/open state; "-close/-off" tasks write the on/open state into the initial qpos and
target the off/closed state, which is the element's entry in D4RL's initial qpos.

Observation (60,) float32 (§4.6): robot qpos (9, uniform noise +-0.01), object qpos (21,
uniform noise +-0.0005), and a 30-entry goal vector (zero except the task element's target,
then overwritten by the fixed microwave / kettle / bottom-burner-on / light-on goals, so the
on and off variants of those two elements see the same goal vector).

Reward (dense, §4.6): ``20 * (0.4 * in_place + 0.6 * reach - 1)`` in [-20, 0]; on success
(element within threshold of its target) the reward is replaced by 20 x 140 = 2800 and the
episode terminates. Sparse tasks get ``1[success]`` (and also terminate on success). As in the
original, ``reach`` measures the task site against the midpoint of the two finger bodies'
origins every step, while its margin ``|d0 - 0.08|`` takes d0 from the ``end_effector`` site at
reset, so ``reach`` at the start state is not exactly the margin value 0.1.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass

import mujoco
import numpy as np
from gymnasium import spaces
from gymnasium_robotics.envs.franka_kitchen.franka_env import FrankaRobot

from environments import check_sparse_tasks
from environments.base import TaskSuite

ENV_ID = "KitchenMTEasy-v0"
MAX_EPISODE_STEPS = 140  # §4.6 GymEnv(max_episode_length 140)
MIN_REWARD = -20.0  # §3.7 / §4.6
SUCCESS_BONUS = 20.0 * MAX_EPISODE_STEPS  # §4.6: 20 x early_termination_bonus (= 140)
REACH_RADIUS = 0.08  # m, §4.6 reach tolerance bounds (0, 0.08)
ROBOT_QPOS_NOISE = 0.01  # §4.6, uniform +- (rad / m)
OBJECT_QPOS_NOISE = 0.0005  # §4.6, uniform +-
ACTION_SCALE = 2.0  # §4.6: action x 2 = desired joint velocity
FRAME_SKIP = 40  # §4.6: 40 x 2 ms = 0.08 s per step
# Hand points of the original reward (§4.6 "Reward"): the per-step hand position is the midpoint
# of the two finger *body origins* (the original looks the names up as sites, then geoms, then
# bodies; the model has only bodies of these names), and the starting hand distance that sets
# the reach margin is measured from the ``end_effector`` site (0.21 m along link 7, ~4.5 cm
# beyond the finger-body origins at 0.1654 m).
FINGER_BODIES = ("panda0_leftfinger", "panda0_rightfinger")
END_EFFECTOR_SITE = "end_effector"

_ASSET_REL = "../assets/kitchen_franka/kitchen_assets/kitchen_env_model.xml"


@dataclass(frozen=True)
class KitchenTask:
    """One single-element task (§4.6 table).

    Attributes:
        name: task name, e.g. ``"slide cabinet-open"``.
        element: gymnasium-robotics / D4RL element key, e.g. ``"slide cabinet"``.
        site: model site the hand must reach.
        turn_on: True for "-open/-on" (target = on/open state), False for "-close/-off".
        threshold: success threshold on ||element qpos - target|| (rad / m mixed, as D4RL).
    """

    name: str
    element: str
    site: str
    turn_on: bool
    threshold: float


TASKS: tuple[KitchenTask, ...] = (
    KitchenTask("slide cabinet-open", "slide cabinet", "slide_site", True, 0.1),
    KitchenTask("slide cabinet-close", "slide cabinet", "slide_site", False, 0.1),
    KitchenTask("hinge cabinet-open", "hinge cabinet", "hinge_site2", True, 0.1),
    KitchenTask("hinge cabinet-close", "hinge cabinet", "hinge_site2", False, 0.3),
    KitchenTask("bottom burner-on", "bottom burner", "knob2_site", True, 0.3),
    KitchenTask("bottom burner-off", "bottom burner", "knob2_site", False, 0.3),
    KitchenTask("top burner-on", "top burner", "knob4_site", True, 0.3),
    KitchenTask("top burner-off", "top burner", "knob4_site", False, 0.3),
    KitchenTask("light switch-on", "light switch", "light_site", True, 0.3),
    KitchenTask("light switch-off", "light switch", "light_site", False, 0.3),
)
TASK_NAMES: tuple[str, ...] = tuple(t.name for t in TASKS)
# Elements whose fixed goal overwrites the goal vector after the task's own goal (§4.6, §6 #17).
GOAL_OVERWRITE_ELEMENTS = ("microwave", "kettle", "bottom burner", "light switch")


def tolerance(x: float, bound: float, margin: float, value_at_margin: float = 0.1) -> float:
    """dm_control-style ``tolerance`` with bounds (0, bound) and a gaussian sigmoid (§4.6).

    Args:
        x: a non-negative distance.
        bound: upper end of the zero-cost interval [0, bound].
        margin: distance beyond ``bound`` at which the value falls to ``value_at_margin``;
            0 gives the indicator 1[x <= bound].
        value_at_margin: value at ``bound + margin``, in (0, 1).

    Returns:
        1 inside [0, bound], else exp(-0.5 (d * s)^2) with d = (x - bound) / margin and
        s = sqrt(-2 ln value_at_margin).
    """
    if x <= bound:
        return 1.0
    if margin <= 0.0:
        return 0.0
    d = (x - bound) / margin
    return float(np.exp(-0.5 * d * d * (-2.0 * np.log(value_at_margin))))


@functools.cache
def _kitchen_defaults() -> tuple[mujoco.MjModel, np.ndarray, dict, dict]:
    """Compiled kitchen model, D4RL's initial qpos (30,), element qpos indices and goals.

    Built once per process from gymnasium-robotics' ``KitchenEnv`` (the model takes ~0.5 s
    to compile; every task env gets a copy).
    """
    from gymnasium_robotics.envs.franka_kitchen import kitchen_env

    ref = kitchen_env.KitchenEnv()
    model = ref.robot_env.model
    init_qpos = np.array(ref.robot_env.init_qpos, dtype=np.float64).copy()
    ref.close()
    indices = {k: np.asarray(v) for k, v in kitchen_env.OBS_ELEMENT_INDICES.items()}
    goals = {k: np.asarray(v, np.float64) for k, v in kitchen_env.OBS_ELEMENT_GOALS.items()}
    return model, init_qpos, indices, goals


def task_layout(task: int) -> dict[str, np.ndarray]:
    """A task's start qpos (30,), element qpos indices, target (len(idx),), goal vector (30,)."""
    _, init_qpos, indices, goals = _kitchen_defaults()
    spec = TASKS[task]
    idx = indices[spec.element]
    on_state, off_state = goals[spec.element], init_qpos[idx].copy()
    start = init_qpos.copy()
    start[idx] = off_state if spec.turn_on else on_state
    target = on_state if spec.turn_on else off_state
    goal_vec = np.zeros(30)
    goal_vec[idx] = target
    for element in GOAL_OVERWRITE_ELEMENTS:
        goal_vec[indices[element]] = goals[element]
    return {"start_qpos": start, "idx": idx, "target": target.copy(), "goal_vec": goal_vec}


class KitchenTaskEnv(FrankaRobot):
    """One MT-Easy task on gymnasium-robotics' Franka kitchen (raw env, no one-hot/time limit).

    Args:
        task: index in ``[0, 10)`` into :data:`TASKS`.
        sparse: reward ``1[success]`` instead of the dense reward (§4.6 sparse tasks).
        seed: seeds the observation-noise generator at construction (``reset(seed=)`` reseeds).
        render_mode: ``None``, ``"rgb_array"``, ``"depth_array"`` or ``"human"``.
        width, height: render size in pixels.
    """

    def __init__(
        self,
        task: int,
        *,
        sparse: bool = False,
        seed: int = 0,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ):
        self.task = int(task)
        self.spec_task = TASKS[self.task]
        self.sparse = bool(sparse)
        super().__init__(
            model_path=_ASSET_REL,
            frame_skip=FRAME_SKIP,
            robot_noise_ratio=0.0,  # noise is applied in _get_obs below
            render_mode=render_mode,
            width=width,
            height=height,
        )
        layout = task_layout(self.task)
        self._start_qpos = layout["start_qpos"]
        self._elem_idx = layout["idx"]
        self._target = layout["target"]
        self._goal_vec = layout["goal_vec"].astype(np.float32)
        self._site_id = self.model.site(self.spec_task.site).id
        self._finger_bodies = np.array([self.model.body(b).id for b in FINGER_BODIES])
        self._ee_site_id = self.model.site(END_EFFECTOR_SITE).id
        self.act_mid, self.act_rng = np.zeros(9), np.full(9, ACTION_SCALE)
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(60,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(9,), dtype=np.float32)
        seq = np.random.SeedSequence([seed, self.task])
        self.np_random = np.random.Generator(np.random.PCG64(seq))
        self._last_robot_qpos = self._start_qpos[:9].copy()
        self._init_dist_goal = self._init_dist_hand = 0.0

    def _initialize_simulation(self) -> tuple[mujoco.MjModel, mujoco.MjData]:
        model = copy.deepcopy(_kitchen_defaults()[0])
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    # -- observation ------------------------------------------------------------------------
    def _get_obs(self) -> np.ndarray:
        """(60,) float32: noisy robot qpos (9), noisy object qpos (21), goal vector (30) (§4.6)."""
        qpos = self.data.qpos
        rng = self.np_random
        robot = qpos[:9] + ROBOT_QPOS_NOISE * rng.uniform(-1.0, 1.0, 9)
        objects = qpos[9:30] + OBJECT_QPOS_NOISE * rng.uniform(-1.0, 1.0, 21)
        # As D4RL, the controller integrates from the last *observed* joint positions.
        self._last_robot_qpos = robot
        return np.concatenate([robot, objects, self._goal_vec]).astype(np.float32)

    # -- reward -----------------------------------------------------------------------------
    def hand_position(self) -> np.ndarray:
        """(3,) world position (m) of the midpoint of the two finger bodies' origins.

        The original's per-step hand point for ``dist_hand`` (§4.6 "Reward"): the mean of
        ``xpos`` of ``panda0_leftfinger`` and ``panda0_rightfinger``.
        """
        return self.data.xpos[self._finger_bodies].mean(axis=0)

    def end_effector_position(self) -> np.ndarray:
        """(3,) world position (m) of the ``end_effector`` site (the original's reset hand point)."""
        return self.data.site_xpos[self._ee_site_id].copy()

    def distances(self) -> tuple[float, float]:
        """(dist_goal, dist_hand) of the current state (§4.6 "Reward").

        Returns:
            dist_goal: ||element qpos - target|| (rad / m mixed, as D4RL).
            dist_hand: ||task site - finger-body midpoint|| (m), see :meth:`hand_position`.
        """
        dist_goal = float(np.linalg.norm(self.data.qpos[self._elem_idx] - self._target))
        dist_hand = float(np.linalg.norm(self.data.site_xpos[self._site_id] - self.hand_position()))
        return dist_goal, dist_hand

    def initial_hand_distance(self) -> float:
        """||task site - ``end_effector`` site|| (m): the original's starting hand distance.

        Recorded at reset; the reach margin is ``|initial_hand_distance - 0.08|`` (§4.6).
        """
        site = self.data.site_xpos[self._site_id]
        return float(np.linalg.norm(site - self.end_effector_position()))

    def compute_reward(self) -> tuple[float, dict]:
        """Reward of the current simulator state and the step info (§4.6 "Reward").

        Returns:
            reward: 2800 on success (dense) / 1 (sparse); else 20 (0.4 in_place + 0.6 reach - 1)
                in [-20, 0] (dense) / 0 (sparse).
            info: ``success`` (bool), ``dist_goal``, ``dist_hand``, ``in_place``, ``reach``.
        """
        thr = self.spec_task.threshold
        dist_goal, dist_hand = self.distances()
        in_place = tolerance(dist_goal, thr, abs(self._init_dist_goal - thr))
        reach = tolerance(dist_hand, REACH_RADIUS, abs(self._init_dist_hand - REACH_RADIUS))
        success = dist_goal < thr
        if self.sparse:
            reward = float(success)
        elif success:
            reward = SUCCESS_BONUS
        else:
            reward = 20.0 * (0.4 * in_place + 0.6 * reach - 1.0)
        info = {"success": bool(success), "dist_goal": dist_goal, "dist_hand": dist_hand,
                "in_place": in_place, "reach": reach}
        return reward, info

    # -- gymnasium API ----------------------------------------------------------------------
    def step(self, action: np.ndarray):
        """Velocity-control step (§4.6); terminates on success (reward 2800 dense / 1 sparse)."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        ctrl = self._ctrl_velocity_limits(self.act_mid + action * self.act_rng)
        self.do_simulation(self._ctrl_position_limits(ctrl), self.frame_skip)
        obs = self._get_obs()
        reward, info = self.compute_reward()
        if self.render_mode == "human":
            self.render()
        return obs, reward, info["success"], False, info

    def reset_model(self) -> np.ndarray:
        """Task start state (zero velocity); records the initial distances for the margins.

        As the original (§4.6): the goal margin uses ||start element qpos - target|| and the
        reach margin the distance from the task site to the ``end_effector`` site (not the
        finger-body midpoint used for ``dist_hand`` afterwards).
        """
        self.set_state(self._start_qpos, np.zeros(self.model.nv))
        self._init_dist_goal = self.distances()[0]
        self._init_dist_hand = self.initial_hand_distance()
        return self._get_obs()


def build_kitchen_mt_easy(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """The ``KitchenMTEasy-v0`` suite (§4.6): T = 10, obs 60 (+10 one-hot), action 9, 140 steps.

    Args:
        sparse_tasks: task indices rewarded with ``1[success]`` instead of the dense reward.

    Raises:
        ValueError: a sparse task index outside [0, 10).
    """
    check_sparse_tasks(ENV_ID, len(TASKS), tuple(sparse_tasks))
    sparse = frozenset(int(k) for k in sparse_tasks)

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None):
        return KitchenTaskEnv(
            task, sparse=task in sparse, seed=2 * seed + int(test), render_mode=render_mode
        )

    return TaskSuite(
        env_id=ENV_ID,
        task_names=TASK_NAMES,
        make_task_env=make_task_env,
        max_episode_steps=MAX_EPISODE_STEPS,
        min_reward=MIN_REWARD,
    )
