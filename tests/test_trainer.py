"""Schedule arithmetic, replay storage, interruption handling and snapshot contents."""

import csv

import pytest
import torch

from experiment_utils import resolve_config
from garage_experiments import build_trainer
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch
from learning.trainer import Schedule


def test_dnc_schedule_matches_reference_split():
    # Maze preset: 10 tasks, batch 6000, warm-up 3000 per task, G = 1000 split over tasks.
    s = Schedule("dnc", 10, 1, 6000, 3000, 1000, 256)
    assert s.steps_per_env(0) == 3000 and s.steps_per_env(2999) == 3000
    assert s.steps_per_env(3000) == 600
    assert s.gradient_steps() == 100 and s.minibatch_per_task() == 256
    assert not s.warm(2999) and s.warm(3000)
    assert Schedule("dnc", 10, 4, 6000, 3000, 1000, 256).steps_per_env(3000) == 150


def test_sac_schedule_counts_transitions_in_total():
    s = Schedule("sac", 10, 1, 5000, 5000, 500, 2560)
    assert not s.warm(499) and s.warm(500)  # 500 per task = 5000 in total
    assert s.steps_per_env(0) == 500 and s.steps_per_env(500) == 500
    assert s.gradient_steps() == 500 and s.minibatch_per_task() == 256


def transitions(t, n, start):
    ramp = torch.arange(start, start + n, dtype=torch.float32)
    obs = ramp[None, :, None].expand(t, n, 3) + torch.arange(t)[:, None, None] * 1000
    return TransitionBatch(obs, torch.zeros(t, n, 2), ramp.expand(t, n), obs + 1, torch.zeros(t, n))


def test_replay_buffer_grows_wraps_and_keeps_tasks_apart():
    buf = TaskReplayBuffer(2, capacity=5000, obs_dim=3, act_dim=2)
    buf.add(transitions(2, 3000, 0))
    assert len(buf) == 3000
    buf.add(transitions(2, 3000, 3000))  # wraps: keeps the newest 5000
    assert len(buf) == 5000
    sample = buf.sample(4000)
    assert sample.obs.shape == (2, 4000, 3) and sample.reward.shape == (2, 4000)
    assert sample.reward.min() >= 1000  # the oldest 1000 were overwritten
    # task 1's rows only come from task 1 (offset 1000 in the observation)
    torch.testing.assert_close(sample.obs[1, :, 0] - sample.reward[1], torch.full((4000,), 1000.0))
    torch.testing.assert_close(sample.next_obs, sample.obs + 1)


def test_interrupted_run_keeps_logs_and_snapshot(tmp_path, monkeypatch):
    config = resolve_config("dnc_sac", dict(
        n_epochs=5, batch_size=100, min_buffer_size=10, gradient_steps_per_itr=10,
        buffer_batch_size=8, hidden_sizes=(8,), num_evaluation_episodes=10, log_dir=str(tmp_path / "r")))
    trainer = build_trainer(config)
    original = trainer._run_epoch

    def interrupt_at_epoch_2(epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        original(epoch)

    monkeypatch.setattr(trainer, "_run_epoch", interrupt_at_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    with open(tmp_path / "r" / "progress.csv") as f:
        assert [r["Epoch"] for r in csv.DictReader(f)] == ["0", "1"]
    snapshot = torch.load(tmp_path / "r" / "params.pt", weights_only=False)
    # the snapshot is the last finished epoch's (1), not a half-run epoch's
    assert snapshot["epoch"] == 1 and snapshot["total_env_steps"] == 100 + 100
    state = trainer.algorithm.state_dict()
    for key, value in snapshot["algorithm"].items():
        torch.testing.assert_close(value, state[key])
    assert set(snapshot["optimizers"]) == {"policy_optimizer", "qf_optimizer", "alpha_optimizer"}
