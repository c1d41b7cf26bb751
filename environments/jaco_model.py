"""MuJoCo model of the 6-DoF Jaco arm used by ``JacoReachMT5-v1`` (reference §4.1).

The arm is the Kinova Jaco model shipped with ``dm_control`` (``third_party/kinova/jaco_arm.xml``
and its decimated meshes), read from site-packages at run time and edited with
:class:`mujoco.MjSpec` to match the physics of the original env (§4.1; the original's numbers
are restated as the constants below):

* joints: damping 0.5, armature 0.01, no friction loss (dm_control uses 0.01 / 2-4 / 1-2);
  dm_control's joint ranges are kept (joints 2 and 3 limited, the others unlimited);
* six torque motors, gear 5 on joint 1 and 10 on joints 2-6, ``ctrlrange`` [-1, 1], i.e. at
  most 5 / 10 N m per joint;
* gravity 9.8 m/s^2, timestep 0.01 s, Euler integrator, 10 solver iterations;
* masses: the link geoms carry the original's body masses (:data:`LINK_MASSES`; dm_control's
  link_2 is 1.17 kg against the original's 1.85 kg), and the wrist flange carries a hand stub
  (a capsule along the wrist axis, contype 1 / conaffinity 0: it collides with the floor only)
  with the original hand's 0.58074 kg centred 0.0584 m past the flange. Total 4.990 kg as in
  the original; 4.203 kg moves;
* pedestal: the base is raised :data:`PEDESTAL_HEIGHT` = 0.25 m on a capsule post as in the
  original, which puts the shoulder (joint 2) axis at z = 0.5255 m (original 0.522 m);
* a floor plane at z = 0, a light, and a mocap body ``target`` carrying a non-colliding
  sphere of radius 0.049 m that marks the current sub-goal;
* no fingers: the "hand" point is the origin of the last link ``b_6`` (the wrist flange,
  where dm_control attaches the hand), the analogue of the original's ``jaco_link_hand``.

With these masses, holding the hand still at g2, g3 or the start pose needs more than the
shoulder motor's 10 N m (about 108-116 %, as in the original); g0 and g1 can be held (see
``tests/test_env_jaco.py`` and docs/deviations.md).
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
GRAVITY = 9.8  # m/s^2, the original's option gravity="0 0 -9.8"
PEDESTAL_HEIGHT = 0.25  # m, height of the arm base above the floor (original base pos z)
# Link masses (kg) of the original's six arm bodies, put on dm_control's corresponding mesh
# geoms (the mesh geometry keeps placing the centre of mass, within 2 mm of the original's).
LINK_MASSES = {
    "base": 0.787504,
    "link_1": 0.613151,
    "link_2": 1.85031,
    "link_3": 0.70372,
    "link_4": 0.227408,
    "link_5": 0.227408,
}
HAND_MASS = 0.58074  # kg, the original's jaco_link_hand
HAND_COM_OFFSET = 0.0584  # m, hand centre of mass from the flange along the wrist axis
# Hand stub capsule (m): radius and half-length of its segment, centred on the hand's centre
# of mass; its transverse inertia is 8.8e-4 kg m^2 (original hand: 6.1e-4 to 8.2e-4).
HAND_STUB_RADIUS = 0.04
HAND_STUB_HALF_LENGTH = 0.03
# Nominal start configuration (rad): the pose of the original arm at its qpos0 (upper arm
# horizontal, elbow at (0.41, 0, 0.52) m, forearm down), found by matching the elbow, wrist and
# hand points; the hand (b_6 origin) is at (0.410, 0.119, 0.239) m as in the original.
HOME_QPOS = np.array([3.1377, 4.7307, 1.6636, -2.7527, 2.4997, 0.0])


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
    spec.option.gravity = [0.0, 0.0, -GRAVITY]
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
    for geom_name, mass in LINK_MASSES.items():
        spec.geom(geom_name).mass = mass

    # Pedestal: the base sits PEDESTAL_HEIGHT above the floor on a capsule post (§4.1); the
    # post is visual only (the original's post, part of the fixed base, touches nothing either).
    base = spec.body("b_base")
    base.pos = [0.0, 0.0, PEDESTAL_HEIGHT]
    post = base.add_geom()
    post.name = "pedestal"
    post.type = mujoco.mjtGeom.mjGEOM_CAPSULE
    post.fromto = [0.0, 0.0, -PEDESTAL_HEIGHT, 0.0, 0.0, 0.0]
    post.size = [0.045, 0.0, 0.0]
    post.mass = 0.0
    post.contype = 0
    post.conaffinity = 0
    post.rgba = [0.1, 0.1, 0.1, 1.0]

    # Hand stub: a capsule along the wrist axis (-z of b_6, the direction in which dm_control
    # mounts its hand) carrying the original hand's mass, centre of mass HAND_COM_OFFSET past
    # the flange. It collides with the floor only (contype 1, conaffinity 0).
    hand = spec.body(HAND_BODY).add_geom()
    hand.name = "hand_stub"
    hand.type = mujoco.mjtGeom.mjGEOM_CAPSULE
    near, far = HAND_COM_OFFSET - HAND_STUB_HALF_LENGTH, HAND_COM_OFFSET + HAND_STUB_HALF_LENGTH
    hand.fromto = [0.0, 0.0, -near, 0.0, 0.0, -far]
    hand.size = [HAND_STUB_RADIUS, 0.0, 0.0]
    hand.mass = HAND_MASS
    hand.contype = 1
    hand.conaffinity = 0
    hand.rgba = [0.13, 0.13, 0.13, 1.0]

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

    Limited joints are clipped 0.05 rad inside their ranges at every iteration. If the
    iteration from ``q_start`` ends in a local minimum (error >= ``tol``), it is restarted
    once from :data:`HOME_QPOS` and the better of the two results is returned.

    Args:
        model: model from :func:`build_jaco_model`.
        goal: (3,) target hand position in metres (world frame).
        q_start: (6,) initial joint angles.
        iters: maximum number of iterations per start.
        tol: stop when the position error (m) is below this.

    Returns:
        ``(qpos, error)``: (6,) joint angles and the remaining hand-goal distance in metres.
    """
    q, err = _dls_ik(model, goal, q_start, iters, tol)
    if err >= tol and not np.array_equal(np.asarray(q_start), HOME_QPOS):
        q_home, err_home = _dls_ik(model, goal, HOME_QPOS, iters, tol)
        if err_home < err:
            q, err = q_home, err_home
    return q, err


def _dls_ik(
    model: mujoco.MjModel, goal: np.ndarray, q_start: np.ndarray, iters: int, tol: float
) -> tuple[np.ndarray, float]:
    """One damped-least-squares run of :func:`solve_ik` (damping 1e-3 m^2)."""
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
