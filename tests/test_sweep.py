"""``python run.py sweep``: grid expansion, input checks before Ray, the trial body's resume /
restart decision and signal forwarding (without Ray), a real local Ray sweep that a re-launch skips
entirely, a sweep stopped by SIGTERM and re-launched that ends with the uninterrupted run's
progress.csv, and failed trials in the summary and the exit code."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import run
from tools.sweep import Trial, expand_grid, parse_grid, parse_seeds
from tools.sweep import command as sweep_cli
from tools.sweep import runner, trial as trial_body

REPO = Path(__file__).resolve().parents[1]

# One epoch of a tiny Pendulum run: each trial is dominated by python start-up and imports.
TINY = ["--n_epochs", "1", "--batch_size", "100", "--min_buffer_size", "20", "--gradient_steps_per_itr", "2",
        "--buffer_batch_size", "8", "--hidden_sizes", "8", "--num_evaluation_episodes", "1"]


def invoke(args):
    return CliRunner().invoke(run.cli, ["sweep", *args], catch_exceptions=False)


@pytest.fixture
def no_ray(monkeypatch):
    """Fail the test if the sweep tries to start or connect to Ray."""
    def refuse(*_, **__):
        raise AssertionError("Ray was started")
    monkeypatch.setattr(runner, "_start_ray", refuse)


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
    assert "4 done, 0 skipped, 0 interrupted, 0 failed" in result.output
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
    monkeypatch.setattr(runner, "_start_ray", refuse)
    again = invoke(args)
    assert again.exit_code == 0, again.output
    assert "0 done, 4 skipped, 0 interrupted, 0 failed" in again.output
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
    monkeypatch.setattr(sweep_cli, "validate_trials", lambda *_, **__: {})
    root = tmp_path / "sw"
    result = invoke(["--experiments", "sac", "--envs", "Pendulum-v1", "--grid", "batch_size=0",
                     "--root", str(root), "--num_cpus", "1", "--", *TINY[:2], *TINY[4:]])
    assert result.exit_code == 1, result.output
    name = "sac_Pendulum-v1_batch_size=0_s0"
    row = next(line.split() for line in result.output.splitlines() if line.startswith(name + " "))
    assert row[1] == "failed" and row[2] == "2" and row[4] == str(root / f"{name}.log")
    assert "0 done, 0 skipped, 0 interrupted, 1 failed" in result.output
    assert "--batch_size must be a positive integer" in (root / f"{name}.log").read_text()
    assert not (root / name / "final_evaluation.json").exists()


# ------------------------------------------------------------------------------ no import circle
def test_the_sweep_package_never_imports_run_py():
    code = "import sys, tools.sweep; sys.exit(1 if 'run' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0


def test_trial_checks_parse_space_separated_list_flags_without_run_main(tmp_path):
    trials = expand_grid(["sac"], ["Pendulum-v1"], [0], extra=["--hidden_sizes", "16", "32"])
    (config,) = sweep_cli.validate_trials(trials, tmp_path, run.cli.commands).values()
    assert config["hidden_sizes"] == [16, 32]


# ------------------------------------------------------------------------------ the trial body
FAKE_RUN_PY = """import signal, sys, time
print("argv", " ".join(sys.argv[1:]), flush=True)
if "--slow" in sys.argv:
    def stop(signum, frame):
        print("SIGTERM: finishing the epoch, then snapshot and stop", flush=True)
        sys.exit(143)
    signal.signal(signal.SIGTERM, stop)
    print("ready", flush=True)
    time.sleep(30)
"""


@pytest.fixture
def fake_repo(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "run.py").write_text(FAKE_RUN_PY)
    root = tmp_path / "sw"
    root.mkdir()
    return repo, root


def _body(repo: Path, root: Path, name: str = "t", args=("sac", "--fresh")):
    return trial_body.run_trial_process(list(args), str(repo), str(root / name), str(root / f"{name}.log"))


def test_an_unfinished_trial_with_a_snapshot_is_resumed_and_its_console_log_appended(fake_repo):
    repo, root = fake_repo
    (root / "t").mkdir()
    (root / "t" / "params.pt").write_bytes(b"x")
    (root / "t" / "variant.json").write_text("{}")
    (root / "t.log").write_text("first attempt\n")
    code, _, how = _body(repo, root)
    assert (code, how) == (0, "resumed")
    log = (root / "t.log").read_text()
    assert log.startswith("first attempt\n") and f"argv resume {root / 't'}\n" in log
    assert (root / "t" / "params.pt").is_file() and not (root.parent / "sw.failed").exists()


def test_an_unfinished_trial_without_a_snapshot_is_moved_aside_and_started_afresh(fake_repo):
    repo, root = fake_repo
    (root / "t").mkdir()
    (root / "t" / "progress.csv").write_text("stale\n")
    (root / "t.log").write_text("first attempt\n")
    code, _, how = _body(repo, root)
    assert (code, how) == (0, "started")
    assert "argv sac --fresh\n" in (root / "t.log").read_text()
    aside = root.parent / "sw.failed" / "t.failed-1"
    assert (aside / "progress.csv").read_text() == "stale\n" and (aside / "sweep.log").read_text() == "first attempt\n"


def test_a_finished_trial_is_left_alone_and_a_stopping_sweep_starts_nothing(fake_repo):
    repo, root = fake_repo
    (root / "t").mkdir()
    (root / "t" / "final_evaluation.json").write_text("{}")
    assert _body(repo, root)[::2] == (0, "finished")
    (root / trial_body.STOP_FILE).touch()
    assert _body(repo, root, "u")[::2] == (143, "not started")
    assert not (root / "u.log").exists()


def test_the_stop_file_sends_the_running_trial_one_sigterm_and_waits_for_its_graceful_exit(fake_repo):
    repo, root = fake_repo
    log = root / "t.log"

    def stop_when_ready():
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "ready" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        (root / trial_body.STOP_FILE).touch()

    helper = threading.Thread(target=stop_when_ready)
    helper.start()
    code, seconds, how = _body(repo, root, args=("sac", "--slow"))
    helper.join()
    assert (code, how) == (143, "started") and seconds < 20
    assert "SIGTERM: finishing the epoch" in log.read_text()


def test_plan_restarts_a_snapshot_of_a_run_with_other_flags(tmp_path, fake_repo):
    _, root = fake_repo
    trials = [Trial("sac", "Pendulum-v1", s) for s in (0, 1)]
    for t, lr in zip(trials, (0.001, 0.5)):
        (root / t.name).mkdir()
        (root / t.name / "params.pt").write_bytes(b"x")
        (root / t.name / "variant.json").write_text(json.dumps({"lr": lr, "seed": t.seed}))
    pending = [runner._Pending(t, root / t.name, root / f"{t.name}.log") for t in trials]
    notes = []
    runner.plan(pending, {t.name: {"lr": 0.001, "seed": t.seed} for t in trials}, notes.append)
    assert [p.resume for p in pending] == [True, False]
    assert pending[1].moved_aside == root.parent / "sw.failed" / "sac_Pendulum-v1_s1.failed-1"
    assert "--lr 0.5 there, 0.001 now" in notes[1] and not (root / trials[1].name).exists()


# ------------------------------------------------------------------------------ preemption
def _rows_without_time(path: Path) -> list[dict]:
    with open(path) as f:
        return [{k: v for k, v in row.items() if not k.startswith("Time/")} for row in csv.DictReader(f)]


@pytest.mark.slow
def test_a_sweep_stopped_by_sigterm_and_relaunched_continues_its_trial_exactly(tmp_path, monkeypatch):
    """SIGTERM to the driver mid-trial: exit 143 without Ray's signal dump, the trial's graceful-stop
    message in its log; the re-launch resumes the trial from its snapshot and ends with the
    progress.csv of an uninterrupted run."""
    # Epochs long enough (hundreds of updates) that the stop reaches the trial well before its last one.
    flags = ["--n_epochs", "8", "--batch_size", "100", "--min_buffer_size", "20", "--gradient_steps_per_itr",
             "400", "--buffer_batch_size", "8", "--hidden_sizes", "8", "--num_evaluation_episodes", "1",
             "--snapshot_buffer", "True"]
    reference = tmp_path / "reference"
    with pytest.raises(SystemExit) as done:
        run.main(["sac", "--env", "Pendulum-v1", "--seed", "0", *flags, "--log_dir", str(reference),
                  "--num_threads", "1", "--device", "cpu"])
    assert done.value.code == 0
    root = tmp_path / "sw"
    args = ["sweep", "--experiments", "sac", "--envs", "Pendulum-v1", "--root", str(root), "--num_cpus", "1",
            "--", *flags]
    progress = root / "sac_Pendulum-v1_s0" / "progress.csv"
    driver = subprocess.Popen([sys.executable, "run.py", *args], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and driver.poll() is None and \
            (not progress.is_file() or len(progress.read_text().splitlines()) < 2):
        time.sleep(0.05)
    driver.send_signal(signal.SIGTERM)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 143, output
    assert "*** SIGTERM received" not in output and "asking 1 unfinished trial(s) to stop" in output
    console = (root / "sac_Pendulum-v1_s0.log").read_text()
    assert "SIGTERM: finishing the epoch" in console and "stopped after epoch" in console
    first = len(_rows_without_time(progress))
    assert 1 <= first < 8 and (root / "sac_Pendulum-v1_s0" / "params.pt").is_file()
    assert not (root / trial_body.STOP_FILE).exists()

    dry = invoke([*args[1:-len(flags) - 1], "--dry_run", "--", *flags])
    assert f"# unfinished, resumed from its snapshot: {sys.executable} run.py resume {root / 'sac_Pendulum-v1_s0'}" \
        in dry.output, dry.output

    monkeypatch.setenv("PYTHONPATH", str(REPO))
    again = invoke(args[1:])
    assert again.exit_code == 0, again.output
    assert "unfinished sac_Pendulum-v1_s0: resuming from its snapshot" in again.output
    assert "1 done, 0 skipped, 0 interrupted, 0 failed" in again.output
    assert not (tmp_path / "sw.failed").exists()
    assert _rows_without_time(progress) == _rows_without_time(reference / "progress.csv")
    assert os.path.isfile(root / "sac_Pendulum-v1_s0" / "final_evaluation.json")


def test_a_retry_waits_for_the_earlier_attempt_on_this_host_and_resumes_from_its_snapshot(fake_repo):
    """A Ray retry after the worker died: the orphaned earlier attempt still holds the run's lock while
    it finishes its epoch and writes the snapshot; the retry waits for it instead of starting afresh."""
    repo, root = fake_repo
    run_dir = root / "t"
    run_dir.mkdir()
    (run_dir / "variant.json").write_text("{}")
    writer = subprocess.Popen([sys.executable, "-c", "import pathlib, time; time.sleep(1.5); "
                               "pathlib.Path('params.pt').write_bytes(b'x')"], cwd=run_dir)
    (run_dir / "run.lock").write_text(f"filelock soft lease v1\npid={writer.pid}\nhost={socket.gethostname()}\n")
    assert trial_body.local_writer(run_dir) == writer.pid
    code, _, how = _body(repo, root)
    writer.wait()
    assert (code, how) == (0, "resumed")
    assert f"argv resume {run_dir}" in (root / "t.log").read_text()
    assert trial_body.local_writer(run_dir) is None  # a dead holder's marker does not hold anyone up
