"""How hard is each Multistage Reacher sub-goal for a simple scripted controller? (docs/results.md)

Usage: python scripts/jaco_scripted_reach.py [--episodes 10] [--kp 3] [--kd 0.6]

For tasks 0-3 of ``JacoReachMT5-v1`` it runs a joint-space PD controller towards the inverse-kinematics
solution of the current sub-goal (``environments.jaco_model.solve_ik``, re-solved when the sub-goal
changes) plus gravity and Coriolis compensation (MuJoCo's ``qfrc_bias``), divided by the motor gears
and clipped to the action box [-1, 1]. It prints, per task, the first sub-goal, its distance from the
start hand position, how many episodes reach it and the mean step at which they do, and the mean
``stages_completed`` at the end of the 200-step episode. It is a probe of the environment, not a
policy of the methods; the gains are the only settings.
"""

from __future__ import annotations

import argparse

import mujoco
import numpy as np

from environments.jaco import SUBGOALS, TASK_SEQUENCES, JacoReachMultistageEnv
from environments.jaco_model import GEARS, solve_ik


def run_episode(task: int, seed: int, kp: float, kd: float) -> tuple[int | None, int]:
    """(step of the first success or None, stages completed) of one scripted episode."""
    env = JacoReachMultistageEnv(task)
    env.reset(seed=seed)
    gears = np.asarray(GEARS)
    stage, target, first, info = -1, None, None, {"stages_completed": 0}
    for t in range(200):
        if env.stage != stage:
            stage = env.stage
            target, _ = solve_ik(env.model, env.goal, q_start=env.data.qpos.copy())
        mujoco.mj_forward(env.model, env.data)
        torque = env.data.qfrc_bias + kp * (target - env.data.qpos) - kd * env.data.qvel
        _, _, terminated, _, info = env.step(np.clip(torque / gears, -1.0, 1.0))
        if info["success"] and first is None:
            first = t + 1
        if terminated:
            break
    env.close()
    return first, int(info["stages_completed"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--kp", type=float, default=3.0, help="N m per rad")
    parser.add_argument("--kd", type=float, default=0.6, help="N m s per rad")
    args = parser.parse_args()
    probe = JacoReachMultistageEnv(0)
    probe.reset(seed=0)
    start_hand = probe.hand_pos
    probe.close()
    print("| task | sequence | first sub-goal (m) | distance from start hand (m) | episodes reaching it "
          "| mean step reached | mean stages completed (0-3) |")
    print("|---|---|---|---|---|---|---|")
    for task in range(4):
        results = [run_episode(task, seed, args.kp, args.kd) for seed in range(args.episodes)]
        steps = [s for s, _ in results if s is not None]
        g = TASK_SEQUENCES[task][0]
        mean_step = f"{np.mean(steps):.0f}" if steps else "-"
        print(f"| {task} | {' -> '.join(TASK_SEQUENCES[task])} | {g} {SUBGOALS[g]} "
              f"| {np.linalg.norm(np.asarray(SUBGOALS[g]) - start_hand):.2f} | {len(steps)}/{len(results)} "
              f"| {mean_step} | {np.mean([n for _, n in results]):.1f} |")


if __name__ == "__main__":
    main()
