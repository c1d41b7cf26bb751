"""Bad input fails before any work with a message naming the flag and the allowed values."""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

import environments
import run
from experiment_utils import ENV_PRESETS, resolve_config


def invoke(args, tmp_path):
    return CliRunner().invoke(run.cli, run.normalise_argv([*args, "--log_dir", str(tmp_path / "x")]))


@pytest.mark.parametrize("args, message", [
    (["ppo"], "unknown EXPERIMENT 'ppo'; allowed: sac, mtsac, dnc_sac, qmp_dnc, qmp_sac, uds_dnc, qmp_uds_dnc"),
    (["qmp_dnc", "--env", "Nope-v0"], "--env='Nope-v0' is not a known env id. Allowed: MazeLarge-10-v0"),
    (["qmp_dnc", "--policy_architecture", "multihead"], "--policy_architecture='multihead' cannot be used by qmp_dnc; allowed: separate"),
    (["qmp_sac", "--Q_architecture", "separate"], "--Q_architecture='separate' cannot be used by qmp_sac; allowed: multihead"),
    (["sac", "--policy_architecture", "separate"], "allowed: shared, multihead"),
    (["dnc_sac", "--policy_architecture", "tree"], "allowed: separate, multihead, shared"),
    (["qmp_dnc", "--include_task_id", "True"], "--include_task_id True cannot be used by qmp_dnc"),
    (["mtsac", "--policy_architecture", "shared"], "needs --include_task_id True"),
    (["dnc_sac", "--batch_size", "0"], "--batch_size must be a positive integer, got 0"),
    (["dnc_sac", "--hidden_sizes", "256", "-1"], "--hidden_sizes must be positive integers"),
    (["dnc_sac", "--n_epochs", "-3"], "--n_epochs must be a positive integer"),
    (["dnc_sac", "--num_threads", "-1"], "--num_threads must be >= 0, got -1"),
    (["qmp_dnc", "--sparse_tasks", "3", "10"], "--sparse_tasks [10] out of range for MazeLarge-10-v0: allowed 0..9"),
    (["qmp_dnc", "--mixture", "random"], "--mixture='random'; allowed: qswitch, uniform, domain"),
    (["qmp_dnc", "--mixture", "domain"], "--mixture domain needs --mixture_probs"),
    (["qmp_dnc", "--device", "tpu"], "--device='tpu'; allowed: auto, cpu, cuda, cuda:N"),
    (["dnc_sac", "--policy_sampling_freq", "2"], "No such option '--policy_sampling_freq'"),
    (["dnc_sac", "--kl_coeff", "0.1", "0.2"], "--kl_coeff has 2 values; allowed: 1 (every pair) or 100"),
    (["dnc_sac", "--kl_coeff", "-1"], "--kl_coeff values must be >= 0"),
    (["qmp_dnc", "--sampling_type", "ixj"], "--sampling_type='ixj'; allowed: all, i, j, i+j"),
    (["uds_dnc", "--sharing_quantile", "1"], "--sharing_quantile must be in [0, 1), got 1.0"),
    (["qmp_uds_dnc", "--unsupervised", "False"], "--unsupervised False is not supported"),
    (["uds_dnc", "--kl_coeff", "0.1"], "--kl_coeff must be 0 for uds_dnc"),
    (["dnc_sac", "--use_pc_grad", "True"], "--use_pc_grad True cannot be used by dnc_sac"),
    (["sac", "--use_pc_grad", "True"], "allowed for: mtsac, qmp_sac"),
    (["qmp_dnc", "--distillation_period", "2"], "No such option '--distillation_period'"),
    (["dnc_sac", "--distillation_n_epochs", "0"], "--distillation_n_epochs must be a positive integer"),
    (["mtsac", "--sharing_quantile", "0.5"], "No such option '--sharing_quantile'"),
    (["dnc_sac", "--replay_buffer_size", "2000"],
     "--replay_buffer_size 2000 per task holds 2000 transitions per task, fewer than --min_buffer_size 3000"),
    (["mtsac", "--replay_buffer_size", "200"],
     "--replay_buffer_size 200 per task holds 2000 transitions in total over 10 tasks, fewer than "
     "--min_buffer_size 3000"),
    (["dnc_sac", "--replay_buffer_size", "0"], "--replay_buffer_size must be a positive integer, got 0"),
    (["qmp_dnc", "--mixture_probs", "probs.txt"], "--mixture_probs is only read with --mixture domain; "
     "got --mixture qswitch"),
    (["qmp_dnc", "--mixture", "uniform", "--mixture_probs", "p.txt"], "got --mixture uniform"),
    (["qmp_dnc", "--env", "Pendulum-v1"], "qmp_dnc mixes the policies of several tasks but "
     "--env=Pendulum-v1 has 1 task"),
    (["qmp_sac", "--env", "Pendulum-v1"], "qmp_sac mixes the policies of several tasks"),
    (["dnc_sac", "--seed", "-1"], "--seed must be in [0, 2**32 - 1], got -1"),
    (["dnc_sac", "--seed", str(2**32)], f"--seed must be in [0, 2**32 - 1], got {2**32}"),
    (["dnc_sac", "--name", "a/b"], "--name must not contain '/'"),
    (["dnc_sac", "--lr", "0"], "--lr must be > 0, got 0.0"),
    (["dnc_sac", "--discount", "1.5"], "--discount must be in (0, 1], got 1.5"),
    (["dnc_sac", "--discount", "0"], "--discount must be in (0, 1], got 0.0"),
    (["dnc_sac", "--target_update_tau", "0"], "--target_update_tau must be in (0, 1], got 0.0"),
    (["dnc_sac", "--num_evaluation_episodes", "5"],
     "--num_evaluation_episodes must be at least the number of tasks (10) of MazeLarge-10-v0"),
])
def test_bad_input_message(args, message, tmp_path):
    result = invoke(args, tmp_path)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "x").exists()  # failed before any work


def test_preset_applies_and_command_line_wins():
    cfg = resolve_config("qmp_dnc", {"env": "MazeLarge-10-v0", "lr": 1e-3})
    assert cfg.batch_size == ENV_PRESETS["MazeLarge-10-v0"]["batch_size"] == 6000
    assert cfg.lr == 1e-3
    assert resolve_config("qmp_dnc", {}).env == "MazeLarge-10-v0"


def test_list_flags_accept_space_and_comma_forms():
    assert run.normalise_argv(["sac", "--hidden_sizes", "512", "512", "--lr", "1"]) == \
        ["sac", "--hidden_sizes=512,512", "--lr", "1"]
    cfg_args = run.normalise_argv(["--sparse_tasks=1,2"])
    assert cfg_args == ["--sparse_tasks=1,2"]


def test_validate_rejects_distillation_for_qmp_configs():
    from garage_experiments import validate
    with pytest.raises(ValueError, match="--distillation_period cannot be used by qmp_dnc"):
        validate(resolve_config("qmp_dnc", {"distillation_period": 2}))
    with pytest.raises(ValueError, match="--sampling_type='x'"):
        validate(resolve_config("dnc_sac", {"sampling_type": "x"}))


def test_bad_mixture_probs_file(tmp_path):
    path = tmp_path / "probs.txt"
    path.write_text("0.5 0.5\n0.5 0.5\n")
    result = invoke(["qmp_dnc", "--mixture", "domain", "--mixture_probs", str(path)], tmp_path)
    assert result.exit_code == 2 and "--mixture_probs must hold a 10 x 10 non-negative matrix" in result.output
    result = invoke(["qmp_dnc", "--mixture", "domain", "--mixture_probs", str(tmp_path / "none.txt")], tmp_path)
    assert result.exit_code == 2 and "cannot read a matrix" in result.output


@pytest.mark.parametrize("kind", ["file", "read-only"])
def test_log_dir_that_cannot_be_created_is_rejected_before_any_work(tmp_path, kind, monkeypatch):
    blocker = tmp_path / "blocker"
    if kind == "file":
        blocker.write_text("not a directory")
    else:
        blocker.mkdir()
        real_access = os.access
        monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == blocker
                            else real_access(p, mode))
    built = []
    monkeypatch.setattr(environments, "get_suite", lambda *a, **k: built.append(a))
    result = CliRunner().invoke(run.cli, ["dnc_sac", "--log_dir", str(blocker / "run")])
    assert result.exit_code == 2, result.output
    assert f"--log_dir {blocker / 'run'} cannot be created" in result.output
    assert not built  # no env was built


# The original's per-environment overrides (reference §1.4), restated independently.
ORIGINAL_PRESETS = {
    #                  n_epochs batch  steps/ep grad_steps min_buf bbs   lr      hidden      eval
    "JacoReachMT5-v1": (2000, 1000, 1, 1000, 10000, 32, 3e-4, (256, 256), 50),
    "MazeLarge-10-v0": (2000, 6000, 1, 1000, 3000, 256, 3e-4, (256, 256), 100),
    "Walker2dMT4-v0": (2000, 4000, 1, 6000, 10000, 32, 3e-4, (256, 256), 40),
    "MetaWorldCDS-v1": (500, 2000, 10, 200, 5000, 256, 1.5e-3, (256, 256), 40),
    "MetaWorldMT10-v2": (1000, 5000, 10, 500, 5000, 2560, 1.5e-3, (256, 256), 100),
    "MetaWorldMT50-v2": (1000, 25000, 8, 2500, 1500, 1280, 3e-4, (400, 400), 250),
    "KitchenMTEasy-v0": (1000, 2000, 5, 500, 2000, 1280, 3e-4, (256, 256), 50),
}
PRESET_KEYS = ("n_epochs", "batch_size", "steps_per_epoch", "gradient_steps_per_itr", "min_buffer_size",
               "buffer_batch_size", "lr", "hidden_sizes", "num_evaluation_episodes")


@pytest.mark.parametrize("env", sorted(ORIGINAL_PRESETS))
def test_env_presets_equal_the_originals(env):
    cfg = resolve_config("qmp_dnc", {"env": env})
    assert tuple(getattr(cfg, k) for k in PRESET_KEYS) == ORIGINAL_PRESETS[env]
    # values the original never overrides (reference §1.4 "Always")
    assert (cfg.discount, cfg.target_update_tau, cfg.reward_scale, cfg.target_entropy) == (0.99, 0.005, 1.0, None)
    assert (cfg.policy_sampling_freq, cfg.kl_coeff, cfg.sharing_quantile, cfg.evaluation_frequency) == \
        (1, (0.0,), 0.0, 1)


@pytest.mark.parametrize("experiment, env, expected", [
    ("dnc_sac", "MazeLarge-10-v0", 1_000_000),  # one 1e6 buffer per task
    ("qmp_dnc", "MetaWorldMT10-v2", 1_000_000),
    ("uds_dnc", "MetaWorldCDS-v1", 1_000_000),
    ("mtsac", "MetaWorldMT10-v2", 100_000),  # one 1e6 buffer for all 10 tasks
    ("qmp_sac", "MetaWorldMT50-v2", 20_000),
    ("sac", "JacoReachMT5-v1", 200_000),
])
def test_replay_capacity_per_family(experiment, env, expected):
    from garage_experiments import replay_capacity_per_task
    t = {"MazeLarge-10-v0": 10, "MetaWorldMT10-v2": 10, "MetaWorldCDS-v1": 4, "MetaWorldMT50-v2": 50,
         "JacoReachMT5-v1": 5}[env]
    assert replay_capacity_per_task(resolve_config(experiment, {"env": env}), t) == expected
    assert replay_capacity_per_task(resolve_config(experiment, {"env": env, "replay_buffer_size": 77}), t) == 77


def test_variant_json_records_the_values_used(tmp_path):
    """--target_entropy 0 means -|A| (the original treats 0 as unset); the SAC family's capacity
    and temperature form are recorded as used."""
    log_dir = tmp_path / "run"
    result = CliRunner().invoke(run.cli, run.normalise_argv([
        "mtsac", "--n_epochs", "1", "--batch_size", "20", "--min_buffer_size", "10",
        "--gradient_steps_per_itr", "1", "--buffer_batch_size", "10", "--hidden_sizes", "8",
        "--num_evaluation_episodes", "10", "--target_entropy", "0", "--log_dir", str(log_dir)]))
    assert result.exit_code == 0, result.output
    variant = json.loads((log_dir / "variant.json").read_text())
    assert variant["target_entropy"] == 0.0
    assert variant["resolved"]["target_entropy"] == -2.0  # the maze's action is 2-D
    assert variant["resolved"]["replay_buffer_size_per_task"] == 100_000
    assert variant["resolved"]["temperature_loss"] == "alpha"
    assert variant["resolved"]["policy_architecture"] == "multihead"
