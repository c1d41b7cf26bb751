"""`evaluate` on a saved run, and evaluation videos during training (--vis_freq)."""

import re

import pytest
import torch
from click.testing import CliRunner

import tools.video
from experiment_utils import resolve_config
from garage_experiments import run_experiment
from tools.evaluate import evaluate_command, evaluate_run
from tools.snapshots import resume_command

TINY = dict(env="JacoReachMT5-v1", n_epochs=2, batch_size=50, min_buffer_size=10,
            gradient_steps_per_itr=5, buffer_batch_size=8, hidden_sizes=(8,),
            num_evaluation_episodes=5, num_threads=1)


@pytest.fixture(scope="module")
def qmp_run(tmp_path_factory):
    log_dir, final = run_experiment(resolve_config("qmp_dnc", {
        **TINY, "n_epochs": 1, "log_dir": str(tmp_path_factory.mktemp("runs") / "qmp")}))
    return log_dir, final


def test_evaluate_prints_per_task_success_and_creates_no_log_dir(qmp_run, tmp_path, monkeypatch):
    log_dir, _ = qmp_run
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in log_dir.iterdir())
    result = CliRunner().invoke(evaluate_command, [str(log_dir), "--episodes", "1", "--mode", "p"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.output.splitlines() if re.match(r"^\s+\d+\s", line)]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3, 4]
    assert "mode p (snapshot epoch 0, 1 episodes per task)" in result.output
    assert all(0.0 <= float(r[-3]) <= 1.0 for r in rows)  # success, return, StagesCompleted
    assert sorted(p.name for p in log_dir.iterdir()) == before
    assert not (tmp_path / "data").exists()


def test_evaluate_loads_the_saved_weights(qmp_run):
    """The run evaluated once (epoch 0, fresh test envs, mode mop first): evaluating its snapshot
    on fresh test envs repeats that evaluation exactly, Q-switch (critic weights) included."""
    log_dir, final = qmp_run
    res = evaluate_run(log_dir, modes=("mop", "p"))
    assert res["mop"]["return"] == pytest.approx(final["Evaluation/AverageReturn"], rel=1e-6)
    assert res["p"]["return"] == pytest.approx(final["Evaluation/p/AverageReturn"], rel=1e-6)
    # zeroed weights act differently: the loaded weights matter
    state = torch.load(log_dir / "policy.pt", weights_only=False)
    state["policy"] = {k: torch.zeros_like(v) for k, v in state["policy"].items()}
    torch.save(state, log_dir.parent / "zero.pt")
    other = evaluate_run(log_dir, modes=("p",), snapshot=log_dir.parent / "zero.pt")
    assert other["p"]["return"] != pytest.approx(res["p"]["return"], rel=1e-3)


def test_evaluate_and_resume_reject_bad_input(tmp_path):
    result = CliRunner().invoke(evaluate_command, [str(tmp_path)])
    assert result.exit_code == 2 and "holds no variant.json" in result.output
    result = CliRunner().invoke(resume_command, [str(tmp_path)])
    assert result.exit_code == 2 and "holds no variant.json" in result.output


def short_videos(monkeypatch):
    real = tools.video.record_videos
    monkeypatch.setattr(tools.video, "record_videos", lambda *a, **k: real(*a, **{**k, "max_steps": 3}))


def test_vis_freq_renders_videos_of_every_evaluation_mode(tmp_path, monkeypatch):
    short_videos(monkeypatch)
    log_dir, _ = run_experiment(resolve_config("qmp_dnc", {
        **TINY, "n_epochs": 3, "vis_freq": 2, "vis_num": 5, "vis_width": 32, "vis_height": 32,
        "log_dir": str(tmp_path / "r")}))
    names = sorted(p.name for p in (log_dir / "videos").glob("*.mp4"))
    tags = sorted({n.split("_task")[0] for n in names})
    assert tags == ["epoch0", "epoch0_p", "epoch2", "epoch2_p"]
    assert len(names) == 4 * 5  # one per task and tag


def test_evaluate_video_writes_mp4(qmp_run, monkeypatch):
    short_videos(monkeypatch)
    log_dir, _ = qmp_run
    evaluate_run(log_dir, episodes=1, modes=("mop",), video=True)
    assert len(list((log_dir / "videos").glob("evaluate_mop_task*.mp4"))) == 5
