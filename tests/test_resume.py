"""Interruption, snapshots and resume: a run stopped by SIGTERM and resumed writes the same
progress.csv as the uninterrupted run (Time/ columns aside); non-finite losses stop the run."""

import csv
import os
import signal

import pytest
import torch

from experiment_utils import resolve_config
from garage_experiments import build_trainer, resume_experiment, run_experiment
from learning.trainer import NonFiniteLossError, Trainer, TrainingInterrupted

TINY = dict(env="MazeLarge-10-v0", n_epochs=4, batch_size=100, min_buffer_size=20,
            gradient_steps_per_itr=20, buffer_batch_size=16, hidden_sizes=(16,),
            num_evaluation_episodes=10, snapshot_buffer=True, num_threads=1)


def read_rows(log_dir):
    with open(log_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not k.startswith("Time/")} for r in rows]


def signal_at_epoch(monkeypatch, epoch_to_signal, signum=signal.SIGTERM, times=1):
    """Send ``signum`` to this process ``times`` times at the start of the given epoch."""
    original = Trainer._run_epoch

    def run_epoch(self, epoch):
        if epoch == epoch_to_signal:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)


@pytest.mark.parametrize("experiment", ["qmp_dnc", "mtsac", "ctpg_dnc"])
def test_sigterm_then_resume_reproduces_the_uninterrupted_csv(tmp_path, monkeypatch, experiment):
    extra = {"guide_filter_start": 0} if experiment.startswith("ctpg") else {}  # every gate acts
    full, _ = run_experiment(resolve_config(experiment, {**TINY, **extra,
                                                         "log_dir": str(tmp_path / "full")}))
    signal_at_epoch(monkeypatch, 1)
    trainer = build_trainer(resolve_config(experiment, {**TINY, **extra, "log_dir": str(tmp_path / "cut")}))
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.train()
    assert stop.value.exit_code == 143
    cut = trainer.log_dir
    assert torch.load(cut / "params.pt", weights_only=False)["epoch"] == 1  # epoch 1 finished first
    assert [r["Epoch"] for r in read_rows(cut)] == ["0", "1"]
    assert not (cut / "final_evaluation.json").exists()
    monkeypatch.undo()
    resume_experiment(cut)
    expected, got = read_rows(full), read_rows(cut)
    assert [r["Epoch"] for r in got] == ["0", "1", "2", "3"]
    assert got == expected
    assert (cut / "final_evaluation.json").exists()


def test_second_signal_stops_at_once_keeping_the_previous_snapshot(tmp_path, monkeypatch):
    signal_at_epoch(monkeypatch, 2, signal.SIGINT, times=2)
    trainer = build_trainer(resolve_config("dnc_sac", {**TINY, "log_dir": str(tmp_path / "r")}))
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.train()
    assert stop.value.exit_code == 130
    assert torch.load(trainer.log_dir / "params.pt", weights_only=False)["epoch"] == 1
    assert [r["Epoch"] for r in read_rows(trainer.log_dir)] == ["0", "1"]


def test_resume_after_a_later_csv_row_drops_rows_past_the_snapshot(tmp_path):
    """With --snapshot_gap 2 the CSV can run ahead of params.pt; resume rewrites those epochs once."""
    config = resolve_config("dnc_sac", {**TINY, "n_epochs": 3, "snapshot_gap": 2,
                                        "log_dir": str(tmp_path / "r")})
    log_dir, _ = run_experiment(config)
    assert torch.load(log_dir / "params.pt", weights_only=False)["epoch"] == 1
    resume_experiment(log_dir, n_epochs=4)
    assert [r["Epoch"] for r in read_rows(log_dir)] == ["0", "1", "2", "3"]


def test_resume_of_a_finished_run_needs_more_epochs(tmp_path):
    log_dir, _ = run_experiment(resolve_config("dnc_sac", {**TINY, "n_epochs": 1,
                                                           "log_dir": str(tmp_path / "r")}))
    with pytest.raises(ValueError, match="already ran 1 of --n_epochs 1 epochs"):
        resume_experiment(log_dir)
    with pytest.raises(ValueError, match="holds no variant.json"):
        resume_experiment(tmp_path)


@pytest.mark.parametrize("mode, kept", [("last", []), ("all", ["itr_0.pt", "itr_1.pt", "itr_2.pt"]),
                                        ("gap", ["itr_1.pt"])])
def test_snapshot_modes(tmp_path, mode, kept):
    log_dir, _ = run_experiment(resolve_config("dnc_sac", {
        **TINY, "n_epochs": 3, "snapshot_gap": 2, "snapshot_mode": mode, "snapshot_buffer": False,
        "log_dir": str(tmp_path / "r")}))
    assert sorted(p.name for p in log_dir.glob("itr_*.pt")) == kept
    small = torch.load(log_dir / "policy.pt", weights_only=False)
    assert set(small) == {"epoch", "config", "policy", "qf"}
    assert (log_dir / "policy.pt").stat().st_size < (log_dir / "params.pt").stat().st_size


def test_non_finite_loss_stops_the_run_naming_task_and_loss(tmp_path, monkeypatch):
    from learning.algorithms.sac import MultiTaskSAC
    original = MultiTaskSAC.update

    def update(self, batch):
        stats = original(self, batch)
        stats["Qf2Loss"] = stats["Qf2Loss"].clone()
        stats["Qf2Loss"][3] = float("nan")
        return stats

    monkeypatch.setattr(MultiTaskSAC, "update", update)
    trainer = build_trainer(resolve_config("dnc_sac", {**TINY, "log_dir": str(tmp_path / "r")}))
    with pytest.raises(NonFiniteLossError, match=r"non-finite Qf2Loss \(nan\) for task 3 "):
        trainer.train()
    assert (trainer.log_dir / "params_nonfinite.pt").exists()


def test_cli_exits_143_on_sigterm_with_the_message(tmp_path, monkeypatch):
    from click.testing import CliRunner

    import run
    signal_at_epoch(monkeypatch, 0)
    args = ["dnc_sac", "--env", "MazeLarge-10-v0", "--n_epochs", "3", "--batch_size", "100", "--min_buffer_size", "20",
            "--gradient_steps_per_itr", "5", "--buffer_batch_size", "8", "--hidden_sizes", "8",
            "--num_evaluation_episodes", "10", "--log_dir", str(tmp_path / "r")]
    result = CliRunner().invoke(run.cli, run.normalise_argv(args))
    assert result.exit_code == 143, result.output
    assert "SIGTERM: stopped after epoch 0; snapshot of that epoch and logs in" in result.output
    assert torch.load(tmp_path / "r" / "params.pt", weights_only=False)["epoch"] == 0
