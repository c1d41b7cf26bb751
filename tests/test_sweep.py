"""``python run.py sweep``: grid expansion, input checks before Ray, a real local Ray sweep that a
re-launch skips entirely, and failed trials in the summary and the exit code."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tools import sweep
from tools.sweep import Trial, expand_grid, parse_grid, parse_seeds, sweep_command

# One epoch of a tiny Pendulum run: each trial is dominated by python start-up and imports.
TINY = ["--n_epochs", "1", "--batch_size", "100", "--min_buffer_size", "20", "--gradient_steps_per_itr", "2",
        "--buffer_batch_size", "8", "--hidden_sizes", "8", "--num_evaluation_episodes", "1"]


def invoke(args):
    return CliRunner().invoke(sweep_command, args, catch_exceptions=False)


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the sweep tries to start or connect to Ray."""
    def refuse(*_, **__):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(sweep, "_start_ray", refuse)


def test_expand_grid_is_the_cartesian_product_with_one_dir_name_per_trial():
    trials = expand_grid(["qmp_dnc", "dnc_sac"], ["MazeLarge-10-v0", "JacoReachMT5-v1"], [0, 1, 2],
                         parse_grid(["kl_coeff=0,0.01", "hidden_sizes=64 64,256 256", "--lr=1e-3"]),
                         ["--n_epochs", "5"])
    assert len(trials) == 2 * 2 * 2 * 2 * 1 * 3
    names = [t.name for t in trials]
    assert len(set(names)) == len(names)
    assert names[:4] == ["qmp_dnc_MazeLarge-10-v0_kl_coeff=0_hidden_sizes=64-64_lr=1e-3_s0",
                         "qmp_dnc_MazeLarge-10-v0_kl_coeff=0_hidden_sizes=64-64_lr=1e-3_s1",
                         "qmp_dnc_MazeLarge-10-v0_kl_coeff=0_hidden_sizes=64-64_lr=1e-3_s2",
                         "qmp_dnc_MazeLarge-10-v0_kl_coeff=0_hidden_sizes=256-256_lr=1e-3_s0"]
    assert names[-1] == "dnc_sac_JacoReachMT5-v1_kl_coeff=0.01_hidden_sizes=256-256_lr=1e-3_s2"
    combos = {(t.experiment, t.env, t.flags, t.seed) for t in trials}
    assert ("dnc_sac", "MazeLarge-10-v0", (("kl_coeff", "0.01"), ("hidden_sizes", "64 64"), ("lr", "1e-3")), 1) \
        in combos and len(combos) == len(trials)
    assert trials[3].run_args("/r/x", 2, "cuda") == [
        "qmp_dnc", "--env", "MazeLarge-10-v0", "--seed", "0", "--kl_coeff=0", "--hidden_sizes=256 256",
        "--lr=1e-3", "--n_epochs", "5", "--log_dir", "/r/x", "--num_threads", "2", "--device", "cuda"]
    assert Trial("sac", "Pendulum-v1", 7).name == "sac_Pendulum-v1_s7"
    assert [t.name for t in expand_grid(["sac"], ["Pendulum-v1"], [3])] == ["sac_Pendulum-v1_s3"]


def test_parsing_and_grid_errors():
    assert parse_seeds("0-2") == [0, 1, 2]
    assert parse_seeds("0,1,2") == [0, 1, 2]
    assert parse_seeds("5, 0-1") == [5, 0, 1]
    for bad in ("", "a", "2-0", "0,0-1", "-1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)
    for bad in (["kl_coeff"], ["=1"], ["kl_coeff=0,"], ["lr=1,1"], ["lr=1", "lr=2"], ["seed=0,1"],
                ["log_dir=a"], ["bad flag=1"]):
        with pytest.raises(ValueError):
            parse_grid(bad)
    with pytest.raises(ValueError, match="share the log dir"):
        expand_grid(["sac"], ["Pendulum-v1"], [0], parse_grid(["name=a/b,a-b"]))
    with pytest.raises(ValueError, match="--seed after -- is set by the sweep"):
        expand_grid(["sac"], ["Pendulum-v1"], [0], extra=["--seed", "3"])
    with pytest.raises(ValueError, match="both a --grid flag and an extra"):
        expand_grid(["sac"], ["Pendulum-v1"], [0], parse_grid(["lr=1"]), ["--lr=2"])


@pytest.mark.parametrize("args, message", [
    (["--experiments", "sac,ppo", "--envs", "Pendulum-v1"], "--experiments: unknown 'ppo'; allowed: sac,"),
    (["--experiments", "sac", "--envs", "Nope-v0"], "--envs: unknown 'Nope-v0'; allowed: MazeLarge-10-v0"),
    (["--experiments", "sac", "--envs", "Pendulum-v1", "--grid", "lr"], "expected FLAG=VALUE"),
    (["--experiments", "sac", "--envs", "Pendulum-v1", "--seeds", "0-x"], "is not a seed"),
    (["--experiments", "sac", "--envs", "Pendulum-v1", "--", "--batch_size", "abc"],
     "trial sac_Pendulum-v1_s0: Invalid value for '--batch_size'"),
    (["--experiments", "sac,dnc_sac", "--envs", "Pendulum-v1", "--grid", "kl_coeff=0.1"],
     "trial sac_Pendulum-v1_kl_coeff=0.1_s0: --kl_coeff"),
    (["--experiments", "sac", "--envs", "Pendulum-v1", "--grid", "batch_size=100,0"],
     "trial sac_Pendulum-v1_batch_size=0_s0: --batch_size must be a positive integer"),
    (["--experiments", "sac", "--envs", "Pendulum-v1", "--", "--device", "cuda"], "--device after --"),
])
def test_bad_input_fails_before_ray(tmp_path, no_ray, args, message):
    result = invoke(["--root", str(tmp_path / "sw"), *args])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "sw").exists()


def _progress(root: Path, names: list[str]) -> dict[str, tuple[bytes, int]]:
    return {n: ((root / n / "progress.csv").read_bytes(), (root / n / "progress.csv").stat().st_mtime_ns)
            for n in names}


@pytest.mark.slow
def test_local_ray_sweep_completes_and_its_relaunch_skips_every_trial(tmp_path, monkeypatch):
    root = tmp_path / "sw"
    args = ["--experiments", "sac,dnc_sac", "--envs", "Pendulum-v1", "--seeds", "0-1", "--root", str(root),
            "--num_cpus", "2", "--", *TINY]
    names = ["sac_Pendulum-v1_s0", "sac_Pendulum-v1_s1", "dnc_sac_Pendulum-v1_s0", "dnc_sac_Pendulum-v1_s1"]
    # An interrupted earlier attempt of one trial: a log dir without final_evaluation.json.
    stale = root / "dnc_sac_Pendulum-v1_s1"
    stale.mkdir(parents=True)
    (stale / "progress.csv").write_text("stale\n")
    (root / "dnc_sac_Pendulum-v1_s1.log").write_text("old console log\n")

    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert "4 done, 0 skipped, 0 failed" in result.output
    for name in names:
        assert (root / name / "final_evaluation.json").is_file(), result.output
        variant = json.loads((root / name / "variant.json").read_text())
        assert (variant["experiment"], variant["seed"], variant["num_threads"], variant["device"]) == \
            (name.split("_Pendulum")[0], int(name[-1]), 1, "cpu")
        assert "log dir: " + str(root / name) in (root / f"{name}.log").read_text()
    assert sorted(p.name for p in root.iterdir() if p.is_dir()) == sorted(names)  # never suffixed _1
    aside = tmp_path / "sw.failed" / "dnc_sac_Pendulum-v1_s1.failed-1"  # beside the root, not in it
    assert (aside / "progress.csv").read_text() == "stale\n"
    assert (aside / "sweep.log").read_text() == "old console log\n"
    before = _progress(root, names)
    assert all(content.startswith(b"Epoch,") for content, _ in before.values())

    def refuse(*_, **__):
        raise AssertionError("Ray was started although every trial had finished")
    monkeypatch.setattr(sweep, "_start_ray", refuse)
    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert "0 done, 4 skipped, 0 failed" in again.output
    for name in names:
        assert any(line.split()[:3] == [name, "skipped", "-"] for line in again.output.splitlines())
    assert _progress(root, names) == before
    assert [p.name for p in (tmp_path / "sw.failed").iterdir()] == ["dnc_sac_Pendulum-v1_s1.failed-1"]

    dry = invoke([*args[:-len(TINY) - 1], "--dry_run", "--", *TINY])
    assert dry.exit_code == 0, dry.output
    assert dry.output.count("# finished, skipped: ") == 4
    assert "run.py sac --env Pendulum-v1 --seed 1 --n_epochs 1" in dry.output
    assert f"--log_dir {root / 'sac_Pendulum-v1_s1'} --num_threads 1 --device cpu" in dry.output

    # Other flags after -- than the finished trials ran with: refused, nothing re-run or skipped.
    other = invoke([*args[:-len(TINY)], *TINY[:-1], "2"])
    assert other.exit_code == 2, other.output
    assert "4 finished trial(s) in" in other.output and "use another --root" in other.output
    assert "sac_Pendulum-v1_s0: --num_evaluation_episodes 1 there, 2 now" in other.output
    assert _progress(root, names) == before


@pytest.mark.slow
def test_failed_trial_is_reported_and_the_sweep_exits_nonzero(tmp_path, monkeypatch):
    # Let a trial reach Ray that run.py itself rejects (the up-front check would catch it).
    monkeypatch.setattr(sweep, "validate_trials", lambda *_, **__: {})
    root = tmp_path / "sw"
    result = invoke(["--experiments", "sac", "--envs", "Pendulum-v1", "--grid", "batch_size=0",
                     "--root", str(root), "--num_cpus", "1", "--", *TINY[:2], *TINY[4:]])
    assert result.exit_code == 1, result.output
    name = "sac_Pendulum-v1_batch_size=0_s0"
    row = next(line.split() for line in result.output.splitlines() if line.startswith(name + " "))
    assert row[1] == "failed" and row[2] == "2" and row[4] == str(root / f"{name}.log")
    assert "0 done, 0 skipped, 1 failed" in result.output
    assert "--batch_size must be a positive integer" in (root / f"{name}.log").read_text()
    assert not (root / name / "final_evaluation.json").exists()
