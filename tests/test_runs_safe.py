"""Runs that survive clusters (issue 20, items 1, 6-9): one writer per run dir, evaluate repeats
the logged evaluation, resume history and buffer-less resume, damaged snapshots and bad inputs."""

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import types
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import environments
import run
from experiment_utils import resolve_config
from garage_experiments import build_trainer, run_experiment
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch
from learning.run_lock import LOCK_FILE, RunLock, RunLockedError, RunLockLost, StaleLockWarning, lock_holder
from learning.trainer import Trainer
from tools.evaluate import evaluate_command, evaluate_run
from tools.snapshots import (EXIT_LOCKED, InexactResumeWarning, SnapshotFallbackWarning, prepare_resume,
                             resume_command, resume_run)

REPO = Path(__file__).resolve().parent.parent
# QMP with a uniform mixture: its evaluation draws the mixture's choices from torch's RNG, so
# repeating it needs the envs' and torch's draws, both seeded per (seed, epoch, mode).
TINY = dict(env="MazeLarge-10-v0", n_epochs=2, batch_size=100, min_buffer_size=20,
            gradient_steps_per_itr=10, buffer_batch_size=8, hidden_sizes=(8,), mixture="uniform",
            num_evaluation_episodes=10, snapshot_mode="all", num_threads=1)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    log_dir, _ = run_experiment(resolve_config("qmp_dnc", {
        **TINY, "log_dir": str(tmp_path_factory.mktemp("runs") / "base")}))
    return log_dir


@pytest.fixture
def run_copy(base_run, tmp_path):
    """A private copy of the base run (tests below write into it)."""
    return Path(shutil.copytree(base_run, tmp_path / "run"))


def epochs(log_dir):
    with open(log_dir / "progress.csv", newline="") as f:
        return [r["Epoch"] for r in csv.DictReader(f)]


def logged_row(log_dir, epoch):
    with open(log_dir / "progress.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["Epoch"] == str(epoch))


# ----------------------------------------------------------------------------- item 1: lock
def test_a_second_resume_is_refused_naming_the_holder_and_nothing_is_lost(run_copy):
    with pytest.warns(InexactResumeWarning):
        trainer = prepare_resume(run_copy, n_epochs=3)  # this process: the first writer
    try:
        assert lock_holder(run_copy) == (os.getpid(), socket.gethostname())
        second = subprocess.run([sys.executable, str(REPO / "run.py"), "resume", str(run_copy),
                                 "--n_epochs", "4"], cwd=REPO, capture_output=True, text=True,
                                timeout=300)
        assert second.returncode == EXIT_LOCKED, second.stderr
        assert f"is being written by pid {os.getpid()} on host {socket.gethostname()}" in second.stderr
        assert "Traceback" not in second.stderr
    except BaseException:
        trainer.close()
        trainer.lock.release()
        raise
    trainer.train()
    assert epochs(run_copy) == ["0", "1", "2"]  # every epoch once: the refused writer wrote nothing
    assert torch.load(run_copy / "params.pt", weights_only=False)["epoch"] == 2
    variant = json.loads((run_copy / "variant.json").read_text())
    assert [r["n_epochs"] for r in variant["resumes"]] == [3] and variant["n_epochs"] == 3
    assert not (run_copy / LOCK_FILE).exists()  # released when training returned


def test_a_stale_lock_of_a_dead_process_is_taken_over(run_copy):
    code = ("import os, sys; from learning.run_lock import RunLock; lock = RunLock(sys.argv[1]).acquire(); "
            "print(os.getpid(), flush=True); os._exit(0)")  # dies holding the lock (like SIGKILL)
    dead = subprocess.run([sys.executable, "-c", code, str(run_copy)], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=True)
    pid = int(dead.stdout)
    assert lock_holder(run_copy) == (pid, socket.gethostname())
    with pytest.warns(StaleLockWarning, match=f"took over a stale lock left by pid {pid} on host "):
        lock = RunLock(run_copy).acquire()
    assert lock_holder(run_copy)[0] == os.getpid()
    with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on host {socket.gethostname()}"):
        RunLock(run_copy).acquire()  # a live holder is never taken over
    lock.release()
    assert not (run_copy / LOCK_FILE).exists()


def foreign_marker(log_dir, token: str, lease: float) -> None:
    """A claim as filelock's SoftFileLease writes it, by a process on another host (written whole:
    a reader never sees it half-written)."""
    tmp = log_dir / f".{LOCK_FILE}.tmp"
    tmp.write_text(f"filelock/2\npid=4242\nhost=node-elsewhere\nmode=lease\ntoken={token}\n"
                   f"duration={lease!r}\nstart=1\n")
    tmp.replace(log_dir / LOCK_FILE)


def test_a_foreign_hosts_lock_is_taken_over_only_once_its_claim_expired(tmp_path):
    foreign_marker(tmp_path, "a" * 32, 1.0)
    with pytest.raises(RunLockedError, match="is being written by pid 4242 on host node-elsewhere"):
        RunLock(tmp_path, lease=1.0).acquire(wait_for_other_hosts=False)
    lock = RunLock(tmp_path, lease=1.0)
    start = time.monotonic()
    with pytest.warns(StaleLockWarning, match="left by pid 4242 on host node-elsewhere, whose claim was not "
                                              "refreshed for 1 s"):
        lock.acquire()
    assert time.monotonic() - start >= 1.0  # the claim had to stay unrefreshed for a whole lease
    assert lock_holder(tmp_path) == (os.getpid(), socket.gethostname())
    lock.release()


def test_a_refreshed_foreign_claim_is_never_taken_over(tmp_path):
    stop = threading.Event()

    foreign_marker(tmp_path, f"{0:032x}", 1.0)  # held before the contender arrives

    def refresh():  # the other host's holder renews its claim every 0.2 s
        k = 1
        while not stop.wait(0.2):
            foreign_marker(tmp_path, f"{k:032x}", 1.0)
            k += 1

    thread = threading.Thread(target=refresh)
    thread.start()
    try:
        with pytest.raises(RunLockedError, match="pid 4242 on host node-elsewhere .*still being refreshed"):
            RunLock(tmp_path, lease=1.0).acquire()
    finally:
        stop.set()
        thread.join()


def test_a_lost_lock_stops_training_before_the_next_snapshot(tmp_path, monkeypatch):
    original = Trainer._run_epoch

    def run_epoch(self, epoch):
        if epoch == 1:  # e.g. the marker deleted by hand: the heartbeat reports it
            self.lock._compromised(types.SimpleNamespace(reason="marker-missing"))
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)
    trainer = build_trainer(resolve_config("dnc_sac", {**{k: v for k, v in TINY.items() if k != "mixture"},
                                                       "n_epochs": 3, "log_dir": str(tmp_path / "r")}))
    with pytest.raises(RunLockLost, match=r"lock was lost \(marker-missing\) after epoch 1"):
        trainer.train()
    assert torch.load(trainer.log_dir / "params.pt", weights_only=False)["epoch"] == 0


def test_a_new_run_holds_its_lock_while_it_trains(tmp_path, monkeypatch):
    seen = []
    original = Trainer._run_epoch

    def run_epoch(self, epoch):
        seen.append(lock_holder(self.log_dir))
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)
    log_dir, _ = run_experiment(resolve_config("dnc_sac", {
        **{k: v for k, v in TINY.items() if k != "mixture"}, "n_epochs": 1, "log_dir": str(tmp_path / "r")}))
    assert seen == [(os.getpid(), socket.gethostname())]
    assert not (log_dir / LOCK_FILE).exists()


# ----------------------------------------------------------------------------- item 6: evaluate
def test_evaluate_repeats_the_logged_evaluation_of_the_snapshot_epoch(base_run):
    row = logged_row(base_run, 1)  # the snapshot's epoch (params.pt / policy.pt after epoch 1)
    both = evaluate_run(base_run)
    assert both["mop"]["epoch"] == both["p"]["epoch"] == 1
    for mode, prefix in (("mop", ""), ("p", "p/")):
        assert both[mode]["return"] == pytest.approx(float(row[f"Evaluation/{prefix}AverageReturn"]), rel=1e-9)
        assert both[mode]["success"] == pytest.approx(float(row[f"Evaluation/{prefix}SuccessRate"]))
        for task in range(10):
            assert both[mode]["tasks"][task]["return"] == pytest.approx(
                float(row[f"Evaluation/{prefix}Task{task}/AverageReturn"]), rel=1e-9)
    alone = evaluate_run(base_run, modes=("p",))  # one mode alone: same episodes as after mop
    assert alone["p"]["tasks"] == both["p"]["tasks"]
    # JSON to stdout, with the logged row beside it
    result = CliRunner().invoke(evaluate_command, [str(base_run), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["modes"]["mop"]["return"] == both["mop"]["return"]
    assert report["logged"]["p"]["return"] == pytest.approx(float(row["Evaluation/p/AverageReturn"]))


def test_evaluate_seed_gives_other_episodes_and_json_file(base_run, tmp_path):
    out = tmp_path / "eval.json"
    result = CliRunner().invoke(evaluate_command, [str(base_run), "--mode", "p", "--seed", "7",
                                                   "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "mode p (snapshot epoch 1" in result.output  # the table is still printed
    report = json.loads(out.read_text())
    assert report["modes"]["p"]["seed"] == 7
    default = evaluate_run(base_run, modes=("p",))["p"]["tasks"]
    assert [t["return"] for t in report["modes"]["p"]["tasks"]] != [t["return"] for t in default]
    assert evaluate_run(base_run, modes=("p",), seed=7)["p"]["tasks"] == report["modes"]["p"]["tasks"]


# ----------------------------------------------------------------------------- item 7: resume
def test_resume_without_the_buffer_warns_and_variant_json_keeps_the_history(run_copy):
    assert "buffer" not in torch.load(run_copy / "params.pt", weights_only=False)
    result = CliRunner().invoke(resume_command, [str(run_copy), "--n_epochs", "3"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "warning: params.pt holds no replay buffer" in result.output
    assert "empty buffer (a new warm-up of --min_buffer_size 20)" in result.output
    variant = json.loads((run_copy / "variant.json").read_text())
    assert variant["n_epochs"] == 3
    (entry,) = variant["resumes"]
    assert (entry["snapshot"], entry["snapshot_epoch"], entry["from_epoch"], entry["n_epochs"],
            entry["buffer_restored"], entry["pid"], entry["host"]) == \
        ("params.pt", 1, 2, 3, False, os.getpid(), socket.gethostname())
    assert entry["time"].endswith("+00:00")
    assert resume_run(run_copy, n_epochs=4, echo=lambda *a, **k: None) == 0
    variant = json.loads((run_copy / "variant.json").read_text())
    assert [(r["from_epoch"], r["n_epochs"]) for r in variant["resumes"]] == [(2, 3), (3, 4)]
    assert variant["n_epochs"] == 4 and epochs(run_copy) == ["0", "1", "2", "3"]


def test_a_buffer_snapshot_holds_the_stored_rows_only():
    t, capacity, obs_dim, act_dim, n = 2, 100_000, 3, 2, 10
    buffer = TaskReplayBuffer(t, capacity, obs_dim, act_dim)
    obs = torch.randn(t, n + 1, obs_dim)
    buffer.add(TransitionBatch(obs[:, :-1], torch.randn(t, n, act_dim), torch.randn(t, n),
                               obs[:, 1:], torch.zeros(t, n)))
    data = io.BytesIO()
    torch.save(buffer.state_dict(), data)
    # 10 rows of (obs 3 + action 2 + reward + terminal) float32 + int32 link per task, plus a few
    # side rows: under 4 KB of tensors; the preallocated capacity alone is 2 * 1e5 * 7 * 4 = 5.6 MB.
    assert len(data.getvalue()) < 20_000
    # an old snapshot (views of the whole preallocated storage) still loads
    old = buffer.state_dict()
    old.update({k: v[:, :n] for k, v in buffer._storage.items()})
    restored = TaskReplayBuffer(t, capacity, obs_dim, act_dim)
    restored.load_state_dict(torch.load(io.BytesIO(_saved(old)), weights_only=False))
    for got, expected in zip(restored.transitions()[:5], buffer.transitions()[:5]):
        assert torch.equal(got, expected)


def _saved(obj) -> bytes:
    data = io.BytesIO()
    torch.save(obj, data)
    return data.getvalue()


# ----------------------------------------------------------------------------- item 8: bad inputs
def test_a_damaged_params_pt_falls_back_to_the_newest_readable_itr(run_copy):
    (run_copy / "params.pt").write_bytes(b"\x00not a torch file")
    (run_copy / "policy.pt").write_bytes(b"")
    (run_copy / "itr_1.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(SnapshotFallbackWarning, match=r"params\.pt: .*itr_1\.pt: .*; using itr_0\.pt "
                                                     r"\(epoch 0\)"):
        res = evaluate_run(run_copy, modes=("p",))
    assert res["p"]["epoch"] == 0 and res["p"]["snapshot"].endswith("itr_0.pt")
    assert res["p"]["return"] == pytest.approx(float(logged_row(run_copy, 0)["Evaluation/p/AverageReturn"]))
    lines = []
    assert resume_run(run_copy, echo=lambda m="", **k: lines.append(str(m))) == 0
    assert any(line.startswith("warning: ") and "using itr_0.pt (epoch 0)" in line for line in lines)
    assert epochs(run_copy) == ["0", "1"]  # epoch 1 ran again from the epoch-0 snapshot, once
    variant = json.loads((run_copy / "variant.json").read_text())
    assert variant["resumes"][-1]["snapshot"] == "itr_0.pt"


def test_no_readable_snapshot_is_a_clear_error(run_copy):
    for path in [run_copy / "params.pt", run_copy / "policy.pt", *run_copy.glob("itr_*.pt")]:
        path.write_bytes(b"garbage")
    for command in (evaluate_command, resume_command):
        result = CliRunner().invoke(command, [str(run_copy)])
        assert result.exit_code == 2, result.output
        message = " ".join(result.output.split())
        assert f"LOGDIR {run_copy} holds no readable snapshot (" in message
        for name in ("params.pt: ", "itr_0.pt: ", "itr_1.pt: "):
            assert name in message
        assert "Traceback" not in result.output
    with pytest.raises(ValueError, match="holds no readable snapshot") as err:
        prepare_resume(run_copy)
    # released explicitly, not only when the traceback (which keeps the frame's lock alive) goes
    assert err.value is not None and not (run_copy / LOCK_FILE).exists()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]"])
def test_a_broken_variant_json_is_named(run_copy, content):
    (run_copy / "variant.json").write_text(content)
    for command in (evaluate_command, resume_command):
        result = CliRunner().invoke(command, [str(run_copy)])
        assert result.exit_code == 2, result.output
        assert f"{run_copy / 'variant.json'} is " in result.output
        assert "Traceback" not in result.output


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_a_log_dir_under_proc_fails_before_any_env_is_built(monkeypatch):
    built = []
    monkeypatch.setattr(environments, "get_suite", lambda *a, **k: built.append(a))
    result = CliRunner().invoke(run.cli, ["dnc_sac", "--env", "MazeLarge-10-v0", "--log_dir", "/proc/x"])
    assert result.exit_code == 2, result.output
    assert "--log_dir /proc/x cannot be created" in result.output
    assert not built


# ----------------------------------------------------------------------------- item 9: return-only suites
def test_a_return_only_suite_neither_logs_nor_prints_success(tmp_path):
    log_dir = tmp_path / "pendulum"
    args = ["sac", "--env", "Pendulum-v1", "--n_epochs", "1", "--batch_size", "50", "--min_buffer_size", "20",
            "--gradient_steps_per_itr", "2", "--buffer_batch_size", "8", "--hidden_sizes", "8",
            "--num_evaluation_episodes", "1", "--num_threads", "1", "--log_dir", str(log_dir)]
    result = CliRunner().invoke(run.cli, run.normalise_argv(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "SuccessRate" not in result.output
    assert "Evaluation/AverageReturn" in result.output
    header = (log_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert "Evaluation/AverageReturn" in header and "Train/AverageReturn" in header
    assert not [k for k in header if "SuccessRate" in k]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = evaluate_run(log_dir)
    assert res["mop"]["success"] is None and res["mop"]["tasks"][0]["success"] is None


def test_evaluate_reads_a_run_while_a_writer_holds_its_lock(base_run):
    with RunLock(base_run):
        assert evaluate_run(base_run, episodes=1, modes=("p",))["p"]["epoch"] == 1
    assert not (base_run / LOCK_FILE).exists()
