"""CTPG's HalfCheetah task sets: HalfCheetahMT5-v0 (gravity) and HalfCheetahMT8-v0 (body parts).

Reference: CTPG anchors §1.12-§1.14 (the gym-extensions variants bundled with CTPG). Every
task is the standard HalfCheetah (gymnasium's ``HalfCheetah-v5`` class and ``half_cheetah.xml``
read from site-packages, frame_skip 5, dt = 0.05 s) with a modified model built with
:class:`mujoco.MjSpec`:

* MT5 "gravity": gravity z scaled by 1, 0.5, 0.75, 1.5, 1.25 (-9.81, -4.905, -7.3575, -14.715,
  -12.2625 m/s^2), in CTPG's task order (its ``halfcheetah_gravity.MT5`` env list: HalfCheetah-v2,
  GravityHalf, GravityThreeQuarters, GravityOneAndHalf, GravityOneAndQuarter).
* MT8 "body": the ``size`` of the named capsule geoms multiplied by 1.25 ("Big") or 0.75
  ("Small"): torso = geom ``torso``; thigh = ``bthigh`` + ``fthigh``; leg = ``bshin`` + ``fshin``;
  foot = ``bfoot`` + ``ffoot``. Exactly as gym-extensions edits the XML ``size`` attribute: the
  radius and half-length both scale, while geom positions, orientations and body/joint
  positions do not (limbs stick out further or fall short of the next joint); the torso is
  given by ``fromto``, so only its radius scales (its length and the head are unchanged).
  Masses follow from the geometry (``inertiafromgeom``) and are then renormalised to the model's
  ``settotalmass = 14`` kg, so a bigger part is heavier and all other bodies get lighter.

In all tasks capsule densities are rescaled so that masses equal what mujoco-py's MuJoCo
computed (:func:`environments.walker.match_legacy_capsule_masses`; default torso 6.360 kg, as
in HalfCheetah-v2, instead of 6.250 kg).

Observation (17): ``qpos[1:]`` and ``qvel``. Action (6) in [-1, 1]. Reward (§1.13):
``x_velocity - 0.1 ||a||^2`` with ``x_velocity = (x_after - x_before) / dt`` of the root; no
termination; 1000 steps (time limit = truncation). Reset: ``qpos0 + U(-0.1, 0.1)``,
``qvel = 0.1 N(0, 1)``. CTPG's extra x0.1 reward scaling is a learner setting, not applied here.
Success is not meaningful (CTPG's "survive 1000 steps" is always true): ``info["success"]``
is always False and the suite has ``success_is_meaningful=False``.
"""

from __future__ import annotations

import os

import gymnasium
import numpy as np
from gymnasium import spaces, utils
from gymnasium.envs.mujoco.half_cheetah_v5 import HalfCheetahEnv

import mujoco
from environments.base import TaskSuite
from environments.walker import match_legacy_capsule_masses

MAX_EPISODE_STEPS = 1000
CHEETAH_XML = os.path.join(
    os.path.dirname(gymnasium.__file__), "envs", "mujoco", "assets", "half_cheetah.xml"
)
# MT5 task order = CTPG's env list for ``halfcheetah_gravity.MT5`` (x1.5 before x1.25).
GRAVITY_SCALES = (1.0, 0.5, 0.75, 1.5, 1.25)
GRAVITY_NAMES = ("Gravity1.0", "Gravity0.5", "Gravity0.75", "Gravity1.5", "Gravity1.25")
BODY_PARTS = {
    "Torso": ("torso",),
    "Thigh": ("fthigh", "bthigh"),
    "Leg": ("fshin", "bshin"),
    "Foot": ("ffoot", "bfoot"),
}
# MT8 task order (anchors §1.13): Big/Small for torso, thigh, leg, foot.
BODY_TASKS = tuple(
    (f"{size}{part}", BODY_PARTS[part], scale)
    for part in ("Torso", "Thigh", "Leg", "Foot")
    for size, scale in (("Big", 1.25), ("Small", 0.75))
)
# Per-step reward lower bound used for UDS relabelling (see build_* docstrings).
MIN_REWARD = -3.0


def cheetah_spec(
    gravity_scale: float = 1.0, scaled_geoms: tuple[str, ...] = (), size_scale: float = 1.0
) -> mujoco.MjSpec:
    """gymnasium's ``half_cheetah.xml`` with scaled gravity and/or scaled geom sizes (§1.13).

    Args:
        gravity_scale: multiplier of the gravity vector (default -9.81 m/s^2 along z).
        scaled_geoms: names of the geoms whose ``size`` entries are all multiplied by
            ``size_scale``.
        size_scale: e.g. 1.25 ("Big") or 0.75 ("Small").
    """
    spec = mujoco.MjSpec.from_file(CHEETAH_XML)
    spec.option.gravity = np.asarray(spec.option.gravity) * gravity_scale
    for name in scaled_geoms:
        geom = spec.geom(name)
        geom.size = np.asarray(geom.size) * size_scale
    match_legacy_capsule_masses(spec)
    return spec


class HalfCheetahVariantEnv(HalfCheetahEnv):
    """HalfCheetah-v5 on a modified model (CTPG §1.13); float32 observations, success False.

    Args:
        gravity_scale, scaled_geoms, size_scale: see :func:`cheetah_spec`.
        render_mode: gymnasium render mode.
        width, height: rendered frame size in pixels.
    """

    def __init__(
        self,
        gravity_scale: float = 1.0,
        scaled_geoms: tuple[str, ...] = (),
        size_scale: float = 1.0,
        render_mode: str | None = None,
        width: int = 480,
        height: int = 480,
    ):
        self.gravity_scale = gravity_scale
        self.scaled_geoms = tuple(scaled_geoms)
        self.size_scale = size_scale
        super().__init__(render_mode=render_mode, width=width, height=height)
        # Re-record the constructor arguments so that pickling rebuilds this class correctly.
        utils.EzPickle.__init__(
            self, gravity_scale, self.scaled_geoms, size_scale, render_mode, width, height
        )
        self.observation_space = spaces.Box(-np.inf, np.inf, shape=(17,), dtype=np.float32)

    def _initialize_simulation(self):
        model = cheetah_spec(self.gravity_scale, self.scaled_geoms, self.size_scale).compile()
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, self.width)
        model.vis.global_.offheight = max(model.vis.global_.offheight, self.height)
        return model, mujoco.MjData(model)

    def _get_obs(self) -> np.ndarray:
        return super()._get_obs().astype(np.float32)

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        info["success"] = False
        return obs, float(reward), terminated, truncated, info


def _suite(env_id: str, names: tuple[str, ...], kwargs: list[dict], sparse_tasks) -> TaskSuite:
    if sparse_tasks:
        raise ValueError(f"--sparse_tasks is not supported by {env_id} (it has no sparse tasks)")

    def make_task_env(task: int, *, test: bool, seed: int, render_mode: str | None):
        return HalfCheetahVariantEnv(**kwargs[task], render_mode=render_mode)

    return TaskSuite(
        env_id=env_id,
        task_names=names,
        make_task_env=make_task_env,
        max_episode_steps=MAX_EPISODE_STEPS,
        min_reward=MIN_REWARD,
        episode_info_keys={"x_velocity": "Velocity"},
        success_is_meaningful=False,
    )


def build_halfcheetah_mt5(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """HalfCheetah-MT5 (gravity x1, 0.5, 0.75, 1.5, 1.25 in this task order; CTPG anchors §1.13).

    ``min_reward`` = -3: the control cost is at least -0.6 and x velocity is unbounded below,
    so no exact bound exists; -3 lies below the per-step rewards of random and of
    forward-running policies (see docs/deviations.md).

    Raises:
        ValueError: if ``sparse_tasks`` is non-empty.
    """
    kwargs = [{"gravity_scale": g} for g in GRAVITY_SCALES]
    return _suite("HalfCheetahMT5-v0", GRAVITY_NAMES, kwargs, sparse_tasks)


def build_halfcheetah_mt8(sparse_tasks: tuple[int, ...] = ()) -> TaskSuite:
    """HalfCheetah-MT8 (Big/Small torso, thigh, leg, foot; CTPG anchors §1.13).

    ``min_reward`` as for :func:`build_halfcheetah_mt5`.

    Raises:
        ValueError: if ``sparse_tasks`` is non-empty.
    """
    names = tuple(name for name, _, _ in BODY_TASKS)
    kwargs = [{"scaled_geoms": geoms, "size_scale": s} for _, geoms, s in BODY_TASKS]
    return _suite("HalfCheetahMT8-v0", names, kwargs, sparse_tasks)
