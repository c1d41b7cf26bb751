"""``--n_workers N``: the sub-envs stepped in N worker processes give exactly the results of the
in-process SyncVectorEnv (observations, rewards, info layout, autoreset, seeding, env-state
snapshots, whole runs), bad values are rejected before any work, and no worker outlives its env."""

import csv
import os
import signal

import gymnasium as gym
import numpy as np
import pytest
from click.testing import CliRunner

import environments
import run
from environments.workers import WorkerVectorEnv
from experiment_utils import resolve_config
from garage_experiments import build_trainer, resume_experiment, run_experiment
from learning.env_state import capture_vector_env, restore_vector_env
from learning.trainer import Trainer, TrainingInterrupted


def assert_same(x, y, path="out"):
    """Exact equality of nested step/reset outputs: dict keys in order, array dtypes and values."""
    if isinstance(x, dict):
        assert list(x) == list(y), path
        for k in x:
            assert_same(x[k], y[k], f"{path}[{k!r}]")
    elif isinstance(x, (tuple, list)):
        assert type(x) is type(y) and len(x) == len(y), path
        for i, (u, w) in enumerate(zip(x, y)):
            assert_same(u, w, f"{path}[{i}]")
    elif isinstance(x, np.ndarray):
        assert isinstance(y, np.ndarray) and x.dtype == y.dtype and x.shape == y.shape, path
        if x.dtype == object:
            for i, (u, w) in enumerate(zip(x, y)):
                assert_same(u, w, f"{path}[{i}]")
        else:
            assert np.array_equal(x, y), path
    elif isinstance(x, np.random.Generator):
        assert_same(x.bit_generator.state, y.bit_generator.state, path)
    else:
        assert type(x) is type(y) and x == y, (path, x, y)


def rollout(vec, steps, seed=3):
    """reset(seed) then ``steps`` steps of seeded random actions; every output kept."""
    out = [vec.reset(seed=seed)]
    rng = np.random.default_rng(0)
    for _ in range(steps):
        out.append(vec.step(rng.uniform(-1, 1, vec.action_space.shape).astype(np.float32)))
    return out


def gone(pid):
    """True once the process has exited and been reaped (no zombie left in /proc)."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.mark.parametrize("env_id, envs_per_task, n_workers", [
    ("Walker2dMT4-v0", 2, 3),  # falls end episodes at different steps; 8 sub-envs in slices 3, 3, 2
    ("MazeLarge-10-v0", 1, 2),
])
def test_worker_vector_env_gives_the_sync_vector_env_results(env_id, envs_per_task, n_workers):
    suite = environments.get_suite(env_id)
    sync = suite.make_vector_env(envs_per_task, seed=3)
    workers = suite.make_vector_env(envs_per_task, seed=3, n_workers=n_workers)
    try:
        assert isinstance(sync, gym.vector.SyncVectorEnv) and isinstance(workers, WorkerVectorEnv)
        assert workers.num_envs == sync.num_envs == suite.num_tasks * envs_per_task
        assert workers.single_observation_space == sync.single_observation_space
        assert workers.action_space == sync.action_space
        assert workers.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
        expected, got = rollout(sync, 120), rollout(workers, 120)
        assert_same(expected, got)
        # reset(seed=s) seeds sub-env i with s + i: the first observations differ across copies
        if env_id.startswith("Walker"):
            assert not np.array_equal(got[0][0][0], got[0][0][1])
            assert any("final_obs" in step[4] for step in got[1:])  # autoreset was exercised
        assert_same(sync.call("task"), workers.call("task"))
        assert_same(sync.get_attr("spec"), workers.get_attr("spec"))
    finally:
        sync.close()
        workers.close()


def test_env_states_are_captured_and_restored_through_the_workers():
    suite = environments.get_suite("Walker2dMT4-v0")
    sync = suite.make_vector_env(1, seed=0)
    workers = suite.make_vector_env(1, seed=0, n_workers=2)
    try:
        rollout(sync, 30, seed=0)
        rollout(workers, 30, seed=0)
        state = capture_vector_env(workers)
        assert_same(capture_vector_env(sync), state)
        actions = np.random.default_rng(1).uniform(-1, 1, (40, *workers.action_space.shape))
        after = [workers.step(a.astype(np.float32)) for a in actions]
        restore_vector_env(workers, state)
        assert_same(after, [workers.step(a.astype(np.float32)) for a in actions])
        restore_vector_env(sync, state)  # a snapshot taken with workers resumes in-process too
        assert_same(after, [sync.step(a.astype(np.float32)) for a in actions])
    finally:
        sync.close()
        workers.close()


def test_worker_errors_signals_and_close():
    suite = environments.get_suite("MazeLarge-10-v0")
    vec = suite.make_vector_env(1, seed=0, n_workers=2)
    pids = [p.pid for p in vec._processes]
    vec.reset(seed=0)
    with pytest.raises(RuntimeError, match="AttributeError"):
        vec.call("no_such_attribute")
    for pid in pids:  # Ctrl-C reaches the whole process group: the workers carry on
        os.kill(pid, signal.SIGINT)
    vec.step(vec.action_space.sample())
    vec.close()
    vec.close()
    assert all(gone(pid) for pid in pids)
    fns = [lambda: suite.make_env(0)] * 3
    for bad in (0, 4):
        with pytest.raises(ValueError, match=rf"n_workers={bad}; allowed: 1\.\.3"):
            WorkerVectorEnv(fns, bad)

    def broken():
        raise OSError("no simulator here")

    with pytest.raises(RuntimeError, match="no simulator here"):
        WorkerVectorEnv([broken, broken], 2)


def invoke(args):
    return CliRunner().invoke(run.cli, run.normalise_argv(args))


@pytest.mark.parametrize("args, message", [
    (["--n_workers", "0"], "--n_workers must be in 1..10 (at most one worker per env: 10 tasks x "
                           "--envs_per_task 1), got 0"),
    (["--n_workers", "11"], "--n_workers must be in 1..10"),
    (["--n_workers", "21", "--envs_per_task", "2"], "--n_workers must be in 1..20"),
])
def test_bad_n_workers_is_rejected_before_any_work(tmp_path, args, message):
    result = invoke(["qmp_dnc", "--env", "MazeLarge-10-v0", *args, "--log_dir", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "x").exists()


def test_n_workers_up_to_the_number_of_envs_is_accepted(tmp_path):
    result = invoke(["qmp_dnc", "--env", "MazeLarge-10-v0", "--n_workers", "20", "--envs_per_task", "2",
                     "--dry_run", "--log_dir", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert '"n_workers": 20' in result.output


def read_rows(log_dir):
    with open(log_dir / "progress.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: v for k, v in r.items() if not k.startswith("Time/")} for r in rows]


@pytest.fixture
def worker_envs(monkeypatch):
    """Every WorkerVectorEnv built during the test."""
    built = []
    original = WorkerVectorEnv.__init__

    def init(self, *args, **kwargs):
        built.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(WorkerVectorEnv, "__init__", init)
    return built


TINY = ["--n_epochs", "2", "--batch_size", "2000", "--min_buffer_size", "500",
        "--gradient_steps_per_itr", "5", "--buffer_batch_size", "16", "--hidden_sizes", "16", "16",
        "--num_evaluation_episodes", "10", "--num_threads", "1"]


def test_two_workers_reproduce_the_in_process_run(tmp_path, worker_envs):
    logs = {}
    for n in (1, 2):
        logs[n] = tmp_path / f"w{n}"
        result = invoke(["qmp_dnc", "--env", "MazeLarge-10-v0", *TINY, "--n_workers", str(n),
                         "--log_dir", str(logs[n])])
        assert result.exit_code == 0, result.output
    expected, got = read_rows(logs[1]), read_rows(logs[2])
    assert len(got) == 2 and got == expected
    assert float(got[-1]["Train/AverageReturn"]) < 0  # training episodes ended (autoreset ran)
    # training (10 envs) and evaluation (10 envs) each had 2 workers, all closed and reaped
    assert [(w.num_envs, len(w._processes)) for w in worker_envs] == [(10, 2), (10, 2)]
    assert all(w.closed and gone(p.pid) for w in worker_envs for p in w._processes)


RESUME = dict(env="MazeLarge-10-v0", n_epochs=4, batch_size=100, min_buffer_size=20,
              gradient_steps_per_itr=20, buffer_batch_size=16, hidden_sizes=(16,),
              num_evaluation_episodes=10, snapshot_buffer=True, num_threads=1)


def test_ctrl_c_and_exact_resume_with_workers(tmp_path, monkeypatch, worker_envs):
    """SIGINT to the trainer and its workers (Ctrl-C reaches the process group) at epoch 1: the
    epoch finishes, the snapshot holds the env states read from the workers, and the resumed
    2-worker run writes the progress.csv of the uninterrupted in-process run."""
    full, _ = run_experiment(resolve_config("qmp_dnc", {**RESUME, "log_dir": str(tmp_path / "full")}))
    original = Trainer._run_epoch

    def run_epoch(self, epoch):
        if epoch == 1:
            for w in worker_envs:
                for p in w._processes:
                    os.kill(p.pid, signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, epoch)

    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)
    trainer = build_trainer(resolve_config("qmp_dnc", {**RESUME, "n_workers": 2,
                                                       "log_dir": str(tmp_path / "cut")}))
    with pytest.raises(TrainingInterrupted) as stop:
        trainer.train()
    assert stop.value.exit_code == 130
    assert [r["Epoch"] for r in read_rows(trainer.log_dir)] == ["0", "1"]
    assert all(gone(p.pid) for w in worker_envs for p in w._processes)
    monkeypatch.setattr(Trainer, "_run_epoch", original)
    resume_experiment(trainer.log_dir)
    assert read_rows(trainer.log_dir) == read_rows(full)
    assert len(worker_envs) == 4 and all(w.closed for w in worker_envs)
