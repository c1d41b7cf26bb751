"""The hot path on ``--device cuda`` (``make test-cuda``; every test is skipped without CUDA).

Runs are built as ``run.py`` builds them (:func:`garage_experiments.build_trainer` on a resolved
config). Checked: every tensor of the update lives on the GPU (networks, target critics, log
alpha, replay and segment storage, optimiser moments, each minibatch and the update's
statistics), tiny runs of qmp_dnc, mtsac and ctpg_sac finish with finite losses and log the
columns of the same run on the CPU (values may differ in float rounding), a ``--snapshot_buffer``
run resumes and evaluates on the GPU, and env worker processes (``--n_workers``) forked after
CUDA is initialised work and are reaped.
"""

import csv
import itertools
import math
import os

import pytest
import torch

from experiment_utils import resolve_config
from garage_experiments import build_trainer, resume_experiment, run_experiment

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs CUDA (torch.cuda.is_available() is False)")

EXPERIMENTS = ("qmp_dnc", "mtsac", "ctpg_sac")
TINY = dict(env="MazeLarge-10-v0", n_epochs=2, batch_size=100, min_buffer_size=20,
            gradient_steps_per_itr=20, buffer_batch_size=16, hidden_sizes=(16, 16),
            num_evaluation_episodes=10, num_threads=1)
LOSSES = ("Train/Qf1Loss", "Train/Qf2Loss", "Train/PolicyLoss")


def config(experiment, log_dir, **extra):
    if experiment.startswith("ctpg"):
        extra.setdefault("guide_filter_start", 0)  # every gate acts within the tiny budget
    return resolve_config(experiment, {**TINY, **extra, "log_dir": str(log_dir)})


def read_rows(log_dir):
    with open(log_dir / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_finite_losses(rows):
    for row in rows[1:]:  # epoch 0 may end before the warm-up is over
        for key in LOSSES:
            assert math.isfinite(float(row[key])), (key, row[key])


def tensors_of(obj):
    """(name, tensor) for a module's parameters and buffers, or a dict's tensor values."""
    if isinstance(obj, torch.nn.Module):
        return list(itertools.chain(obj.named_parameters(), obj.named_buffers()))
    return [(k, v) for k, v in obj.items() if isinstance(v, torch.Tensor)]


def off_gpu(named):
    return [name for name, t in named if t.device.type != "cuda"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_tensor_of_the_update_lives_on_the_gpu(tmp_path, monkeypatch, experiment):
    trainer = build_trainer(config(experiment, tmp_path / "run", device="cuda"))
    algorithm, buffer = trainer.algorithm, trainer.buffer
    assert algorithm.log_alpha.device.type == "cuda"
    assert off_gpu(tensors_of(algorithm)) == []  # policy, critics, target critics, log alpha
    assert off_gpu(tensors_of(buffer._storage)) == []
    assert off_gpu([("link", buffer._link), ("final", buffer._final), ("used", buffer._used)]) == []
    assert trainer.sampler.obs_indices.device.type == "cuda"
    assert trainer.switch_state.choice.device.type == "cuda"
    if trainer.guide_training is not None:
        guide = trainer.guide_training
        assert off_gpu(tensors_of(guide.guide)) == []
        assert off_gpu(tensors_of(guide.buffer._storage)) == []
        assert guide.recorder.states.device.type == "cuda"

    seen = {"batches": 0, "off_gpu": set()}
    update = type(algorithm).update

    def checked_update(self, batch, *args, **kwargs):
        fields = [(f, getattr(batch, f)) for f in batch._fields]
        stats = update(self, batch, *args, **kwargs)
        seen["batches"] += 1
        seen["off_gpu"].update(off_gpu([(n, t) for n, t in fields if t is not None]))
        seen["off_gpu"].update(off_gpu(tensors_of(stats)))
        return stats

    monkeypatch.setattr(type(algorithm), "update", checked_update)
    trainer.train()
    assert seen["batches"] > 0 and seen["off_gpu"] == set()
    for name, optimizer in vars(algorithm).items():
        if isinstance(optimizer, torch.optim.Optimizer):
            for state in optimizer.state.values():
                assert state["exp_avg"].device.type == "cuda", name
                assert state["exp_avg_sq"].device.type == "cuda", name
    assert off_gpu(tensors_of(algorithm)) == []
    rows = read_rows(trainer.log_dir)
    assert len(rows) == 2
    assert_finite_losses(rows)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_cuda_and_cpu_runs_of_one_seed_log_the_same_columns(tmp_path, experiment):
    logs = {}
    for device in ("cpu", "cuda"):
        logs[device], final = run_experiment(config(experiment, tmp_path / device, device=device))
        assert math.isfinite(final["Evaluation/AverageReturn"])
        assert (logs[device] / "final_evaluation.json").exists()
    cpu, cuda = read_rows(logs["cpu"]), read_rows(logs["cuda"])
    assert len(cpu) == len(cuda) == 2
    assert list(cpu[0]) == list(cuda[0])
    assert [r["TotalEnvSteps"] for r in cpu] == [r["TotalEnvSteps"] for r in cuda]
    assert_finite_losses(cpu)
    assert_finite_losses(cuda)


def test_snapshot_buffer_run_resumes_and_evaluates_on_the_gpu(tmp_path):
    # torch.load(map_location=cuda) also moves the snapshot's CPU RNG state; Trainer.load_snapshot
    # must hand torch.set_rng_state a CPU tensor.
    from tools.evaluate import evaluate_run

    log_dir, _ = run_experiment(config("qmp_dnc", tmp_path / "run", device="cuda", snapshot_buffer=True))
    resume_experiment(log_dir, n_epochs=3)
    rows = read_rows(log_dir)
    assert [r["Epoch"] for r in rows] == ["0", "1", "2"]
    assert_finite_losses(rows)
    results = evaluate_run(log_dir, episodes=1)
    assert set(results) == {"mop", "p"} and results["mop"]["epoch"] == 2


def test_env_workers_forked_after_cuda_initialisation(tmp_path, monkeypatch):
    from environments.workers import WorkerVectorEnv

    built = []
    init = WorkerVectorEnv.__init__

    def recording_init(self, *args, **kwargs):
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(WorkerVectorEnv, "__init__", recording_init)
    torch.zeros(1, device="cuda")  # CUDA is initialised before the workers start
    log_dir, _ = run_experiment(config("qmp_dnc", tmp_path / "run", device="cuda", n_workers=2))
    assert_finite_losses(read_rows(log_dir))
    assert len(built) == 2
    assert all(not os.path.exists(f"/proc/{p.pid}") for w in built for p in w._processes)
