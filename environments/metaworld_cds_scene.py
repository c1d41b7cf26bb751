"""The door + drawer scene of ``MetaWorldCDS-v1`` (reference §4.5), composed at run time.

The MJCF below is written for this project; it only ``<include>``s metaworld 3's installed
asset files (table scene, Sawyer xyz base, drawer, door safe ``doorlockB``), nothing is copied.
Layout (§4.5): drawer body at (0.4, 0.9, 0), door body at (-0.1, 0.9, 0.15), a ``goal`` site,
two gripper position actuators (kp 400) and the mocap weld that drives the hand.

Meta-World's include files use paths relative to ``metaworld/assets/sawyer_xyz`` (meshes and
textures included), so the model is parsed with that folder as the working directory, once per
process under a lock; every env gets its own copy of the compiled model.
"""

from __future__ import annotations

import copy
import functools
import os
import threading

import mujoco
import numpy as np

DRAWER_POS = np.array([0.4, 0.9, 0.0])
"""Default drawer body position (m); door tasks keep the drawer here (§4.5)."""

DOOR_POS = np.array([-0.1, 0.9, 0.15])
"""Default door body position (m); drawer tasks keep the door here (§4.5)."""

_SCENE_XML = """<mujoco model="cds_door_drawer">
  <include file="../scene/basic_scene.xml"/>
  <include file="../objects/assets/doorlock_dependencies.xml"/>
  <include file="../objects/assets/drawer_dependencies.xml"/>
  <include file="../objects/assets/xyz_base_dependencies.xml"/>
  <worldbody>
    <include file="../objects/assets/xyz_base.xml"/>
    <body name="drawer" pos="{drawer}">
      <include file="../objects/assets/drawer.xml"/>
    </body>
    <body name="door" pos="{door}">
      <include file="../objects/assets/doorlockB.xml"/>
    </body>
    <site name="goal" pos="0 0.6 0.1" size="0.02" rgba="0 0.8 0 1"/>
  </worldbody>
  <actuator>
    <position ctrllimited="true" ctrlrange="-1 1" joint="r_close" kp="400" user="1"/>
    <position ctrllimited="true" ctrlrange="-1 1" joint="l_close" kp="400" user="1"/>
  </actuator>
  <equality>
    <weld body1="mocap" body2="hand" solref="0.02 1"/>
  </equality>
</mujoco>
"""

_LOCK = threading.Lock()


def scene_xml() -> str:
    """The scene's MJCF text (relative includes, to be parsed from ``sawyer_xyz_dir()``)."""
    fmt = lambda v: " ".join(f"{x:g}" for x in v)  # noqa: E731
    return _SCENE_XML.format(drawer=fmt(DRAWER_POS), door=fmt(DOOR_POS))


def sawyer_xyz_dir() -> str:
    """``site-packages/metaworld/assets/sawyer_xyz`` of the installed metaworld."""
    from metaworld.asset_path_utils import full_V3_path_for

    return os.path.dirname(full_V3_path_for("sawyer_xyz/sawyer_drawer.xml"))


@functools.lru_cache(maxsize=1)
def _compiled() -> mujoco.MjModel:
    with _LOCK:
        cwd = os.getcwd()
        os.chdir(sawyer_xyz_dir())
        try:
            return mujoco.MjModel.from_xml_string(scene_xml())
        finally:
            os.chdir(cwd)


def scene_model() -> mujoco.MjModel:
    """A fresh copy of the compiled scene (nq 11: 7 arm + 2 fingers + drawer slide + door hinge)."""
    return copy.deepcopy(_compiled())
