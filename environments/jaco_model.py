"""MuJoCo model of the original 6-DoF Jaco arm used by ``JacoReachMT5-v1`` (reference §4.1, §4.1a).

The model is written here, as MJCF generated from the constants below, which restate the numbers
of the original env's model file (the Kinova Jaco from the MuJoCo 1.31 model library, as used by
clvrai/qmp's ``jaco_reach_multistage.xml``): every body frame, hinge axis and range (joint 5's
``ref`` -2.8 included), every inertial, the motors, the options and the contact classes. The only
change is geometric: each link mesh is replaced by the axis-aligned box (in its body's frame) that
bounds it, so nothing is read from another package or repository. Kinematics, masses and gravity
torques are the original's numbers; collision shapes are boxes, which only matter for floor contact.

* options: timestep 0.01 s, gravity (0, 0, -9.8) m/s^2, Euler, 10 solver iterations;
* joints: every hinge limited, damping 0.5, armature 0.01; joint 5 has ``ref`` -2.8, so its qpos0
  (-2.8 rad) lies outside its range [-0.698, 0.698]: the limit snaps it into range within about
  3 env steps after a reset, as in the original (docs/deviations.md);
* motors: gear 5 on joint 1 and 10 on joints 2-6, ``ctrlrange`` [-1, 1], i.e. at most 5 / 10 N m;
* contacts: geom margin 0.001; arm geoms contype 1 / conaffinity 0 (they touch the floor, never each
  other); the floor plane contype 1 / conaffinity 1;
* a mocap body ``target`` with a non-colliding sphere of radius 0.049 m marks the current sub-goal;
* no fingers: the "hand" point is the origin of the last body :data:`HAND_BODY`.

At qpos0 the hand is at (0.4100, 0.1192, 0.2394) m. Holding the hand still at g2, g3 or the start
pose needs more than the shoulder motor's 10 N m (111-118 % of it); g0 and g1 can be held (83 %,
92 %). See ``tests/test_env_jaco.py``.
"""

from __future__ import annotations

import mujoco
import numpy as np

HAND_BODY = "jaco_link_hand"
TARGET_BODY = "target"
TARGET_RADIUS = 0.049
JOINT_NAMES = tuple(f"jaco_joint_{i}" for i in range(1, 7))
GEARS = (5.0, 10.0, 10.0, 10.0, 10.0, 10.0)
GRAVITY = 9.8  # m/s^2
DAMPING = 0.5  # N m s / rad
ARMATURE = 0.01  # kg m^2
GEOM_MARGIN = 0.001  # m
WRIST_RANGE = (-0.698132, 0.698132)  # rad, joints 3-6
JOINT5_REF = -2.8  # rad, joint 5's reference angle (= its qpos0)


# One row per body of the chain (reference §4.1a): name, parent, frame position (m) and
# quaternion (w x y z) in the parent's frame, hinge (axis, range in rad, ref) or None for the
# fixed base, mass (kg), inertial position (m) and quaternion in the body frame, diagonal
# inertia (kg m^2), and the box bounding the link's mesh (lo, hi corners, body frame, m).
_WRIST_INERTIAL = (0.227408, (0.00914824, 4.5e-8, -0.0370941),
                   (0.971237, -1.92989e-5, -0.238115, 3.23646e-5),
                   (0.000176463, 0.00017225, 0.000108303))
_WRIST_BOX = ((-0.032, -0.032, -0.092), (0.052, 0.032, 0.0))
BODIES = (
    ("jaco_link_base", "world", (0, 0, 0.25), (1, 0, 0, 0), None,
     (0.787504, (-3.14e-8, 0.000451919, 0.0770704), (1, -0.000920048, 6.51183e-6, 5.62643e-5),
      (0.00187445, 0.00186316, 0.000676952)),
     ((-0.041, -0.041, 0.0), (0.041, 0.043, 0.154))),
    ("jaco_link_1", "jaco_link_base", (0, 0, 0.1535), (0, 0, 1, 0), ((0, 0, -1), (-0.8, 0.8), 0.0),
     (0.613151, (-1.14e-6, 0.0102141, -0.0637045), (0.702792, 0.0778988, -0.0778994, 0.702813),
      (0.00149348, 0.00144012, 0.000401632)),
     ((-0.041, -0.041, -0.158), (0.041, 0.046, 0.0))),
    ("jaco_link_2", "jaco_link_1", (0, 0, -0.1185), (0, 0, 0.707107, 0.707107),
     ((0, 0, 1), (-1.5, 0.7), 0.0),
     (1.85031, (0.206657, -1.55e-7, -0.030675), (1, 0, 0, 0), (0.0402753, 0.0398125, 0.00121953)),
     ((-0.041, -0.041, -0.055), (0.451, 0.041, 0.0))),
    ("jaco_link_3", "jaco_link_2", (0.41, 0, 0), (0, 0.707107, 0.707107, 0),
     ((0, 0, -1), WRIST_RANGE, 0.0),
     (0.70372, (0.0847979, -1.18e-7, -0.020283), (2.33799e-5, 0.694869, 1.96996e-5, 0.719136),
      (0.00386732, 0.00373181, 0.000358773)),
     ((-0.041, -0.041, -0.046), (0.207, 0.041, 0.02))),
    ("jaco_link_4", "jaco_link_3", (0.207, 0, -0.01125), (0, 0.707107, 0, -0.707107),
     ((0, 0, -1), WRIST_RANGE, 0.0), _WRIST_INERTIAL, _WRIST_BOX),
    ("jaco_link_5", "jaco_link_4", (0.0343, 0, -0.06588), (0.887011, 0, -0.461749, 0),
     ((0, 0, -1), WRIST_RANGE, JOINT5_REF), _WRIST_INERTIAL, _WRIST_BOX),
    (HAND_BODY, "jaco_link_5", (0.0343, 0, -0.06588), (0.627211, -0.326506, -0.326506, 0.627211),
     ((0, 0, -1), WRIST_RANGE, 0.0),
     (0.58074, (0.0036132, -6.2241e-5, -0.0583749), (0.669114, -0.237618, -0.23799, 0.66271),
      (0.000817146, 0.000671192, 0.000606807)),
     ((-0.058, -0.047, -0.111), (0.058, 0.046, 0.0))),
)
PEDESTAL_RADIUS = 0.045  # m, capsule under the base from z -0.25 to 0 (base frame)
PEDESTAL_HEIGHT = 0.25  # m


def _vec(values) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _body_xml(row, children: str) -> str:
    name, _, pos, quat, hinge, (mass, ipos, iquat, inertia), (lo, hi) = row
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    lines = [f'<body name="{name}" pos="{_vec(pos)}" quat="{_vec(quat)}">',
             f'<inertial mass="{mass}" pos="{_vec(ipos)}" quat="{_vec(iquat)}" '
             f'diaginertia="{_vec(inertia)}"/>']
    if hinge is not None:
        axis, limits, ref = hinge
        index = JOINT_NAMES[BODIES.index(row) - 1]
        lines.append(f'<joint name="{index}" axis="{_vec(axis)}" range="{_vec(limits)}" ref="{ref}"/>')
    lines.append(f'<geom name="{name}_box" type="box" pos="{_vec((lo + hi) / 2)}" '
                 f'size="{_vec((hi - lo) / 2)}"/>')
    if hinge is None:
        lines.append(f'<geom name="pedestal" type="capsule" size="{PEDESTAL_RADIUS}" '
                     f'fromto="0 0 {-PEDESTAL_HEIGHT} 0 0 0" rgba="0.1 0.1 0.1 1"/>')
    return "\n".join(lines) + "\n" + children + "</body>\n"


def jaco_xml() -> str:
    """The MJCF text of the model (module docstring): options, defaults, chain, motors."""
    chain = ""
    for row in reversed(BODIES):  # innermost body first, each wrapped by its parent
        chain = _body_xml(row, chain)
    motors = "\n".join(f'<motor name="motor_{i + 1}" joint="{j}" gear="{g:g}" ctrlrange="-1 1"/>'
                       for i, (j, g) in enumerate(zip(JOINT_NAMES, GEARS)))
    return f"""<mujoco model="jaco_reach_multistage">
<compiler angle="radian" inertiafromgeom="false"/>
<option timestep="0.01" gravity="0 0 {-GRAVITY}" iterations="10" integrator="Euler"/>
<default>
  <joint type="hinge" limited="true" damping="{DAMPING}" armature="{ARMATURE}"/>
  <geom margin="{GEOM_MARGIN}" contype="1" conaffinity="0" rgba="0.25 0.25 0.3 1"/>
  <motor ctrllimited="true"/>
</default>
<visual><global offwidth="480" offheight="480"/></visual>
<worldbody>
<light pos="0 0 2.5" dir="0 0 -1" diffuse="0.8 0.8 0.8"/>
<geom name="floor" type="plane" size="3 3 0.05" contype="1" conaffinity="1" rgba="0.55 0.6 0.65 1"/>
{chain}<body name="{TARGET_BODY}" mocap="true">
<geom name="target_sphere" type="sphere" size="{TARGET_RADIUS}" contype="0" conaffinity="0"
      rgba="0.9 0.2 0.2 0.6"/>
</body>
</worldbody>
<actuator>
{motors}
</actuator>
</mujoco>
"""


def build_jaco_model(offwidth: int = 480, offheight: int = 480) -> mujoco.MjModel:
    """Compile the Jaco reacher model (see the module docstring).

    Args:
        offwidth: minimum offscreen framebuffer width in pixels.
        offheight: minimum offscreen framebuffer height in pixels.

    Returns:
        compiled model with nq = nv = nu = 6 and one mocap body; ``model.qpos0`` is the start pose
        (zeros, joint 5 at -2.8).
    """
    model = mujoco.MjModel.from_xml_string(jaco_xml())
    model.vis.global_.offwidth = max(model.vis.global_.offwidth, offwidth)
    model.vis.global_.offheight = max(model.vis.global_.offheight, offheight)
    return model


_MODEL: mujoco.MjModel | None = None


def _model() -> mujoco.MjModel:
    global _MODEL
    if _MODEL is None:
        _MODEL = build_jaco_model()
    return _MODEL


def home_qpos() -> np.ndarray:
    """(6,) start configuration in rad: the original's qpos0 (zeros, joint 5 at its ref -2.8)."""
    return _model().qpos0.copy()


def hand_position(model: mujoco.MjModel, qpos: np.ndarray) -> np.ndarray:
    """Hand position (3,) in metres for joint angles ``qpos`` (6,), by forward kinematics."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(model, data)
    return data.body(HAND_BODY).xpos.copy()


def solve_ik(
    model: mujoco.MjModel,
    goal: np.ndarray,
    q_start: np.ndarray | None = None,
    iters: int = 1000,
    tol: float = 1e-4,
) -> tuple[np.ndarray, float]:
    """Joint angles inside the ranges putting the hand at ``goal`` (damped least squares).

    Joints are clipped 0.02 rad inside their ranges at every iteration (so the start pose's joint
    5, at -2.8, is first clipped into its range). If the iteration ends in a local minimum (error
    >= ``tol``) it is restarted once from the clipped qpos0 and the better result is returned.

    Args:
        model: model from :func:`build_jaco_model`.
        goal: (3,) target hand position in metres (world frame).
        q_start: (6,) initial joint angles (default: qpos0).
        iters: maximum number of iterations per start.
        tol: stop when the position error (m) is below this.

    Returns:
        ``(qpos, error)``: (6,) joint angles and the remaining hand-goal distance in metres.
    """
    home = model.qpos0.copy()
    q, err = _dls_ik(model, goal, home if q_start is None else q_start, iters, tol)
    if err >= tol and q_start is not None:
        q_home, err_home = _dls_ik(model, goal, home, iters, tol)
        if err_home < err:
            q, err = q_home, err_home
    return q, err


def _dls_ik(
    model: mujoco.MjModel, goal: np.ndarray, q_start: np.ndarray, iters: int, tol: float
) -> tuple[np.ndarray, float]:
    """One damped-least-squares run of :func:`solve_ik` (damping 1e-3 m^2)."""
    data = mujoco.MjData(model)
    hand = model.body(HAND_BODY).id
    lo = model.jnt_range[:, 0] + 0.02
    hi = model.jnt_range[:, 1] - 0.02
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
