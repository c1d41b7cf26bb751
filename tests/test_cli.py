"""Bad input fails before any work with a message naming the flag and the allowed values."""

import pytest
from click.testing import CliRunner

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
