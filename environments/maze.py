"""MazeLarge-10-v0: 10 start/goal navigation tasks in D4RL's large point maze (reference §4.2);
MazeQuick-4-v0: four short tasks of the same maze, the quick-start suite (not in the paper).

The model is generated here: a point mass (sphere, radius 0.1) on two slide joints in a
plane without gravity, driven by two motors (gear 100, ctrl in [-1, 1]), joint damping 1,
timestep 0.01 s, Euler integration, one simulation step per env step. Every ``#`` cell of
the layout is a wall box of half-size 0.5 centred at world (row + 1, col + 1); the mass's
body sits at world (1.2, 1.2), so observation coordinates are ``qpos = (x, y)`` with
``x`` the row and ``y`` the column frame of the layout shifted by that 0.2 offset: this is
D4RL's coordinate frame, kept so that start and goal cells mean what they meant there.

Observation (4): ``[x, y, vx, vy]``. Reward (dense tasks): ``exp(-d) - 1`` with ``d`` the
distance to the goal; sparse tasks (``--sparse_tasks``): ``1[d <= 0.5]``. Success: ``d <= 0.5``,
which terminates the episode. Time limit 600 steps. Velocities are clipped to ±5 after
each step. Reset: ``qpos = start + U(-0.1, 0.1)``, ``qvel = N(0, 0.1^2)``.
"""

from __future__ import annotations

import numpy as np
from gymnasium import spaces
from gymnasium.envs.mujoco import MujocoEnv

import mujoco
from environments import check_sparse_tasks
from environments.base import TaskSuite

LARGE_MAZE = (
    "############",
    "#OOOO#OOOOO#",
    "#O##O#O#O#O#",
    "#OOOOOO#OOO#",
    "#O####O###O#",
    "#OO#O#OOOOO#",
    "##O#O#O#O###",
    "#OO#OOO#OGO#",
    "############",
)

# (start cell, goal cell) per task, (row, col) in the layout above (reference §4.2 table).
LARGE_10_TASKS = (
    ((1, 3), (5, 8)),
    ((1, 10), (2, 4)),
    ((4, 1), (1, 7)),
    ((7, 4), (4, 10)),
    ((1, 3), (7, 4)),
    ((1, 7), (7, 10)),
    ((5, 4), (7, 9)),
    ((7, 1), (2, 6)),
    ((1, 2), (3, 10)),
    ((7, 2), (6, 8)),
)

# Quick-start suite (not in the paper): four short tasks of the same large maze from one start
# cell, (3, 3) in row 3's corridor, to goals 2.2-3.2 cells away (3-4 cells of path). Tasks 0 and 1
# both leave westward along row 3 to (3, 1); tasks 2 and 3 both pass (3, 4), so each pair shares a
# corridor segment, which is what a Q-switch can share.
QUICK_4_TASKS = (
    ((3, 3), (1, 1)),
    ((3, 3), (5, 1)),
    ((3, 3), (1, 4)),
    ((3, 3), (3, 6)),
)

SUCCESS_RADIUS = 0.5
MAX_VELOCITY = 5.0
MAX_EPISODE_STEPS = 600


def maze_mjcf(layout: tuple[str, ...]) -> str:
    """MJCF of the D4RL-style point maze for ``layout`` (``#`` = wall cell)."""
    walls = "\n".join(
        f'    <geom name="wall_{r}_{c}" type="box" pos="{r + 1} {c + 1} 0" size="0.5 0.5 0.2" '
        'material="wall"/>'
        for r, row in enumerate(layout)
        for c, cell in enumerate(row)
        if cell == "#"
    )
    centre_r, centre_c = (len(layout) + 1) / 2, (len(layout[0]) + 1) / 2
    return f"""
<mujoco model="point_maze">
  <compiler angle="radian"/>
  <option timestep="0.01" gravity="0 0 0" integrator="Euler" iterations="20"/>
  <default>
    <joint damping="1" limited="false"/>
    <geom friction="0.5 0.1 0.1" density="1000" margin="0.002" condim="1" contype="2" conaffinity="1"/>
  </default>
  <asset>
    <texture name="grid" type="2d" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.1 0.15 0.2" width="100" height="100"/>
    <material name="floor" texture="grid" texrepeat="4 4"/>
    <material name="wall" rgba="0.7 0.5 0.3 1"/>
  </asset>
  <visual><global offwidth="480" offheight="480"/></visual>
  <worldbody>
    <light pos="{centre_r} {centre_c} 12" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
    <camera name="top" pos="{centre_r} {centre_c} 14" xyaxes="0 -1 0 1 0 0"/>
    <geom name="floor" type="plane" pos="{centre_r} {centre_c} -0.1" size="{centre_r + 1} {centre_c + 1} 0.1"
          material="floor" contype="1" conaffinity="0"/>
{walls}
    <body name="particle" pos="1.2 1.2 0">
      <joint name="ball_x" type="slide" axis="1 0 0" pos="0 0 0"/>
      <joint name="ball_y" type="slide" axis="0 1 0" pos="0 0 0"/>
      <geom name="particle_geom" type="sphere" size="0.1" rgba="0.9 0.2 0.2 1" contype="1"/>
    </body>
    <site name="target_site" pos="0 0 0" size="0.2" rgba="0.2 0.9 0.2 0.5"/>
  </worldbody>
  <actuator>
    <motor joint="ball_x" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
    <motor joint="ball_y" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
  </actuator>
</mujoco>
"""


class PointMazeTaskEnv(MujocoEnv):
    """One start/goal task of the point maze (reference §4.2).

    Args:
        start: start position (x, y) in the qpos frame.
        goal: goal position (x, y) in the qpos frame.
        sparse: reward ``1[success]`` instead of ``exp(-d) - 1``.
        render_mode: gymnasium render mode.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 100}

    def __init__(self, start, goal, sparse: bool = False, render_mode: str | None = None):
        self.start = np.asarray(start, dtype=np.float64)
        self.goal = np.asarray(goal, dtype=np.float64)
        self.sparse = sparse
        obs_space = spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float32)
        super().__init__(
            __file__,  # placeholder path: the model is generated in _initialize_simulation
            frame_skip=1,
            observation_space=obs_space,
            render_mode=render_mode,
            width=480,
            height=480,
            camera_name="top" if render_mode is not None else None,
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def _initialize_simulation(self):
        model = mujoco.MjModel.from_xml_string(maze_mjcf(LARGE_MAZE))
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        # The target marker is drawn at the goal; its world position carries the body offset.
        model.site_pos[0, :2] = self.goal + 1.2
        return model, mujoco.MjData(model)

    def _get_obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float32)

    def distance_to_goal(self) -> float:
        return float(np.linalg.norm(self.data.qpos[:2] - self.goal))

    def reward(self, distance: float) -> float:
        """Dense ``exp(-d) - 1`` in (-1, 0], or sparse ``1[d <= 0.5]`` (reference §4.2)."""
        if self.sparse:
            return float(distance <= SUCCESS_RADIUS)
        return float(np.exp(-distance) - 1.0)

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.do_simulation(action, self.frame_skip)
        self.data.qvel[:] = np.clip(self.data.qvel, -MAX_VELOCITY, MAX_VELOCITY)
        distance = self.distance_to_goal()
        success = distance <= SUCCESS_RADIUS
        if self.render_mode == "human":
            self.render()
        info = {"success": success, "distance": distance}
        return self._get_obs(), self.reward(distance), success, False, info

    def reset_model(self) -> np.ndarray:
        qpos = self.start + self.np_random.uniform(-0.1, 0.1, size=2)
        qvel = self.np_random.normal(0.0, 0.1, size=2)
        self.set_state(qpos, qvel)
        return self._get_obs()


def build_maze_large_10(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """The 10-task large maze suite (reference §4.2); ``min_reward`` = -1, or 0 if all sparse."""
    return _maze_suite("MazeLarge-10-v0", LARGE_10_TASKS, sparse_tasks)


def build_maze_quick_4(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """``MazeQuick-4-v0``: :data:`QUICK_4_TASKS` in the large maze, the quick-start suite (not in
    the paper; same dynamics, reward and success as ``MazeLarge-10-v0``)."""
    return _maze_suite("MazeQuick-4-v0", QUICK_4_TASKS, sparse_tasks)


def _maze_suite(env_id: str, tasks, sparse_tasks: tuple[int, ...]) -> TaskSuite:
    check_sparse_tasks(env_id, len(tasks), sparse_tasks)
    sparse = frozenset(sparse_tasks)

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None):
        start, goal = tasks[task]
        return PointMazeTaskEnv(start, goal, sparse=task in sparse, render_mode=render_mode)

    # min over tasks of the per-step minimum reward: -1 for dense tasks, 0 for sparse ones.
    min_reward = -1.0 if len(sparse) < len(tasks) else 0.0
    return TaskSuite(
        env_id=env_id,
        task_names=tuple(f"task{k}:{s}->{g}" for k, (s, g) in enumerate(tasks)),
        make_task_env=make_task_env,
        max_episode_steps=MAX_EPISODE_STEPS,
        min_reward=min_reward,
    )
