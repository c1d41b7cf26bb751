"""Evaluation videos (tools/video.py, reference §1.2 --vis_*): files, frames, overlay, EGL exit."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import gymnasium as gym
import imageio.v2 as imageio
import numpy as np
import pytest
import torch

import tools.video as video
from environments.base import TaskSuite
from learning.policies.mixture_policies_wrapper import MixtureOfPolicies
from learning.policies.tanh_gaussian import TanhGaussianPolicy

REPO = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------- pure helpers


def test_overlay_lines_show_task_step_reward_success_policy_and_extras():
    lines = video.overlay_lines(task=2, task_name="push", step=7, reward=-0.5, success=True,
                                policy=3, extras={"stages_completed": 2.0})
    assert lines == ["task 2: push", "step 7", "reward -0.500", "success yes", "policy 3",
                     "stages_completed 2"]
    own = video.overlay_lines(task=1, task_name="task1:(1, 3)->(5, 8)", step=1, reward=0.25,
                              success=False, policy=1)
    assert own == ["task1:(1, 3)->(5, 8)", "step 1", "reward 0.250", "success no",
                   "policy 1 (own)"]


def test_annotate_draws_the_lines_on_a_copy():
    frame = np.full((64, 80, 3), 128, np.uint8)
    a = video.annotate(frame, ["step 1", "policy 1"])
    b = video.annotate(frame, ["step 1", "policy 2"])
    assert a.shape == frame.shape and a.dtype == np.uint8
    assert (frame == 128).all()  # input untouched
    changed = (a != frame).any(-1)
    assert changed.sum() > 100 and changed[:8, :8].all()  # the dark box at the top left
    assert not changed[-8:, -8:].any()  # the rest of the scene is left alone
    assert (a != b).any()  # the text itself is drawn, not just a box


def test_file_names_and_split_across_tasks():
    assert video.video_filename("epoch10_p", 0, "task0:(1, 3)->(5, 8)", 1) == \
        "epoch10_p_task0_task0-1-3-5-8_ep1.mp4"
    assert video.video_filename("e0", 4, "reach_g0_g1", 0) == "e0_task4_reach_g0_g1_ep0.mp4"
    assert video.videos_per_task(10, 10) == 1
    assert video.videos_per_task(10, 3) == 3
    assert video.videos_per_task(3, 10) == 1  # at least one per task, as the original


# ---------------------------------------------------------------- toy suite, no GL

TIME_LIMIT = 3
NUM_TASKS = 3
RAW_SIZE = (20, 30)  # what the toy envs render; videos are asked for another size


class PaintedEnv(gym.Env):
    """Obs [steps, task]; task 0 terminates (and succeeds) at step 2, the others run to the
    time limit; task 2 succeeds at step 2 only. Reward = 10 * task + step. The frame is grey
    level 40 * steps."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task, render_mode=None):
        self.task, self.steps, self.render_mode = task, 0, render_mode
        self.actions, self.closed = [], False

    def _obs(self):
        return np.array([self.steps, self.task], np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return self._obs(), {}

    def step(self, action):
        self.steps += 1
        self.actions.append(float(action[0]))
        terminated = self.task == 0 and self.steps == 2
        return self._obs(), 10.0 * self.task + self.steps, terminated, False, {
            "success": self.task != 1 and self.steps == 2}

    def render(self):
        return np.full((*RAW_SIZE, 3), 40 * self.steps, np.uint8)

    def close(self):
        self.closed = True


def painted_suite(made):
    def make(task, *, test, seed, render_mode):
        assert test and render_mode == "rgb_array"
        made.append(PaintedEnv(task, render_mode))
        return made[-1]

    return TaskSuite(env_id="Painted-v0", task_names=("term", "trunc", "trunc 2"),
                     make_task_env=make, max_episode_steps=TIME_LIMIT, min_reward=0.0)


def constant_policies(num_tasks, obs_dim, pre_tanh_means):
    """Policy j always acts tanh(pre_tanh_means[j]) (deterministic mean)."""
    policy = TanhGaussianPolicy("separate", num_tasks, obs_dim, 1, (4,))
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.net.output.bias[:, 0, 0] = torch.as_tensor(pre_tanh_means, dtype=torch.float32)
    return policy


def shifted_mixture(num_tasks):
    """Task i always acts with policy (i + 1) % T."""
    return torch.roll(torch.eye(num_tasks), 1, dims=1)


class OverlaySpy:
    def __init__(self, monkeypatch):
        self.calls = []
        real = video.overlay_lines

        def spy(**kwargs):
            self.calls.append(kwargs)
            return real(**kwargs)

        monkeypatch.setattr(video, "overlay_lines", spy)

    def of_task(self, task):
        return [c for c in self.calls if c["task"] == task]


def read_frames(path):
    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return [np.asarray(f) for f in reader]
    finally:
        reader.close()


def test_toy_episodes_written_frame_per_step_with_the_chosen_policy(tmp_path, monkeypatch):
    made, spy = [], OverlaySpy(monkeypatch)
    suite = painted_suite(made)
    indices = suite.network_obs_indices(2 + NUM_TASKS, include_task_id=False)
    means = [0.1, 0.2, 0.3]
    behaviour = MixtureOfPolicies(constant_policies(NUM_TASKS, len(indices), means),
                                  shifted_mixture(NUM_TASKS))
    paths = video.record_videos(suite, behaviour, indices, "cpu", tmp_path / "videos",
                                tag="epoch0", num_videos=6, width=64, height=48, fps=10)
    names = [f"epoch0_task{t}_{n}_ep{e}.mp4" for e in range(2)
             for t, n in enumerate(("term", "trunc", "trunc-2"))]
    assert [p.name for p in paths] == names
    assert sorted(p.name for p in (tmp_path / "videos").iterdir()) == sorted(names)
    assert len(made) == NUM_TASKS and all(env.closed for env in made)

    lengths = {0: 2, 1: TIME_LIMIT, 2: TIME_LIMIT}  # task 0 terminates, the others truncate
    for path in paths:
        task = int(path.name.split("_task")[1][0])
        frames = read_frames(path)
        assert len(frames) == lengths[task]
        assert all(f.shape == (48, 64, 3) for f in frames)  # resized from RAW_SIZE
        # frame k shows the state after step k+1 (grey 40 * (k + 1)), below the overlay box
        grey = [int(np.median(f[-6:, -6:])) for f in frames]
        assert grey == pytest.approx([40 * (k + 1) for k in range(len(frames))], abs=6)

    for task in range(NUM_TASKS):
        calls = spy.of_task(task)
        chosen = (task + 1) % NUM_TASKS
        assert [c["policy"] for c in calls] == [chosen] * 2 * lengths[task]
        assert [c["step"] for c in calls] == list(range(1, lengths[task] + 1)) * 2
        assert [c["reward"] for c in calls] == [10.0 * task + c["step"] for c in calls]
        assert made[task].actions == pytest.approx([np.tanh(means[chosen])] * len(calls))
    assert [c["success"] for c in spy.of_task(0)] == [False, True] * 2
    assert not any(c["success"] for c in spy.of_task(1))
    assert [c["success"] for c in spy.of_task(2)] == [False, True, True] * 2  # success so far


def test_toy_max_steps_and_nothing_requested(tmp_path):
    made = []
    suite = painted_suite(made)
    indices = suite.network_obs_indices(2 + NUM_TASKS, include_task_id=True)
    behaviour = MixtureOfPolicies(constant_policies(NUM_TASKS, len(indices), [0, 0, 0]),
                                  shifted_mixture(NUM_TASKS))
    assert video.record_videos(suite, behaviour, indices, "cpu", tmp_path, tag="x",
                               num_videos=0) == []
    paths = video.record_videos(suite, behaviour, indices, "cpu", tmp_path, tag="x",
                                num_videos=1, width=32, height=32, max_steps=1, overlay=False)
    assert len(paths) == NUM_TASKS
    assert [len(read_frames(p)) for p in paths] == [1, 1, 1]


# ---------------------------------------------------------------- MuJoCo rendering (EGL)


def test_jaco_videos_carry_the_overlay_and_the_real_choice(tmp_path, monkeypatch):
    import environments

    suite = environments.get_suite("JacoReachMT5-v1")
    t = suite.num_tasks
    indices = suite.network_obs_indices(suite.raw_obs_dim(), include_task_id=True)
    probe = suite.make_env(0)
    act_dim = probe.action_space.shape[0]
    probe.close()
    policy = TanhGaussianPolicy("separate", t, len(indices), act_dim, (8,))
    behaviour = MixtureOfPolicies(policy, shifted_mixture(t))
    spy = OverlaySpy(monkeypatch)
    kwargs = dict(num_videos=1, width=96, height=96, max_steps=2, seed=3)
    plain = video.record_videos(suite, behaviour, indices, "cpu", tmp_path, tag="plain",
                                overlay=False, **kwargs)
    assert spy.calls == []
    shown = video.record_videos(suite, behaviour, indices, "cpu", tmp_path, tag="ep0", **kwargs)
    assert [p.name for p in shown] == [f"ep0_task{k}_{n}_ep0.mp4"
                                       for k, n in enumerate(suite.task_names)]
    assert [c["policy"] for c in spy.calls] == [(k + 1) % t for _ in range(2) for k in range(t)]
    assert all("stages_completed" in c["extras"] for c in spy.calls)
    for a, b in zip(plain, shown):
        fa, fb = read_frames(a), read_frames(b)
        assert len(fa) == len(fb) == 2 and fa[0].shape == (96, 96, 3)
        for x, y in zip(fa, fb):
            diff = np.abs(x.astype(int) - y.astype(int))
            assert diff[:10, :10].mean() > 20  # overlay box + text only in the annotated file
            assert diff[-24:, -24:].mean() < 8  # same episode, same scene elsewhere


def test_mujoco_env_renders_at_the_requested_size_natively():
    import environments

    env = environments.get_suite("MazeLarge-10-v0").make_env(0, test=True,
                                                             render_mode="rgb_array")
    try:
        video._set_render_size(env, 72, 40)  # the maze is built for 480 x 480
        env.reset(seed=0)
        assert env.render().shape == (40, 72, 3)
    finally:
        env.close()


def test_egl_contexts_exit_without_traceback(tmp_path):
    script = textwrap.dedent(f"""
        from pathlib import Path
        import environments
        from learning.policies.behaviour import OwnPolicy
        from learning.policies.tanh_gaussian import TanhGaussianPolicy
        from tools.video import record_videos

        suite = environments.get_suite("HalfCheetah-v5")  # one task, one GL context
        idx = suite.network_obs_indices(suite.raw_obs_dim(), include_task_id=True)
        policy = OwnPolicy(TanhGaussianPolicy("separate", 1, len(idx), 6, (4,)))
        paths = record_videos(suite, policy, idx, "cpu", Path({str(tmp_path)!r}), tag="exit",
                              num_videos=1, width=32, height=32, max_steps=1)
        print(len(paths))
    """)
    env = dict(os.environ, MUJOCO_GL="egl", PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "1"
    assert "Traceback" not in out.stderr and "Exception ignored" not in out.stderr, out.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["exit_task0_HalfCheetah-v5_ep0.mp4"]
