"""Evaluation videos: deterministic episodes rendered headless to mp4 (reference §1.2, §3.12).

:func:`record_videos` is what training (``--vis_freq``/``--vis_num``) and
``run.py evaluate --video`` call. It builds one ``rgb_array`` render env per task, steps all
T of them together as one (T, 1, obs_dim) batch through the behaviour policy (so a Q-switch
sees every task's state and its choices are the real ones), and streams each task's frames
into its own mp4 via imageio's ffmpeg plugin. Every frame carries a text overlay: task,
step, the step's reward, success so far, the acting policy and the suite's extra info keys
(e.g. ``stages_completed``, ``x_velocity``), like the original's visualiser.

Headless rendering uses MuJoCo's EGL backend (``MUJOCO_GL=egl``, set by ``environments``).
Every render env is closed before :func:`record_videos` returns, so no GL context is left
for the garbage collector to free after ``mujoco.egl`` has terminated its display at
interpreter exit (that ordering prints "Exception ignored ... EGLError" tracebacks).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

import gymnasium as gym
import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from environments.base import TaskSuite
from learning.policies.behaviour import SwitchState
from learning.sampler import single_thread


def videos_per_task(num_videos: int, num_tasks: int) -> int:
    """Episodes recorded per task: ``max(num_videos // T, 1)`` as in the original (§3.13)."""
    return max(num_videos // num_tasks, 1)


def video_filename(tag: str, task: int, task_name: str, episode: int) -> str:
    """``<tag>_task<k>_<taskname>_ep<n>.mp4`` with the name reduced to file-safe characters."""
    safe = re.sub(r"[^A-Za-z0-9._]+", "-", task_name).strip("-.") or "task"
    return f"{tag}_task{task}_{safe}_ep{episode}.mp4"


def overlay_lines(
    *,
    task: int,
    task_name: str,
    step: int,
    reward: float,
    success: bool,
    policy: int,
    extras: dict[str, float] | None = None,
) -> list[str]:
    """The text written on one frame.

    Args:
        task: index of the task being played.
        task_name: its name.
        step: 1-based index of the env step that produced the frame.
        reward: reward of that step.
        success: whether any step of the episode so far reported success.
        policy: index of the policy whose action produced the frame (behaviour's choice).
        extras: further per-step values (the suite's ``episode_info_keys``) to show.
    """
    own = " (own)" if policy == task else ""
    lines = [
        task_name if task_name.startswith(f"task{task}") else f"task {task}: {task_name}",
        f"step {step}",
        f"reward {reward:.3f}",
        f"success {'yes' if success else 'no'}",
        f"policy {policy}{own}",
    ]
    for key, value in (extras or {}).items():
        lines.append(f"{key} {value:.3g}")
    return lines


def _font(height: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=max(8, height // 30))


def annotate(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Return a copy of ``frame`` (H, W, 3) uint8 with ``lines`` written at the top left on a
    dark box, so the text is legible whatever the scene behind it."""
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    draw = ImageDraw.Draw(image)
    font = _font(image.height)
    text = "\n".join(lines)
    margin = max(2, image.height // 100)
    left, top, right, bottom = draw.multiline_textbbox((margin, margin), text, font=font,
                                                       spacing=1)
    draw.rectangle((0, 0, right + margin, bottom + margin), fill=(0, 0, 0))
    draw.multiline_text((margin, margin), text, fill=(255, 255, 255), font=font, spacing=1)
    return np.asarray(image)


def _set_render_size(env: gym.Env, width: int, height: int) -> None:
    """Make a MuJoCo env render at ``width`` x ``height`` natively, if it has not rendered yet.

    The suites fix their size at construction (``TaskSuite.make_env`` takes none); a gymnasium
    ``MujocoRenderer`` creates its GL context lazily from its ``width``/``height`` and the
    model's offscreen buffer size, so both are set before the first render. Envs without a
    ``MujocoRenderer`` keep their size and :func:`_render` resizes their frames.
    """
    base = env.unwrapped
    renderer = getattr(base, "mujoco_renderer", None)
    model = getattr(base, "model", None)
    if renderer is None or model is None or getattr(renderer, "viewer", None) is not None:
        return
    model.vis.global_.offwidth = max(int(model.vis.global_.offwidth), width)
    model.vis.global_.offheight = max(int(model.vis.global_.offheight), height)
    renderer.width, renderer.height = width, height
    if hasattr(base, "width") and hasattr(base, "height"):
        base.width, base.height = width, height


def _render(env: gym.Env, width: int, height: int) -> np.ndarray:
    frame = np.asarray(env.render())
    if frame.ndim != 3 or frame.shape[2] < 3:
        raise RuntimeError(f"render() gave an array of shape {frame.shape}, expected (H, W, 3)")
    frame = frame[..., :3]
    if frame.shape[:2] != (height, width):
        frame = np.asarray(Image.fromarray(frame.astype(np.uint8)).resize(
            (width, height), Image.Resampling.BILINEAR))
    return np.ascontiguousarray(frame, dtype=np.uint8)


def _open_writer(path: Path, fps: int):
    import imageio.v2 as imageio

    # H.264 / yuv420p needs even sizes; macro_block_size=2 keeps even sizes as they are.
    return imageio.get_writer(str(path), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                              pixelformat="yuv420p", macro_block_size=2)


def record_videos(
    suite: TaskSuite,
    behaviour,
    obs_indices: np.ndarray | torch.Tensor,
    device: torch.device | str,
    out_dir: Path,
    *,
    tag: str,
    num_videos: int,
    width: int = 500,
    height: int = 500,
    fps: int = 40,
    seed: int = 0,
    max_steps: int | None = None,
    overlay: bool = True,
) -> list[Path]:
    """Render deterministic evaluation episodes of every task to mp4 files.

    Args:
        suite: the task suite (its test envs are used).
        behaviour: behaviour policy with ``act(obs (T, E, obs_dim), SwitchState, deterministic)
            -> (actions (T, E, A), chosen policy (T, E))`` (OwnPolicy, QSwitchMixturePolicy, ...).
        obs_indices: raw-observation indices the networks see (``suite.network_obs_indices``).
        device: device of the behaviour's networks.
        out_dir: folder for the videos (created if missing).
        tag: file-name prefix, e.g. ``"epoch10"`` or ``"epoch10_p"``.
        num_videos: videos per call (``--vis_num``), split across tasks,
            ``max(num_videos // T, 1)`` episodes per task; 0 or less records nothing.
        width, height: frame size in pixels (``--vis_width``/``--vis_height``).
        fps: frames per second of the files (``--vis_fps``).
        seed: episode n of task t resets with seed ``seed + n * T + t``.
        max_steps: record at most this many steps per episode (None: until the episode ends).
        overlay: write the text overlay on the frames.

    Returns:
        The written paths, episode-major then task order; one frame per env step.
    """
    if num_videos <= 0:
        return []
    if width <= 0 or height <= 0:
        raise ValueError(f"video size must be positive, got {width}x{height}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = torch.device(device)
    index = torch.as_tensor(np.asarray(obs_indices), dtype=torch.long, device=device)
    envs: list[gym.Env] = []
    paths: list[Path] = []
    try:
        for task in range(suite.num_tasks):
            envs.append(suite.make_env(task, test=True, seed=seed, render_mode="rgb_array"))
            _set_render_size(envs[-1], width, height)
        with single_thread():
            for episode in range(videos_per_task(num_videos, suite.num_tasks)):
                paths += _record_episode(suite, envs, behaviour, index, device, out_dir, tag,
                                         episode, width, height, fps, seed, max_steps, overlay)
    finally:
        for env in envs:  # frees each EGL context now, not at interpreter exit
            env.close()
    return paths


def _record_episode(suite, envs, behaviour, index, device, out_dir, tag, episode, width,
                    height, fps, seed, max_steps, overlay) -> list[Path]:
    """One episode of every task, stepped together; returns the T written paths."""
    t_count = suite.num_tasks
    obs = [env.reset(seed=seed + episode * t_count + t)[0] for t, env in enumerate(envs)]
    paths = [out_dir / video_filename(tag, t, suite.task_names[t], episode)
             for t in range(t_count)]
    state = SwitchState.initial(t_count, 1, device)
    active = [True] * t_count
    steps = [0] * t_count
    success = [False] * t_count
    writers = []
    try:
        for path in paths:
            writers.append(_open_writer(path, fps))
        while any(active):
            raw = torch.as_tensor(np.stack(obs).astype(np.float32), device=device)
            actions, chosen = behaviour.act(
                raw.reshape(t_count, 1, -1).index_select(-1, index), state, True)
            actions, chosen = actions.cpu().numpy(), chosen.cpu().numpy()
            for t in range(t_count):
                if not active[t]:
                    continue  # finished tasks keep their last obs in the batch; nothing recorded
                obs[t], reward, terminated, truncated, info = envs[t].step(actions[t, 0])
                steps[t] += 1
                success[t] |= bool(info.get("success", False))
                frame = _render(envs[t], width, height)
                if overlay:
                    extras = {k: float(info[k]) for k in suite.episode_info_keys if k in info}
                    frame = annotate(frame, overlay_lines(
                        task=t, task_name=suite.task_names[t], step=steps[t],
                        reward=float(reward), success=success[t], policy=int(chosen[t, 0]),
                        extras=extras))
                writers[t].append_data(frame)
                if terminated or truncated or (max_steps is not None and steps[t] >= max_steps):
                    active[t] = False
    finally:
        for writer in writers:
            writer.close()
    return paths
