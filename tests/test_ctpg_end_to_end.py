"""CTPG experiments and flags run end to end for a tiny budget, log the guide's columns and wire
each ablation flag into the guide (the flags' effects on behaviour: tests/test_ctpg.py)."""

import csv
import math

import pytest
from click.testing import CliRunner

import run
from experiment_utils import resolve_config
from garage_experiments import build_trainer
from learning.policies.behaviour import OwnPolicy
from learning.policies.ctpg_guide import CTPGBehaviour

TINY = ["--env", "MazeLarge-10-v0", "--n_epochs", "2", "--batch_size", "200", "--min_buffer_size", "20",
        "--gradient_steps_per_itr", "20", "--buffer_batch_size", "16", "--hidden_sizes", "16",
        "--num_evaluation_episodes", "10", "--guide_filter_start", "0", "--num_threads", "1"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


CASES = [
    ("ctpg_dnc", []),
    ("ctpg_sac", []),
    ("ctpg_sac", ["--use_pc_grad", "True"]),
    ("ctpg_sac", ["--policy_architecture", "shared_onehot", "--Q_architecture", "shared_onehot",
                  "--use_pc_grad", "True"]),  # CTPG's "PCGrad w/ CTPG" cell
    ("ctpg_dnc", ["--no_filter_gate", "True", "--no_block_gate", "True", "--no_hindsight", "True"]),
    ("ctpg_dnc", ["--guide_step", "3", "--block_gate", "success", "--guide_mask_logits", "False"]),
]


@pytest.mark.parametrize("experiment, extra", CASES, ids=[f"{e}:{' '.join(x)}" for e, x in CASES])
def test_ctpg_runs_and_logs_the_guide(tmp_path, experiment, extra):
    log_dir = tmp_path / "run"
    result = CliRunner().invoke(run.cli, run.normalise_argv([experiment, *TINY, *extra,
                                                             "--log_dir", str(log_dir)]),
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = read_csv(log_dir / "progress.csv")
    assert len(rows) == 2
    last = rows[-1]
    for i in range(10):
        probs = [float(last[f"Train/LocalPolicy{i}/Guide{j}Prob"]) for j in range(10)]
        assert math.isclose(sum(probs), 1.0, abs_tol=1e-6)
        assert 0.0 <= float(last[f"Train/LocalPolicy{i}/GuidedFraction"]) <= 1.0
    assert float(last["Train/GuideSegments"]) > 0
    for key in ("Train/GuideQf1Loss", "Train/GuidePolicyLoss", "Train/GuideAlpha"):
        assert math.isfinite(float(last[key])), key
    # the guide is for collection only: evaluation has no p/ mode, the control policies act
    assert "Evaluation/SuccessRate" in last and "Evaluation/p/SuccessRate" not in last


def test_qmp_with_a_one_hot_shared_network(tmp_path):
    """CTPG's "MTSAC w/ QMP" cell: one shared network conditioned on the task axis."""
    log_dir = tmp_path / "run"
    result = CliRunner().invoke(run.cli, run.normalise_argv([
        "qmp_sac", *TINY[:-4], "--policy_architecture", "shared_onehot", "--Q_architecture",
        "shared_onehot", "--log_dir", str(log_dir)]))
    assert result.exit_code == 0, result.output
    last = read_csv(log_dir / "progress.csv")[-1]
    other = [1.0 - float(last[f"Train/LocalPolicy{i}/MixtureProbs"]) for i in range(10)]
    assert max(other) > 0  # some task collected with another task's policy


def test_guides_other_tasks_policies_when_not_blocked(tmp_path):
    """Without the block gate, a fresh guide samples other tasks' policies most of the time."""
    log_dir = tmp_path / "run"
    result = CliRunner().invoke(run.cli, run.normalise_argv(["ctpg_dnc", *TINY, "--no_block_gate",
                                                             "True", "--log_dir", str(log_dir)]))
    assert result.exit_code == 0, result.output
    last = read_csv(log_dir / "progress.csv")[-1]
    own = [float(last[f"Train/LocalPolicy{i}/Guide{i}Prob"]) for i in range(10)]
    assert sum(own) / 10 < 0.5


@pytest.mark.parametrize("flags, check", [
    ({}, lambda t: t.behaviour.filter_gate and t.behaviour.block_gate and t.guide_training.hindsight
     and t.behaviour.guide_step == 10 and t.guide_training.buffer.K == 10
     and t.behaviour.block_mode == "alpha" and t.behaviour.mask_logits),
    ({"no_filter_gate": True}, lambda t: not t.behaviour.filter_gate),
    ({"no_block_gate": True}, lambda t: not t.behaviour.block_gate),
    ({"no_hindsight": True}, lambda t: not t.guide_training.hindsight),
    ({"guide_step": 4}, lambda t: t.behaviour.guide_step == 4 and t.guide_training.buffer.K == 4),
    ({"block_gate": "success"}, lambda t: t.behaviour.block_mode == "success"),
    ({"guide_mask_logits": False}, lambda t: not t.behaviour.mask_logits),
    ({"guide_batch_size": 7}, lambda t: t.guide_training.batch_size == 7),
])
def test_flags_reach_the_guide(tmp_path, flags, check):
    config = resolve_config("ctpg_dnc", {"n_epochs": 1, "hidden_sizes": (8,), "log_dir": str(tmp_path / "r"),
                                         **flags})
    trainer = build_trainer(config)
    try:
        assert isinstance(trainer.behaviour, CTPGBehaviour)
        assert set(trainer.eval_modes) == {""} and isinstance(trainer.eval_modes[""], OwnPolicy)
        assert check(trainer)
    finally:
        trainer.close()


@pytest.mark.parametrize("args, message", [
    (["ctpg_dnc", "--block_gate", "never"], "--block_gate='never'; allowed: alpha, success"),
    (["ctpg_dnc", "--guide_step", "0"], "--guide_step must be a positive integer"),
    (["ctpg_sac", "--policy_architecture", "shared"], "allowed: multihead, shared_onehot"),
    (["ctpg_dnc", "--env", "Pendulum-v1"], "ctpg_dnc mixes the policies of several tasks"),
    (["dnc_sac", "--guide_step", "3"], "accepted by: ctpg_dnc, ctpg_sac"),
])
def test_bad_ctpg_input(tmp_path, args, message):
    args = [args[0], "--env", "MazeLarge-10-v0", *args[1:]]  # a later --env wins
    result = CliRunner().invoke(run.cli, run.normalise_argv([*args, "--log_dir", str(tmp_path / "x")]))
    assert result.exit_code == 2, result.output
    assert message in result.output
