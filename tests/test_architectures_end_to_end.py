"""Every parameter-sharing architecture runs with mtsac, qmp_sac and ctpg_sac for a tiny budget
(per-network behaviour: tests/test_networks*.py), and its options reach the networks."""

import math

import pytest
import torch
from click.testing import CliRunner

import run
from experiment_utils import resolve_config
from garage_experiments import architecture_options, build_trainer

ARCHS = ["ptsl", "care", "care_ptsl", "soft_modular", "paco", "moore"]
TINY = ["--env", "MazeLarge-10-v0", "--n_epochs", "1", "--batch_size", "100", "--min_buffer_size", "20",
        "--gradient_steps_per_itr", "4", "--buffer_batch_size", "20", "--hidden_sizes", "16", "16",
        "--num_evaluation_episodes", "10", "--num_threads", "1"]


@pytest.mark.parametrize("experiment", ["mtsac", "qmp_sac", "ctpg_sac"])
@pytest.mark.parametrize("arch", ARCHS)
def test_architecture_runs(tmp_path, arch, experiment):
    log_dir = tmp_path / "r"
    args = [experiment, *TINY, "--policy_architecture", arch, "--Q_architecture", arch,
            "--log_dir", str(log_dir)]
    result = CliRunner().invoke(run.cli, run.normalise_argv(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "parameters: policy" in result.output
    import csv
    with open(log_dir / "progress.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert math.isfinite(float(last["Train/Qf1Loss"])) and math.isfinite(float(last["Evaluation/AverageReturn"]))


def test_mtrl_soft_modularization_runs_in_mtrl_arrangement(tmp_path):
    log_dir = tmp_path / "sm"
    result = CliRunner().invoke(run.cli, run.normalise_argv([
        "mtsac", *TINY, "--policy_architecture", "soft_modular", "--Q_architecture", "soft_modular",
        "--sm_variant", "mtrl", "--log_dir", str(log_dir)]), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    import csv
    with open(log_dir / "progress.csv") as f:
        last = list(csv.DictReader(f))[-1]
    assert math.isfinite(float(last["Train/Qf1Loss"])) and math.isfinite(float(last["Train/PolicyLoss"]))


@pytest.mark.parametrize("arch, flags, attribute, expected", [
    ("ptsl", {"pal_dim": 7}, "pal_dim", 7),
    ("ptsl", {"residual_mode": "sum"}, "residual_mode", "sum"),
    ("paco", {"num_param_sets": 3}, "composition", (10, 3)),
    ("moore", {"num_experts": 3}, "task_weights", (10, 3)),
])
def test_architecture_options_reach_the_networks(tmp_path, arch, flags, attribute, expected):
    config = resolve_config("mtsac", {"policy_architecture": arch, "Q_architecture": arch,
                                      "hidden_sizes": (16, 16), "log_dir": str(tmp_path / "r"), **flags})
    assert architecture_options(config, arch)
    trainer = build_trainer(config)
    try:
        for net in (trainer.algorithm.policy.net, trainer.algorithm.qf.q1):
            value = getattr(net, attribute)
            assert (tuple(value.shape) if isinstance(value, torch.Tensor) else value) == expected
    finally:
        trainer.close()


def test_ptsl_shared_projection_needs_equal_widths(tmp_path):
    result = CliRunner().invoke(run.cli, run.normalise_argv([
        "mtsac", "--env", "MazeLarge-10-v0", "--policy_architecture", "ptsl", "--hidden_sizes", "16", "32",
        "--log_dir", str(tmp_path / "x")]))
    assert result.exit_code == 2 and "--shared_projection True needs equal --hidden_sizes" in result.output


@pytest.mark.parametrize("arrangement", ["mtrl", "per_network"])
def test_care_ptsl_options_reach_both_parts(tmp_path, arrangement):
    """Every CARE + PTSL flag reaches the actor and both critics, in both arrangements."""
    config = resolve_config("mtsac", {"policy_architecture": "care_ptsl", "Q_architecture": "care_ptsl",
                                      "hidden_sizes": (16, 16), "log_dir": str(tmp_path / "r"), "pal_dim": 7,
                                      "num_experts": 3, "residual_mode": "linear", "shared_projection": False,
                                      "care_arrangement": arrangement})
    trainer = build_trainer(config)
    try:
        policy, qf = trainer.algorithm.policy.net, trainer.algorithm.qf
        trunks = [policy.trunk, qf.q1, qf.q2] if arrangement == "mtrl" else [policy.trunk, qf.q1.trunk, qf.q2.trunk]
        for trunk in trunks:
            assert (trunk.pal_dim, trunk.residual_mode, trunk.down_keys[1]) == (7, "linear", "down1")
        experts = [policy.encoder.parts, qf.encoder.shared] if arrangement == "mtrl" else [
            policy.encoder.shared, qf.q1.encoder.shared]
        assert all(e.experts[0].weight.shape[0] == 3 for e in experts)
    finally:
        trainer.close()


@pytest.mark.parametrize("arch", ["care", "care_ptsl"])
def test_care_arrangement_flag_builds_each_arrangement(tmp_path, arch):
    """mtrl: one shared task encoder and experts on the state alone, owned by the critic, soft-updated at
    --encoder_tau; per_network: each network owns them, the critic's experts see [s, a]."""
    from learning.q_functions import CARETwinQFunction, TwinQFunction
    for arrangement in ("mtrl", "per_network"):
        config = resolve_config("mtsac", {"env": "MazeLarge-10-v0", "policy_architecture": arch,
                                          "Q_architecture": arch, "hidden_sizes": (16, 16), "encoder_tau": 0.2,
                                          "log_dir": str(tmp_path / arrangement), "care_arrangement": arrangement})
        trainer = build_trainer(config)
        try:
            policy, qf = trainer.algorithm.policy.net, trainer.algorithm.qf
            obs, act = policy.in_dim, trainer.algorithm.policy.act_dim
            if arrangement == "mtrl":
                assert type(qf) is CARETwinQFunction and policy.encoder.parts is qf.encoder.shared
                assert qf.encoder.shared.experts[0].weight.shape[1] == obs and qf.encoder_tau == 0.2
                assert not any(n.startswith("encoder.shared") for n, _ in policy.named_parameters())
            else:
                assert type(qf) is TwinQFunction and qf.q1.encoder.shared.experts[0].weight.shape[1] == obs + act
                assert policy.encoder.shared is not qf.q1.encoder.shared
        finally:
            trainer.close()


def test_care_arrangement_and_encoder_tau_are_checked(tmp_path):
    for flags, message in ((["--care_arrangement", "shared"], "--care_arrangement='shared'; allowed: mtrl, per_network"),
                           (["--encoder_tau", "0"], "--encoder_tau must be in (0, 1]")):
        result = CliRunner().invoke(run.cli, run.normalise_argv([
            "mtsac", "--env", "MazeLarge-10-v0", "--policy_architecture", "care", "--Q_architecture", "care", *flags,
            "--log_dir", str(tmp_path / "x")]))
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("flags, check", [
    ({"sm_variant": "ctpg"}, lambda net, q: net.variant == "ctpg" and len(net.gating) == 1),
    ({"sm_variant": "paper"}, lambda net, q: net.variant == "paper" and len(net.gating) == 2),
    ({"sm_variant": "ctpg", "sm_gating_layers": 2}, lambda net, q: len(net.gating) == 2 and len(q.gating) == 2),
    ({"sm_num_layers": 3, "sm_num_modules": 2, "sm_module_hidden": 8, "sm_gating_hidden": 12},
     lambda net, q: (len(net.module_weight), net.num_modules, net.last.in_features,
                     net.route_down[0].in_features) == (3, 2, 8, 12)),
    ({"sm_variant": "mtrl", "sm_num_modules": 3},
     lambda net, q: type(net).__name__ == "MTRLSoftModularMLP" and net.num_modules == 3 and net.num_layers == 2
     and net.module_weight[0].shape[2] == 16 and net.state_dim == net.in_dim and q.state_dim < q.in_dim
     and net.parts is q.parts and net.detach_shared and not q.detach_shared),  # mtrl's arrangement
])
def test_soft_modular_flags_reach_actor_and_critics(tmp_path, flags, check):
    config = resolve_config("mtsac", {"env": "MazeLarge-10-v0", "policy_architecture": "soft_modular",
                                      "Q_architecture": "soft_modular", "hidden_sizes": (16, 16),
                                      "log_dir": str(tmp_path / "r"), **flags})
    trainer = build_trainer(config)
    try:
        assert check(trainer.algorithm.policy.net, trainer.algorithm.qf.q1)
        assert check(trainer.algorithm.policy.net, trainer.algorithm.qf.q2)
    finally:
        trainer.close()


def test_soft_modular_bad_flags_are_named(tmp_path):
    for flags, message in ((["--sm_variant", "soft"], "--sm_variant='soft'; allowed: paper, ctpg, mtrl"),
                           (["--sm_variant", "mtrl", "--sm_gating_layers", "2"], "allowed: 1"),
                           (["--sm_num_layers", "1"], "--sm_num_layers must be at least 2")):
        result = CliRunner().invoke(run.cli, run.normalise_argv([
            "mtsac", "--env", "MazeLarge-10-v0", "--policy_architecture", "soft_modular",
            "--Q_architecture", "soft_modular", *flags, "--log_dir", str(tmp_path / "x")]))
        assert result.exit_code == 2 and message in result.output, result.output


@pytest.mark.parametrize("env", ["MetaWorldMT10-v2", "MetaWorldMT50-v2"])
@pytest.mark.parametrize("arch, hidden", [("shared_onehot", (400,) * 3), ("care", (400,) * 3), ("ptsl", (367,) * 3),
                                          ("care_ptsl", (326,) * 3), ("soft_modular", (326,))])
def test_ptsl_preset_sizes_each_architecture_as_the_paper(env, arch, hidden):
    """--preset ptsl: PTSL's README commands (batch 1280, lr 3e-4, one evaluation episode per task,
    pal_dim 50 at 200k steps, CARE in mtrl's arrangement, mtrl's SM) with each architecture's width."""
    config = resolve_config("mtsac", {"env": env, "preset": "ptsl", "policy_architecture": arch,
                                      "Q_architecture": arch})
    t = 10 if env.endswith("MT10-v2") else 50
    assert (config.hidden_sizes, config.buffer_batch_size, config.lr, config.num_evaluation_episodes) == (
        hidden, 1280, 3e-4, t)
    assert (config.pal_dim, config.care_arrangement, config.sm_variant, config.num_experts) == (50, "mtrl", "mtrl", 4)
    assert resolve_config("mtsac", {"env": env, "preset": "ptsl", "policy_architecture": arch,
                                    "pal_dim": 32}).pal_dim == 32  # flags still win


@pytest.mark.parametrize("env, module, gate", [("MetaWorldMT10-v2", 128, 256), ("HalfCheetahMT8-v0", 64, 128)])
def test_ctpg_preset_runs_ctpgs_soft_modularization(env, module, gate):
    config = resolve_config("ctpg_sac", {"env": env, "preset": "ctpg", "policy_architecture": "soft_modular",
                                         "Q_architecture": "soft_modular"})
    assert (config.sm_variant, config.sm_gating_layers, config.sm_num_layers, config.sm_num_modules,
            config.sm_module_hidden, config.sm_gating_hidden) == ("ctpg", 1, 4, 4, module, gate)
    assert resolve_config("ctpg_sac", {"env": env, "preset": "ctpg", "policy_architecture": "paco"}).sm_variant == "paper"


def test_ptsl_preset_rejects_other_suites():
    with pytest.raises(ValueError, match="--preset ptsl is defined for PTSL's suites only"):
        resolve_config("mtsac", {"env": "MazeLarge-10-v0", "preset": "ptsl"})


def test_bench_architectures_rows_cover_every_architecture(monkeypatch):
    """``python -m bench --only architectures``: one row per architecture at T=10, MT-SAC's ratio 1."""
    import bench.bench_architectures as ba
    monkeypatch.setattr(ba, "ms_per_update", lambda arch, t, b, options, hidden, mtrl, steps: (
        {"shared_onehot": 2.0}.get(arch, 3.0), sum(hidden)))
    rows = ba.section_rows(quick=True)
    labels = [r[1] for r in rows]
    assert len(rows) == len(ba.cases(10)) and all("T=10" in m for m in labels)
    assert rows[0][2].startswith("1.00x") and rows[1][2].startswith("1.50x")
    archs = {arch for _, arch, *_ in ba.cases(10)}
    assert archs == {"shared_onehot", "multihead", "ptsl", "care", "care_ptsl", "soft_modular", "paco", "moore"}
    policy, qf = ba.build("care_ptsl", 3, dict(num_experts=2, pal_dim=4), (8, 8), True)
    assert policy.net.encoder.parts is qf.encoder.shared  # the mtrl arrangement, as the trainer builds it


@pytest.mark.parametrize("arch", ["care_ptsl"])
def test_mtrl_care_run_resumed_from_a_snapshot_reproduces_the_uninterrupted_csv(tmp_path, monkeypatch, arch):
    """The shared CARE parts live in the critic's state; the actor's borrowed view of them survives a
    snapshot round trip (a resumed run writes the same CSV as an uninterrupted one)."""
    from garage_experiments import resume_experiment, run_experiment
    from learning.trainer import TrainingInterrupted
    from tests.test_resume import TINY as RESUME_TINY
    from tests.test_resume import read_rows, signal_at_epoch
    flags = {**RESUME_TINY, "n_epochs": 3, "gradient_steps_per_itr": 8, "hidden_sizes": (16, 16),
             "policy_architecture": arch, "Q_architecture": arch}
    run_experiment(resolve_config("mtsac", {**flags, "log_dir": str(tmp_path / "full")}))
    signal_at_epoch(monkeypatch, 1)
    trainer = build_trainer(resolve_config("mtsac", {**flags, "log_dir": str(tmp_path / "cut")}))
    with pytest.raises(TrainingInterrupted):
        trainer.train()
    monkeypatch.undo()
    resume_experiment(trainer.log_dir)
    assert read_rows(trainer.log_dir) == read_rows(tmp_path / "full")
