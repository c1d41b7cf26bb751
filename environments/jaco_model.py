"""MuJoCo model of the 6-DoF Jaco arm used by ``JacoReachMT5-v1`` (reference §4.1).

The arm is the Kinova Jaco model shipped with ``dm_control`` (``third_party/kinova/jaco_arm.xml``
and its decimated meshes), read from site-packages at run time and edited with
:class:`mujoco.MjSpec` to match the dynamics of the original env (§4.1):

* joints: damping 0.5, armature 0.01, no friction loss (dm_control uses 0.01 / 2-4 / 1-2);
  dm_control's joint ranges are kept (joints 2 and 3 limited, the others unlimited);
* six torque motors, gear 5 on joint 1 and 10 on joints 2-6, ``ctrlrange`` [-1, 1];
* gravity on, timestep 0.01 s, Euler integrator, 10 solver iterations;
* a floor plane at z = 0, a light, and a mocap body ``target`` carrying a non-colliding
  sphere of radius 0.049 m that marks the current sub-goal;
* no fingers: the "hand" point is the origin of the last link ``b_6`` (the wrist flange,
  where dm_control attaches the hand), the analogue of the original's ``jaco_link_hand``.

The base sits at the world origin. All four sub-goals of §4.1 are reachable from there
(checked by :func:`solve_ik`, see ``tests/test_env_jaco.py``).
"""

from __future__ import annotations

import os

import mujoco
import numpy as np

HAND_BODY = "b_6"
TARGET_BODY = "target"
TARGET_RADIUS = 0.049
JOINT_NAMES = tuple(f"joint_{i}" for i in range(1, 7))
GEARS = (5.0, 10.0, 10.0, 10.0, 10.0, 10.0)
# Nominal start configuration (rad): elbow up, hand in front of the base at about
# (0.41, 0.12, 0.24) m, close to the original's start hand position (0.410, 0.119, 0.239).
HOME_QPOS = np.array([-0.044, 2.153, 4.982, 0.119, 3.092, 0.0])


def jaco_arm_xml_path() -> str:
    """Path of dm_control's ``jaco_arm.xml`` inside site-packages."""
    import dm_control

    return os.path.join(
        os.path.dirname(dm_control.__file__), "third_party", "kinova", "jaco_arm.xml"
    )


def build_jaco_model(offwidth: int = 480, offheight: int = 480) -> mujoco.MjModel:
    """Compile the Jaco reacher model (see module docstring for every edit).

    Args:
        offwidth: minimum offscreen framebuffer width in pixels.
        offheight: minimum offscreen framebuffer height in pixels.

    Returns:
        compiled model with nq = nv = nu = 6 and one mocap body.
    """
    spec = mujoco.MjSpec.from_file(jaco_arm_xml_path())
    spec.modelname = "jaco_reach_multistage"
    spec.option.timestep = 0.01
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_EULER
    spec.option.iterations = 10
    spec.option.gravity = [0.0, 0.0, -9.81]
    for name, gear in zip(JOINT_NAMES, GEARS):
        joint = spec.joint(name)
        joint.damping = 0.5
        joint.armature = 0.01
        joint.frictionloss = 0.0
        motor = spec.add_actuator()
        motor.name = f"motor_{name[-1]}"
        motor.target = name
        motor.trntype = mujoco.mjtTrn.mjTRN_JOINT
        motor.gear[0] = gear
        motor.ctrllimited = mujoco.mjtLimited.mjLIMITED_TRUE
        motor.ctrlrange = [-1.0, 1.0]

    world = spec.worldbody
    floor = world.add_geom()
    floor.name = "floor"
    floor.type = mujoco.mjtGeom.mjGEOM_PLANE
    floor.size = [3.0, 3.0, 0.05]
    floor.rgba = [0.55, 0.6, 0.65, 1.0]
    floor.contype = 1
    floor.conaffinity = 1
    light = world.add_light()
    light.pos = [0.0, 0.0, 2.5]
    light.dir = [0.0, 0.0, -1.0]
    light.diffuse = [0.8, 0.8, 0.8]

    target = world.add_body()
    target.name = TARGET_BODY
    target.mocap = True
    sphere = target.add_geom()
    sphere.name = "target_sphere"
    sphere.type = mujoco.mjtGeom.mjGEOM_SPHERE
    sphere.size = [TARGET_RADIUS, 0.0, 0.0]
    sphere.rgba = [0.9, 0.2, 0.2, 0.6]
    sphere.contype = 0
    sphere.conaffinity = 0
    sphere.mass = 0.0

    model = spec.compile()
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, offwidth)
    model.vis.global_.offheight = max(model.vis.global_.offheight, offheight)
    return model


def hand_position(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Hand position (3,) in metres for joint angles ``qpos`` (6,), by forward kinematics."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    return data.body(HAND_BODY).xpos.copy()


def solve_ik(
    model: mujoco.MjModel,
    goal: np.ndarray,
    q_start: np.ndarray = HOME_QPOS,
    iters: int = 300,
    tol: float = 1e-4,
) -> tuple[np.ndarray, float]:
    """Joint angles putting the hand at ``goal`` (damped least squares on the hand Jacobian).

    Limited joints are clipped 0.05 rad inside their ranges at every iteration.

    Args:
        model: model from :func:`build_jaco_model`.
        goal: (3,) target hand position in metres (world frame).
        q_start: (6,) initial joint angles.
        iters: maximum number of iterations.
        tol: stop when the position error (m) is below this.

    Returns:
        ``(qpos, error)``: (6,) joint angles and the remaining hand-goal distance in metres.
    """
    data = mujoco.MjData(model)
    hand = model.body(HAND_BODY).id
    lo = np.where(model.jnt_limited, model.jnt_range[:, 0] + 0.05, -np.inf)
    hi = np.where(model.jnt_limited, model.jnt_range[:, 1] - 0.05, np.inf)
    q = np.clip(np.asarray(q_start, dtype=np.float64).copy(), lo, hi)
    jac = np.zeros((3, model.nv))
    err = np.inf
    for _ in range(iters):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        e = np.asarray(goal) - data.xpos[hand]
        err = float(np.linalg.norm(e))
        if err < tol:
            break
        mujoco.mj_jacBody(model, data, jac, None, hand)
        dq = jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), e)
        q = np.clip(q + dq, lo, hi)
    return q, err
