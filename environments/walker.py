"""Walker2dMT4-v0: forward, backward, balance and crawl with one planar walker (reference §4.3).

The model is gymnasium's ``walker2d_v5.xml`` read from site-packages at run time and edited
with :class:`mujoco.MjSpec` (see :func:`walker_spec`): the right foot's friction is set back to
0.9 (v5 gives both feet 1.9; the original has 0.9 everywhere except the left foot, 1.9), and
the crawl task gets an 80 m (half-length) floor and the ``ceiling_long`` box (centre
x = 8, z = 1.0, half-size 6 x 2 x 0.1, so it spans x in [2, 14] with its underside at 0.9).
Capsule densities are rescaled so that body masses equal those the original's MuJoCo 2.1
computed (:func:`match_legacy_capsule_masses`; torso 3.534 kg instead of 3.665 kg).
Everything else (RK4, timestep 0.002 s, gear 100, joint ranges, armature/damping, frictions
of the other geoms) already equals the original model; frame_skip 4 gives dt = 0.008 s.

Observation (17): ``qpos[1:]`` (rootz, rooty, 6 joint angles) and ``clip(qvel, -10, 10)``
(9). Action (6): motor commands in [-1, 1]. Reset (§4.3): ``qpos0 + U(-0.01, 0.01)``,
``qvel ~ U(-0.01, 0.01)``, then k steps with uniformly random actions (k = 5; balance 10), and
the step counter restarts at 0. Rewards (§4.3 table), with v the root's x velocity over the
step, nz = cos(rooty), dh = torso z - max(foot z, left foot z) (body frames) and
foot_speed = (|d qpos[5]| + |d qpos[8]|) / dt::

    forward   (3 - |v - 3|)  + 0.1 nz - |1.1 - dh|     + ctrl + 1 - 0.01 foot_speed
    backward  (3 - |-v - 3|) + 0.1 nz - |1.1 - dh|     + ctrl + 1 - 0.01 foot_speed
    balance   -|v|           + 0.1 nz - 0.5 |1.1 - dh| + ctrl + 1
    crawl     2 (3 - |v - 3|) - 10 [ceiling contact] + 0.1 nz + ctrl + 1 - 0.01 foot_speed

with ctrl = -1e-3 ||a||^2. Termination (failure): rootz < 0.8 (crawl 0.3), or, for crawl, any
contact with a geom whose name contains "ceiling". ``success`` is True at the step that
completes step 1000 without failing; unlike the original (which ends the episode there as a
terminal state), the end of those 1000 steps is left to the suite's ``TimeLimit`` and is a
truncation, so SAC bootstraps through it.
"""

from __future__ import annotations

import os

import gymnasium
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.envs.mujoco.walker2d_v5 import DEFAULT_CAMERA_CONFIG

import mujoco
from environments.base import TaskSuite

ENV_ID = "Walker2dMT4-v0"
TASKS = ("forward", "backward", "balance", "crawl")
MAX_EPISODE_STEPS = 1000
FRAME_SKIP = 4
WALKER_XML = os.path.join(
    os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "walker2d_v5.xml"
)

# Per-task constants (reference §4.3): random reset steps, fall height.
RANDOM_STEPS = {"forward": 5, "backward": 5, "balance": 10, "crawl": 5}
MIN_HEIGHT = {"forward": 0.8, "backward": 0.8, "balance": 0.8, "crawl": 0.3}
CEILING_X, CEILING_Z, CEILING_HALF_SIZE = 8.0, 1.0, (6.0, 2.0, 0.1)
X_VEL_LIMIT = 3.0
CTRL_COEF = 1e-3
INIT_NOISE = 0.01
# Body indices of the torso and both feet (same order as the original model: world, torso,
# thigh, leg, foot, thigh_left, leg_left, foot_left).
TORSO, FOOT, FOOT_LEFT = 1, 4, 7


def match_legacy_capsule_masses(spec: mujoco.MjSpec) -> None:
    """Give every capsule the mass the MuJoCo 2.x of mujoco-py computed for it (in place).

    mujoco-py era MuJoCo gave a capsule of radius r and cylinder length L the mass
    ``rho * pi * r^2 * (L + r)`` (e.g. Walker2d torso 3.534 kg, Reacher link 0.03456 kg), while
    MuJoCo >= 2.2 uses the exact volume ``pi * r^2 * (L + 4 r / 3)`` (torso 3.665 kg). Scaling
    each capsule's density by ``(L + r) / (L + 4 r / 3)`` restores the old masses exactly; the
    inertias are the exact ones scaled by the same factor.
    """
    model = spec.compile()
    for i in range(model.ngeom):
        if model.geom_type[i] != mujoco.mjtGeom.mjGEOM_CAPSULE:
            continue
        r, half = model.geom_size[i, 0], model.geom_size[i, 1]
        geom = spec.geom(model.geom(i).name)
        geom.density = geom.density * (2 * half + r) / (2 * half + 4 * r / 3)


def walker_spec(with_ceiling: bool) -> mujoco.MjSpec:
    """The v5 walker edited to match the original model (§4.3); ``with_ceiling`` for crawl."""
    spec = mujoco.MjSpec.from_file(WALKER_XML)
    spec.geom("foot_geom").friction = [0.9, 0.1, 0.1]  # original: only the left foot has 1.9
    match_legacy_capsule_masses(spec)
    if with_ceiling:
        spec.geom("floor").size = [80.0, 80.0, 40.0]
        ceiling = spec.worldbody.add_geom()
        ceiling.name = "ceiling_long"
        ceiling.type = mujoco.mjtGeom.mjGEOM_BOX
        ceiling.pos = [CEILING_X, 0.0, CEILING_Z]
        ceiling.size = list(CEILING_HALF_SIZE)
        ceiling.contype, ceiling.conaffinity = 1, 1
        ceiling.friction = [0.7, 0.1, 0.1]
        ceiling.rgba = [0.4, 0.4, 0.7, 1.0]
    return spec


def walker_reward(
    task: str,
    v: float,
    nz: float,
    delta_h: float,
    foot_speed: float,
    ctrl: float,
    ceiling_contact: bool = False,
) -> tuple[float, dict[str, float]]:
    """Per-step reward of one task and its terms (reference §4.3 table).

    Args:
        task: one of :data:`TASKS`.
        v: root x velocity over the step, m/s.
        nz: cos(rooty), dimensionless.
        delta_h: torso height above the higher foot, m.
        foot_speed: summed absolute ankle angular speeds, rad/s.
        ctrl: control term ``-1e-3 ||a||^2`` (<= 0).
        ceiling_contact: crawl only, a geom named "*ceiling*" is in contact.

    Returns:
        ``(reward, terms)``; ``terms`` holds every summand and ``x_velocity`` (forward/crawl:
        ``3 - |v - 3|``; backward: ``-(3 - |-v - 3|)``; balance: ``v``).
    """
    terms = {"ctrl_reward": ctrl, "alive_reward": 1.0, "angle_reward": 0.1 * nz}
    terms["collision_penalty"] = 0.0
    if task in ("forward", "backward", "crawl"):
        signed = v if task != "backward" else -v
        capped = X_VEL_LIMIT - abs(signed - X_VEL_LIMIT)
        scale = 2.0 if task == "crawl" else 1.0
        terms["x_vel_reward"] = scale * capped
        terms["foot_reward"] = -0.01 * foot_speed
        terms["height_reward"] = 0.0 if task == "crawl" else -abs(1.1 - delta_h)
        x_velocity = -capped if task == "backward" else capped
        if task == "crawl" and ceiling_contact:
            terms["collision_penalty"] = -10.0
    elif task == "balance":
        terms["x_vel_reward"] = -abs(v)
        terms["foot_reward"] = 0.0
        terms["height_reward"] = -0.5 * abs(1.1 - delta_h)
        x_velocity = v
    else:
        raise ValueError(f"unknown Walker2dMT4 task {task!r}; allowed: {', '.join(TASKS)}")
    reward = float(sum(terms.values()))
    terms["x_velocity"] = float(x_velocity)
    return reward, terms


class Walker2dTaskEnv(MujocoEnv, utils.EzPickle):
    """One task of Walker2dMT4 (reference §4.3); see the module docstring for the definitions.

    Args:
        task: one of :data:`TASKS`.
        render_mode: gymnasium render mode.
        width, height: rendered frame size in pixels.
    """

    metadata = {"render_modes": ["human", "rgb_array", "depth_array"], "render_fps": 125}

    def __init__(
        self, task: str, render_mode: str | None = None, width: int = 480, height: int = 480
    ):
        if task not in TASKS:
            raise ValueError(f"unknown Walker2dMT4 task {task!r}; allowed: {', '.join(TASKS)}")
        utils.EzPickle.__init__(self, task, render_mode, width, height)
        self.task = task
        self.min_height = MIN_HEIGHT[task]
        self.random_steps = RANDOM_STEPS[task]
        self._t = 0
        obs_space = spaces.Box(-np.inf, np.inf, shape=(17,), dtype=np.float32)
        super().__init__(
            WALKER_XML,
            FRAME_SKIP,
            observation_space=obs_space,
            render_mode=render_mode,
            width=width,
            height=height,
            default_camera_config=DEFAULT_CAMERA_CONFIG,
        )
        names = [self.model.geom(i).name for i in range(self.model.ngeom)]
        self._ceiling_geoms = np.array([i for i, n in enumerate(names) if "ceiling" in n], np.int64)

    def _initialize_simulation(self):
        model = walker_spec(with_ceiling=self.task == "crawl").compile()
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _get_obs(self) -> np.ndarray:
        qvel = np.clip(self.data.qvel, -10.0, 10.0)
        return np.concatenate([self.data.qpos[1:], qvel]).astype(np.float32)

    def ceiling_contact(self) -> bool:
        """True if any active contact involves a geom whose name contains "ceiling"."""
        if self._ceiling_geoms.size == 0 or self.data.ncon == 0:
            return False
        con = self.data.contact
        geoms = np.concatenate([con.geom1[: self.data.ncon], con.geom2[: self.data.ncon]])
        return bool(np.isin(geoms, self._ceiling_geoms).any())

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        qpos_before = self.data.qpos.copy()
        self.do_simulation(action, self.frame_skip)
        qpos = self.data.qpos
        v = (qpos[0] - qpos_before[0]) / self.dt
        foot_speed = (abs(qpos[5] - qpos_before[5]) + abs(qpos[8] - qpos_before[8])) / self.dt
        xpos = self.data.xpos
        delta_h = xpos[TORSO, 2] - max(xpos[FOOT, 2], xpos[FOOT_LEFT, 2])
        nz = np.cos(qpos[2])
        ctrl = -CTRL_COEF * float(np.square(action).sum())
        contact = self.ceiling_contact()
        reward, terms = walker_reward(self.task, v, nz, delta_h, foot_speed, ctrl, contact)

        height = float(qpos[1])
        terminated = bool(height < self.min_height or contact)
        self._t += 1
        success = (not terminated) and self._t >= MAX_EPISODE_STEPS
        info = dict(terms, success=success, delta_h=float(delta_h), nz=float(nz), height=height)
        info["ceiling_contact"] = contact
        if self.render_mode == "human":
            self.render()
        return self._get_obs(), reward, terminated, False, info

    def reset_model(self) -> np.ndarray:
        r = INIT_NOISE
        qpos = self.init_qpos + self.np_random.uniform(-r, r, size=self.model.nq)
        qvel = self.init_qvel + self.np_random.uniform(-r, r, size=self.model.nv)
        self.set_state(qpos, qvel)
        for _ in range(self.random_steps):
            action = self.np_random.uniform(-1.0, 1.0, size=self.model.nu)
            self.do_simulation(action, self.frame_skip)
        self._t = 0
        return self._get_obs()


def build_walker2d_mt4(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """The 4-task walker suite (reference §4.3); ``min_reward`` = 0 as in the original.

    Raises:
        ValueError: if ``sparse_tasks`` is non-empty (no sparse variant exists).
    """
    if sparse_tasks:
        raise ValueError(f"--sparse_tasks is not supported by {ENV_ID} (it has no sparse tasks)")

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None):
        return Walker2dTaskEnv(TASKS[task], render_mode=render_mode)

    return TaskSuite(
        env_id=ENV_ID,
        task_names=TASKS,
        make_task_env=make_task_env,
        max_episode_steps=MAX_EPISODE_STEPS,
        min_reward=0.0,
        episode_info_keys={"x_velocity": "Velocity"},
    )
