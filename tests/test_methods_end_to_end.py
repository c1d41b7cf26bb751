"""The baseline methods (DnC, UDS, PCGrad) and QMP's options run end to end for a tiny budget
on MazeLarge-10-v0, write their columns, and each flag changes what the run does: a flagged
run is compared with the same run (same seed) without the flag, or with the flag's effect
switched off while every random draw stays the same.

The runs are shared between tests (module-scoped cache) and skip evaluation (the evaluation
columns are tested in test_end_to_end.py): what is compared here is collection and updates.
"""

import csv
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import run
from learning.algorithms import dnc, pcgrad
from learning.trainer import Trainer

T = 10  # MazeLarge-10-v0 tasks
TINY = ["--n_epochs", "2", "--batch_size", "100", "--min_buffer_size", "20",
        "--gradient_steps_per_itr", "20", "--buffer_batch_size", "16", "--hidden_sizes", "16", "16",
        "--num_evaluation_episodes", "10", "--num_threads", "1"]
# Smallest parameter change counted as an effect: the flags here move some parameter by
# >= 2e-3 in these runs, while summation order alone moves them by < 1e-7.
EFFECT = 1e-4


@pytest.fixture(autouse=True)
def restore_torch_threads():
    """--num_threads 1 sets torch's thread count for the whole process."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def invoke(args):
    if not any(a == "--env" or a.startswith("--env=") for a in args):  # --env is required: the maze
        args = [args[0], "--env", "MazeLarge-10-v0", *args[1:]]
    return CliRunner().invoke(run.cli, run.normalise_argv(args), catch_exceptions=False)


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def per_task(*keys):
    return {f"Train/LocalPolicy{i}/{k}" for i in range(T) for k in keys}


class Run:
    """progress.csv rows, the final params.pt, and what the spies saw during the run."""

    def __init__(self, rows, snapshot, pcgrad_groups, regulariser_obs_shapes):
        self.rows, self.snapshot = rows, snapshot
        self.pcgrad_groups = pcgrad_groups  # parameter shapes of every pcgrad_backward call
        self.regulariser_obs_shapes = regulariser_obs_shapes

    def column(self, key, epoch=-1):
        """(T,) values of Train/LocalPolicy{i}/key."""
        return np.array([float(self.rows[epoch][f"Train/LocalPolicy{i}/{key}"]) for i in range(T)])

    def selection(self, epoch):
        """(T, T) fractions of task i's steps taken by policy j in ``epoch``."""
        return np.array([self.column(f"Policy{j}Prob", epoch) for j in range(T)]).T

    def params(self, prefix):
        return {k: v for k, v in self.snapshot["algorithm"].items() if k.startswith(prefix)}


def max_param_diff(a, b, prefix):
    pa, pb = a.params(prefix), b.params(prefix)
    assert pa and pa.keys() == pb.keys()
    return max(float((pa[k] - pb[k]).abs().max()) for k in pa)


def fixed_orders(num_tasks, device="cpu"):
    """PCGrad visiting orders without random draws, so a PCGrad run and a plain run make the
    same random draws and differ only by the projection."""
    return torch.arange(num_tasks, device=device).repeat(num_tasks, 1)


@pytest.fixture(scope="module")
def train(tmp_path_factory):
    """train(experiment, *flags, fixed_pc_order=False) -> Run, each distinct run once."""
    cache = {}

    def run_once(experiment, *extra, fixed_pc_order=False):
        key = (experiment, extra, fixed_pc_order)
        if key in cache:
            return cache[key]
        log_dir = tmp_path_factory.mktemp(experiment) / "run"
        groups, shapes = [], []
        real_pcgrad_backward, real_regulariser_obs = pcgrad.pcgrad_backward, dnc.regulariser_observations

        def pcgrad_spy(per_task_loss, params, *args, **kwargs):
            groups.append([tuple(p.shape) for p in params])
            return real_pcgrad_backward(per_task_loss, params, *args, **kwargs)

        def regulariser_spy(*args, **kwargs):
            obs = real_regulariser_obs(*args, **kwargs)
            shapes.append(tuple(obs.shape))
            return obs

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(Trainer, "_evaluate", lambda self, epoch: None)
            mp.setattr(pcgrad, "pcgrad_backward", pcgrad_spy)
            mp.setattr(dnc, "regulariser_observations", regulariser_spy)
            if fixed_pc_order:
                mp.setattr(pcgrad, "random_orders", fixed_orders)
            result = invoke([experiment, *TINY, *extra, "--log_dir", str(log_dir)])
        assert result.exit_code == 0, result.output
        cache[key] = Run(read_csv(log_dir / "progress.csv"),
                         torch.load(log_dir / "params.pt", weights_only=False), groups, shapes)
        return cache[key]

    return run_once


DISTIL = ("--kl_coeff", "0.01", "--distillation_period", "1", "--distillation_n_epochs", "5")
REPRESENTATION = ("--sampling_type", "i+j", "--regularize_representation", "True",
                  "--gradient_steps_per_itr", "200", "--lr", "0.01")
WIDE = ("--batch_size", "1000")  # 100 steps per task in epoch 1: enough draws for frequencies

CASES = [
    ("dnc_sac", DISTIL,
     per_task("PolicyKLPenalty", "PolicyKL", "BetaKL") | {"Train/Distillation/FinalLoss"}),
    ("uds_dnc", ("--sharing_quantile", "0.5"), per_task("SharedData", "BetaKL")),
    ("qmp_uds_dnc", ("--sharing_quantile", "0"), per_task("SharedData", "MixtureProbs")),
    ("mtsac", ("--use_pc_grad", "True"), per_task("Qf1Loss")),
    ("qmp_sac", ("--use_pc_grad", "True", "--skip_alpha_pc_grad", "False"), per_task("MixtureProbs")),
    ("qmp_dnc", (*WIDE, "--mixture", "uniform"), per_task("MixtureProbs", "Policy9Prob")),
    ("qmp_dnc", ("--qswitch_score", "min-q-sample"), per_task("MixtureProbs")),
    ("qmp_dnc", ("--kl_coeff", "0.1", *REPRESENTATION), per_task("PolicyKLPenalty", "PolicyKL")),
]


@pytest.mark.parametrize("experiment, extra, columns", CASES,
                         ids=[f"{e}:{' '.join(x)}" for e, x, _ in CASES])
def test_method_runs_and_writes_columns(train, experiment, extra, columns):
    r = train(experiment, *extra, fixed_pc_order="--use_pc_grad" in extra)
    assert len(r.rows) == 2
    assert columns <= set(r.rows[0]), columns - set(r.rows[0])
    for key in columns:
        assert math.isfinite(float(r.rows[-1][key])), key


# ----------------------------------------------------------------------------- DnC
def test_distillation_copies_one_trained_policy_into_every_task(train):
    distilled, plain = train("dnc_sac", *DISTIL), train("dnc_sac", *DISTIL[:2])
    assert math.isnan(float(distilled.rows[0]["Train/Distillation/FinalLoss"]))  # epoch 0: none
    assert math.isfinite(float(distilled.rows[1]["Train/Distillation/FinalLoss"]))
    policy_d, policy_p = distilled.params("policy."), plain.params("policy.")
    assert policy_d.keys() == policy_p.keys() and policy_d
    for name, value in policy_d.items():
        # after the epoch-1 distillation every task's slice is the same network ...
        torch.testing.assert_close(value, value[:1].expand_as(value), rtol=0, atol=0, msg=name)
        # ... while without distillation the task policies stay different
        assert not torch.equal(policy_p[name], policy_p[name][:1].expand_as(policy_p[name])), name
    # the shared network is the trained centroid, not a copy of one task's policy
    for k in range(T):
        assert any(not torch.equal(policy_d[n][0], policy_p[n][k]) for n in policy_d), k
    # distillation happens after the epoch's updates and leaves the critics alone
    assert max_param_diff(distilled, plain, "qf.") == 0.0


def test_kl_regulariser_enters_the_policy_update(train):
    # A negligible coefficient makes the same random draws (the regulariser is on) but no
    # penalty gradient, so any difference comes from the penalty itself.
    reg, control = train("dnc_sac", *DISTIL[:2]), train("dnc_sac", "--kl_coeff", "1e-9")
    for r, beta in ((reg, 0.01), (control, 1e-9)):
        np.testing.assert_allclose(r.column("BetaKL"), beta, rtol=1e-6)
        # penalty_i = sum_{j != i} beta * D_ij and PolicyKL_i = mean_{j != i} D_ij
        np.testing.assert_allclose(r.column("PolicyKLPenalty"), beta * (T - 1) * r.column("PolicyKL"),
                                   rtol=1e-4)
        # sampling_type all: one set of B // T = 1 observation per buffer, shared by all pairs
        assert set(r.regulariser_obs_shapes) == {(1, T * (16 // T), 4)}
    assert max_param_diff(reg, control, "policy.") > EFFECT


def test_representation_regulariser_pulls_the_features_together(train):
    reg = train("qmp_dnc", "--kl_coeff", "0.1", *REPRESENTATION)
    control = train("qmp_dnc", "--kl_coeff", "1e-9", *REPRESENTATION)
    # PolicyKL is the feature MSE here; the penalty shrinks it for every task
    assert (reg.column("PolicyKL") < 0.5 * control.column("PolicyKL")).all(), \
        (reg.column("PolicyKL"), control.column("PolicyKL"))
    # i+j: each pair sees sets i and j of B // 2 = 8 observations from each buffer
    assert set(reg.regulariser_obs_shapes) == {(T, 16 // 2, 4)}
    # without --regularize_representation the same draws give the action KL instead
    kl = train("qmp_dnc", "--kl_coeff", "0.1", *REPRESENTATION[:2], *REPRESENTATION[4:])
    assert (kl.column("PolicyKL", 0) != reg.column("PolicyKL", 0)).all()


# ----------------------------------------------------------------------------- UDS
@pytest.mark.parametrize("experiment", ["uds_dnc", "qmp_uds_dnc"])
def test_sharing_quantile_drops_shared_data_and_changes_the_update(train, experiment):
    everything = train(experiment, "--sharing_quantile", "0")
    half = train(experiment, "--sharing_quantile", "0.5")
    np.testing.assert_array_equal(everything.column("SharedData"), 1.0)
    shared = half.column("SharedData")
    # B // (T - 1) = 1 transition from each of the 9 other tasks: fractions are k / 9
    np.testing.assert_allclose(shared * 9, np.round(shared * 9), atol=1e-6)
    assert ((shared >= 0) & (shared <= 1)).all() and shared.mean() < 0.9
    # the same random draws; the dropped transitions' zero weights change the critic update
    assert max_param_diff(half, everything, "qf.") > EFFECT
    if experiment == "qmp_uds_dnc":  # the Q-switch collects with other policies too
        assert (half.column("MixtureProbs") < 1).any()


# ----------------------------------------------------------------------------- PCGrad
@pytest.mark.parametrize("experiment, extra", [
    ("mtsac", ("--use_pc_grad", "True")),
    ("qmp_sac", ("--use_pc_grad", "True", "--skip_alpha_pc_grad", "False")),
])
def test_pcgrad_changes_the_update(train, experiment, extra):
    pc, plain = train(experiment, *extra, fixed_pc_order=True), train(experiment)
    assert not plain.pcgrad_groups and pc.pcgrad_groups
    # same random draws, so only the projection of conflicting gradients separates the runs
    assert max_param_diff(pc, plain, "qf.") > EFFECT
    assert max_param_diff(pc, plain, "policy.") > EFFECT


def test_skip_alpha_pc_grad_false_routes_the_temperature_through_pcgrad(train):
    with_alpha = train("qmp_sac", "--use_pc_grad", "True", "--skip_alpha_pc_grad", "False",
                       fixed_pc_order=True)
    without = train("mtsac", "--use_pc_grad", "True", fixed_pc_order=True)
    updates = 2 * 20  # SAC family: 20 gradient steps in each of the 2 epochs
    alpha_group = [(T,)]  # the per-task temperatures
    assert with_alpha.pcgrad_groups.count(alpha_group) == updates
    assert len(with_alpha.pcgrad_groups) == 4 * updates  # policy, Q1, Q2, temperature
    assert alpha_group not in without.pcgrad_groups and len(without.pcgrad_groups) == 3 * updates


# ----------------------------------------------------------------------------- QMP options
def test_min_q_sample_changes_the_switch_choices(train):
    q1_mean, min_q = train("qmp_dnc"), train("qmp_dnc", "--qswitch_score", "min-q-sample")
    # identical networks and random draws in epoch 0: only the score differs
    assert not np.array_equal(q1_mean.selection(0), min_q.selection(0))
    assert not np.array_equal(q1_mean.selection(1), min_q.selection(1))


def selection_counts(r, epochs_steps):
    return sum(np.round(r.selection(e) * n) for e, n in epochs_steps)


def chi_square_uniform(counts):
    expected = counts.sum(1, keepdims=True) / T
    return float(((counts - expected) ** 2 / expected).sum())


CHI2_LIMIT = 150.0  # 90 degrees of freedom: mean 90, sd 13.4; P(chi2 > 150) < 1e-4


def test_uniform_mixture_picks_every_policy_equally_often(train):
    uniform, qswitch = train("qmp_dnc", *WIDE, "--mixture", "uniform"), train("qmp_dnc", *WIDE)
    steps = [(0, 20), (1, 100)]  # warm-up 20 per task, then 1000 / 10
    counts = selection_counts(uniform, steps)
    assert (counts.sum(1) == 120).all()
    assert chi_square_uniform(counts) < CHI2_LIMIT
    assert abs(np.diag(counts).sum() / counts.sum() - 1 / T) < 0.03  # own policy ~ 1/T
    assert chi_square_uniform(selection_counts(qswitch, steps)) > CHI2_LIMIT


def test_mixture_warmup_collects_with_own_policies_only(train):
    warm = train("qmp_dnc", *WIDE, "--mixture", "uniform", "--mixture_warmup", "1")
    no_warm = train("qmp_dnc", *WIDE, "--mixture", "uniform")
    np.testing.assert_array_equal(warm.selection(0), np.eye(T))
    np.testing.assert_array_equal(warm.column("MixtureProbs", 0), 1.0)  # own-policy fraction
    assert not np.array_equal(no_warm.selection(0), np.eye(T))
    assert (no_warm.column("MixtureProbs", 0) < 1).any()
    # after the warm-up epoch the uniform mixture takes over
    assert chi_square_uniform(np.round(warm.selection(1) * 100)) < CHI2_LIMIT


def test_qmp_domain_uses_the_suite_matrix_on_jaco(tmp_path):
    import environments

    matrix = environments.get_suite("JacoReachMT5-v1").domain_mixture
    log_dir = tmp_path / "domain"
    result = invoke(["qmp_dnc", "--env", "JacoReachMT5-v1", *TINY, "--batch_size", "500",
                     "--num_evaluation_episodes", "5", "--mixture", "domain", "--log_dir", str(log_dir)])
    assert result.exit_code == 0, result.output
    row = read_csv(log_dir / "progress.csv")[-1]
    for i in range(5):
        for j in range(5):
            prob = float(row[f"Train/LocalPolicy{i}/Policy{j}Prob"])
            if matrix[i, j] == 0:
                assert prob == 0.0, (i, j)
            elif matrix[i, j] == 1:
                assert prob == 1.0, (i, j)
            else:  # >= 0.17 over 100 draws: never picked with probability < 1e-8
                assert 0.0 < prob < 1.0, (i, j)


def test_qmp_domain_reads_mixture_probs_file(train, tmp_path_factory):
    probs = np.eye(T)
    probs[3] = 0.0
    probs[3, 7] = 1.0  # task 3 always collects with policy 7
    path = tmp_path_factory.mktemp("probs") / "probs.txt"
    np.savetxt(path, probs)
    r = train("qmp_dnc", "--mixture", "domain", "--mixture_probs", str(path))
    for epoch in range(2):
        np.testing.assert_array_equal(r.selection(epoch), probs)
