"""Bad input fails before any work with a message naming the flag and the allowed values."""

import json
import os
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from click.testing import CliRunner

import environments
import run
import experiment_utils
from experiment_utils import ENV_PRESETS, ExperimentConfig, config_fields, resolve_config


def invoke(args, tmp_path):
    """Run ``run.py ARGS --log_dir tmp/x``, with ``--env MazeLarge-10-v0`` unless ARGS name one."""
    if not any(a == "--env" or a.startswith("--env=") for a in args):
        args = [args[0], "--env", "MazeLarge-10-v0", *args[1:]]
    return CliRunner().invoke(run.cli, run.normalise_argv([*args, "--log_dir", str(tmp_path / "x")]))


@pytest.mark.parametrize("args, message", [
    (["ppo"], "unknown EXPERIMENT 'ppo'; allowed: sac, mtsac, dnc_sac, qmp_dnc, qmp_sac, uds_dnc, qmp_uds_dnc"),
    (["qmp_dnc", "--env", "Nope-v0"], "--env='Nope-v0' is not a known env id. Allowed: MazeLarge-10-v0"),
    (["qmp_dnc", "--policy_architecture", "multihead"], "--policy_architecture='multihead' cannot be used by qmp_dnc; allowed: separate"),
    (["qmp_sac", "--Q_architecture", "separate"], "--Q_architecture='separate' cannot be used by qmp_sac; allowed: multihead, shared_onehot"),
    (["sac", "--policy_architecture", "separate"], "allowed: shared, multihead"),
    (["dnc_sac", "--policy_architecture", "tree"], "allowed: separate, multihead, shared, shared_onehot"),
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
    (["dnc_sac", "--policy_sampling_freq", "2"],
     "--policy_sampling_freq is not an option of dnc_sac; it is accepted by: qmp_dnc, qmp_sac, qmp_uds_dnc"),
    (["sac", "--kl_coeff=0.1"], "--kl_coeff is not an option of sac; it is accepted by: dnc_sac, qmp_dnc, "
     "uds_dnc, qmp_uds_dnc"),
    (["sac", "--no_such_flag", "1"], "No such option '--no_such_flag'"),
    (["dnc_sac", "--kl_coeff", "0.1", "0.2"], "--kl_coeff has 2 values; allowed: 1 (every pair) or 100"),
    (["dnc_sac", "--kl_coeff", "-1"], "--kl_coeff values must be >= 0"),
    (["qmp_dnc", "--sampling_type", "ixj"], "--sampling_type='ixj'; allowed: all, i, j, i+j"),
    (["uds_dnc", "--sharing_quantile", "1"], "--sharing_quantile must be in [0, 1), got 1.0"),
    (["qmp_uds_dnc", "--unsupervised", "False"], "--unsupervised False is not supported"),
    (["uds_dnc", "--kl_coeff", "0.1"], "--kl_coeff must be 0 for uds_dnc"),
    (["dnc_sac", "--use_pc_grad", "True"],
     "--use_pc_grad is not an option of dnc_sac; it is accepted by: mtsac, qmp_sac, ctpg_sac"),
    (["sac", "--skip_alpha_pc_grad", "False"], "accepted by: mtsac, qmp_sac, ctpg_sac"),
    (["qmp_dnc", "--distillation_period", "2"],
     "--distillation_period is not an option of qmp_dnc; it is accepted by: dnc_sac, uds_dnc"),
    (["dnc_sac", "--distillation_n_epochs", "0"], "--distillation_n_epochs must be a positive integer"),
    (["mtsac", "--sharing_quantile", "0.5"],
     "--sharing_quantile is not an option of mtsac; it is accepted by: uds_dnc, qmp_uds_dnc"),
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
    result = CliRunner().invoke(run.cli, ["dnc_sac", "--env", "MazeLarge-10-v0", "--log_dir", str(blocker / "run")])
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


def test_variant_json_records_the_values_used(tmp_path, monkeypatch):
    """--target_entropy 0 means -|A| (the original treats 0 as unset); the SAC family's capacity
    and temperature form are recorded as used; so are the command line, commit and versions."""
    log_dir = tmp_path / "run"
    argv = ["run.py", "mtsac", "--name", "a b'c"]  # recorded as given (the runner parses its own args)
    monkeypatch.setattr(sys, "argv", argv)
    result = CliRunner().invoke(run.cli, run.normalise_argv([
        "mtsac", "--env", "MazeLarge-10-v0", "--n_epochs", "1", "--batch_size", "20", "--min_buffer_size", "10",
        "--gradient_steps_per_itr", "1", "--buffer_batch_size", "10", "--hidden_sizes", "8",
        "--num_evaluation_episodes", "10", "--target_entropy", "0", "--log_dir", str(log_dir)]))
    assert result.exit_code == 0, result.output
    variant = json.loads((log_dir / "variant.json").read_text())
    assert variant["target_entropy"] == 0.0
    assert variant["resolved"]["target_entropy"] == -2.0  # the maze's action is 2-D
    assert variant["resolved"]["replay_buffer_size_per_task"] == 100_000
    assert variant["resolved"]["temperature_loss"] == "alpha"
    assert variant["resolved"]["policy_architecture"] == "multihead"
    # provenance: command line, git commit of this checkout, versions
    assert variant["argv"] == argv and variant["command"] == shlex.join(argv)
    assert shlex.split(variant["command"]) == argv
    repo = Path(experiment_utils.__file__).resolve().parent
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True)
    assert variant["git_commit"] == (head.stdout.strip() if head.returncode == 0 else None)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                            capture_output=True, text=True)
    assert variant["git_dirty"] == (bool(status.stdout.strip()) if head.returncode == 0 else None)
    assert variant["versions"]["python"] == ".".join(map(str, sys.version_info[:3]))
    for package in ("torch", "mujoco", "gymnasium", "metaworld"):
        assert variant["versions"][package] == metadata.version(package)
    assert experiment_utils.config_from_variant(variant) == resolve_config("mtsac", {
        "n_epochs": 1, "batch_size": 20, "min_buffer_size": 10, "gradient_steps_per_itr": 1,
        "buffer_batch_size": 10, "hidden_sizes": (8,), "num_evaluation_episodes": 10, "target_entropy": 0.0,
        "log_dir": str(log_dir)})
    # the log dir is printed before training starts (the epoch table follows it)
    lines = result.output.splitlines()
    assert lines[0] == f"log dir: {log_dir}"
    assert any(line.startswith("TotalEnvSteps") for line in lines[1:])
    assert "final Evaluation/SuccessRate" in result.output


def test_git_state_outside_a_checkout(tmp_path):
    assert experiment_utils.git_state(tmp_path) == (None, None)


@pytest.mark.parametrize("name, expected", [
    ("", "dnc_sac_MazeLarge-10-v0_3"),
    ("my run", "dnc_sac_MazeLarge-10-v0_my-run_3"),
])
def test_default_log_dir_name(name, expected):
    assert ExperimentConfig.name == ""  # not the original's "None"
    cfg = resolve_config("dnc_sac", {"seed": 3, "name": name or None})
    assert experiment_utils.log_dir_base(cfg) == Path("data/local/experiment") / expected


def option_help(output: str, flag: str) -> str:
    """The help of one option, whitespace-normalised (click wraps it over several lines)."""
    lines, out, inside = output.splitlines(), [], False
    for line in lines:
        if line.startswith("  --") or line.startswith("  -h"):
            inside = line.split()[0] == flag
        elif not line.startswith("   "):
            inside = False
        if inside:
            out.append(line)
    return " ".join(" ".join(out).split())


@pytest.mark.parametrize("args, flag, shown", [
    (["qmp_dnc", "--env=MetaWorldMT10-v2"], "--batch_size", "[default: 5000 (MetaWorldMT10-v2 preset)]"),
    (["qmp_dnc", "--env", "MetaWorldMT50-v2"], "--hidden_sizes", "[default: 400 400 (MetaWorldMT50-v2 preset)]"),
    (["qmp_dnc", "--env=MetaWorldMT10-v2"], "--discount", "[default: 0.99]"),
    (["qmp_dnc", "--env=MetaWorldMT10-v2"], "--env", "[default: MetaWorldMT10-v2]"),
    (["qmp_dnc"], "--batch_size", "[default: 1000]"),  # no --env: the global default
    (["qmp_dnc"], "--env", "[default: none: required]"),
    (["sac", "--env", "Pendulum-v1"], "--batch_size", "[default: 1000]"),  # no preset: global default
    (["mtsac"], "--policy_architecture", "[default: multihead (mtsac)]"),
    (["dnc_sac"], "--name", '[default: ""]'),
])
def test_help_shows_the_preset_of_the_env_given(args, flag, shown):
    result = CliRunner().invoke(run.cli, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert option_help(result.output, flag).endswith(shown), option_help(result.output, flag)


@pytest.mark.parametrize("args", [["mtsac"], ["mtsac", "--n_epochs", "1"], ["qmp_dnc", "--dry_run"]])
def test_env_is_required_and_the_message_lists_the_known_ids(args, tmp_path, monkeypatch):
    built = []
    monkeypatch.setattr(environments, "get_suite", lambda *a, **k: built.append(a))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(run.cli, args)
    assert result.exit_code == 2, result.output
    assert "--env is required; known ids: MazeLarge-10-v0, MazeQuick-4-v0, " in result.output
    assert "HalfCheetahMT8-v0" in result.output and "Pendulum-v1" in result.output
    assert not built and not (tmp_path / "data").exists()  # nothing started


def help_sections(output: str) -> dict[str, list[str]]:
    """Section title -> the flags listed under it, from click's help text."""
    sections, title = {}, None
    for line in output.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            sections[title] = []
        elif title and line.startswith("  -"):
            words = line.split()
            names = words[: next((i for i, w in enumerate(words) if not w.startswith("-")), len(words))]
            sections[title].extend(w.rstrip(",") for w in names if w.startswith("--"))
    return sections


def test_help_is_grouped_and_lists_only_the_experiments_flags():
    qmp = help_sections(CliRunner().invoke(run.cli, ["qmp_dnc", "--help"]).output)
    assert list(qmp)[:4] == ["Run", "Collection, updates and replay", "SAC learner", "Networks"]
    assert "--env" in qmp["Run"] and "--help" in qmp["Run"] and "--dry_run" in qmp["Run"]
    assert qmp["QMP behaviour mixture"] == ["--policy_sampling_freq", "--qswitch_score", "--mixture",
                                            "--mixture_probs", "--mixture_warmup"]
    assert "--kl_coeff" in qmp["DnC regulariser"] and "--lr" in qmp["SAC learner"]
    flags = {f for listed in qmp.values() for f in listed}
    for other in ("--use_pc_grad", "--skip_alpha_pc_grad", "--pal_dim", "--guide_step",
                  "--distillation_period", "--sharing_quantile"):
        assert other not in flags  # flags qmp_dnc rejects are not offered
    assert "CTPG guide" not in qmp and "UDS data sharing" not in qmp
    # every flag the command accepts is listed exactly once
    command = run.cli.commands["qmp_dnc"]
    accepted = {o for p in command.params for o in p.opts if o.startswith("--")}
    assert sorted(f for listed in qmp.values() for f in listed) == sorted(accepted | {"--help"})
    mtsac = help_sections(CliRunner().invoke(run.cli, ["mtsac", "--help"]).output)
    assert "--use_pc_grad" in mtsac["Parameter-sharing networks"]


@pytest.mark.parametrize("experiment, shown", [
    ("qmp_dnc", "policy network: separate [default: separate (qmp_dnc)]"),
    ("sac", "policy network: shared|multihead [default: shared (sac)]"),
])
def test_help_lists_the_architectures_the_experiment_accepts(experiment, shown):
    result = CliRunner().invoke(run.cli, [experiment, "--help"])
    assert option_help(result.output, "--policy_architecture") == f"--policy_architecture TEXT {shown}"


def test_dry_run_prints_the_resolved_config_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("QMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(run, "build_trainer", lambda config: pytest.fail("dry run built a trainer"))
    log_dir = tmp_path / "x"
    result = CliRunner().invoke(run.cli, ["mtsac", "--env", "MazeLarge-10-v0", "--dry_run", "--seed", "4", "--lr", "0.01",
                                          "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report) == {"experiment", "resolved"} | {f.name for f in config_fields()}
    assert (report["experiment"], report["seed"], report["lr"]) == ("mtsac", 4, 0.01)
    assert report["batch_size"] == 6000 and report["hidden_sizes"] == [256, 256]  # maze preset
    resolved = report["resolved"]
    assert resolved["num_tasks"] == 10
    assert (resolved["policy_architecture"], resolved["Q_architecture"]) == ("multihead", "multihead")
    assert resolved["replay_buffer_size_per_task"] == 100_000  # 1e6 // 10 for the SAC family
    assert resolved["target_entropy"] == -2.0  # -|A|, the maze's action is 2-D
    assert resolved["evaluation_episodes_per_task"] == 10  # preset 100 // 10 tasks
    assert (resolved["network_obs_dim"], resolved["action_dim"]) == (4, 2)
    assert not log_dir.exists()
    # a bad flag still fails with exit code 2; a valueless bool flag means True
    assert CliRunner().invoke(run.cli, ["mtsac", "--env", "MazeLarge-10-v0", "--dry_run",
                                        "--batch_size", "0"]).exit_code == 2
    shared = ["mtsac", "--env", "MazeLarge-10-v0", "--policy_architecture", "shared", "--Q_architecture", "shared"]
    result = CliRunner().invoke(run.cli, [*shared, "--include_task_id", "--dry_run"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["include_task_id"] is True and report["resolved"]["network_obs_dim"] == 14


def test_envs_lists_the_suites_and_caches_their_dims(tmp_path, monkeypatch):
    monkeypatch.setenv("QMP_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(environments, "known_env_ids", lambda: ["MazeLarge-10-v0", "HalfCheetahMT5-v0"])
    result = CliRunner().invoke(run.cli, ["envs"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["env", "id", "tasks", "obs", "act", "steps", "task", "names"]
    rows = {line.split()[0]: line.split(None, 5) for line in lines[1:]}
    assert rows["MazeLarge-10-v0"][1:5] == ["10", "4", "2", "600"]
    assert rows["MazeLarge-10-v0"][5].startswith("task0:(1, 3)->(5, 8), ")
    assert rows["MazeLarge-10-v0"][5].endswith(" more)")
    assert rows["HalfCheetahMT5-v0"][1:] == ["5", "17", "6", "1000",
                                             "Gravity1.0, Gravity0.5, Gravity0.75, Gravity1.5, Gravity1.25"]
    # the second listing reads the cache: no suite is built
    def no_build(*args, **kwargs):
        raise RuntimeError("suite rebuilt")

    monkeypatch.setattr(environments, "get_suite", no_build)
    again = CliRunner().invoke(run.cli, ["envs"])
    assert again.exit_code == 0 and again.output == result.output
    # --refresh rebuilds
    refreshed = CliRunner().invoke(run.cli, ["envs", "--refresh"])
    assert isinstance(refreshed.exception, RuntimeError) and "suite rebuilt" in str(refreshed.exception)


def test_abbreviate_task_names():
    names = [f"task-number-{k}" for k in range(50)]
    text = run.abbreviate(names, width=60)
    assert len(text) <= 60 and text.endswith(" more)")
    shown = text.split(", ...")[0].split(", ")
    assert shown == names[:len(shown)] and text.endswith(f"(+{50 - len(shown)} more)")
    assert run.abbreviate(["a", "b"]) == "a, b"


def test_console_script_entry_point():
    import tomllib
    project = tomllib.loads((Path(run.__file__).parent / "pyproject.toml").read_text())
    assert project["project"]["scripts"]["qmp"] == "run:main"
    setuptools = project["tool"]["setuptools"]
    assert set(setuptools["py-modules"]) == {"run", "experiment_utils", "garage_experiments"}
    with pytest.raises(SystemExit) as exit_info:
        run.main(["dnc_sac", "--env", "MazeLarge-10-v0", "--mixture", "uniform"])
    assert exit_info.value.code == 2


def test_wandb_output_logs_offline(tmp_path, monkeypatch):
    import dowel
    from dowel import tabular

    from learning.logging import WandbOutput, make_wandb_output

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    config = {**resolve_config("qmp_dnc", {"wandb": True}).to_dict(), "resolved": {"num_tasks": 10}}
    out = make_wandb_output(config, tmp_path)
    assert isinstance(out, WandbOutput) and out.mode == "offline"
    assert out.run.config["lr"] == 3e-4 and out.run.project == "qmp"
    logged = []
    real_log = out.run.log
    monkeypatch.setattr(out.run, "log", lambda row, **kw: (logged.append((dict(row), kw)), real_log(row, **kw)))
    dowel.logger.add_output(out)
    try:
        for epoch, steps in enumerate((3000, 9000)):
            tabular.record("Epoch", epoch)
            tabular.record("TotalEnvSteps", steps)
            tabular.record("Evaluation/SuccessRate", 0.25 * epoch)
            dowel.logger.log(tabular)
            dowel.logger.dump_all(epoch)
            tabular.clear()
    finally:
        dowel.logger.remove_output_type(WandbOutput)
        out.close()
    assert [(row["Evaluation/SuccessRate"], kw.get("step")) for row, kw in logged] == [(0.0, 3000), (0.25, 9000)]
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    run_id = (tmp_path / "wandb_run_id.txt").read_text()
    assert runs[0].name.endswith(run_id) and (runs[0] / f"run-{run_id}.wandb").stat().st_size > 0


@pytest.mark.parametrize("environ, expected", [
    ({}, "offline"),  # no API key anywhere
    ({"WANDB_API_KEY": "k" * 40}, "online"),
    ({"WANDB_API_KEY": "k" * 40, "WANDB_MODE": "offline"}, "offline"),
    ({"WANDB_MODE": "dryrun"}, "offline"),
    ({"WANDB_MODE": "disabled", "WANDB_API_KEY": "k" * 40}, "disabled"),
    ({"NETRC": "<netrc>"}, "online"),  # `wandb login` stores the key in ~/.netrc
    ({"NETRC": "<netrc>", "WANDB_BASE_URL": "https://wandb.example.org"}, "offline"),
])
def test_wandb_mode(environ, expected, tmp_path, monkeypatch):
    from learning.logging import wandb_mode

    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    netrc_file = tmp_path / "netrc"
    netrc_file.write_text("machine api.wandb.ai\n  login user\n  password " + "k" * 40 + "\n")
    netrc_file.chmod(0o600)
    environ = {k: v.replace("<netrc>", str(netrc_file)) for k, v in environ.items()}
    assert wandb_mode(environ) == expected


def test_presets_only_set_flags_the_experiment_has():
    """HalfCheetah's CTPG guide presets reach ctpg_sac's config, not mtsac's."""
    assert resolve_config("ctpg_sac", {"env": "HalfCheetahMT5-v0"}).guide_hidden_sizes == (400, 400)
    assert resolve_config("mtsac", {"env": "HalfCheetahMT5-v0"}).guide_hidden_sizes == ()
