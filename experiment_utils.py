"""Experiment configuration: the one home of defaults, per-environment presets, validation,
seeding, device choice and log directories (reference §1.2-§1.5)."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from importlib import metadata
from typing import Any

import numpy as np
import torch

from learning.algorithms.dnc import SAMPLING_TYPE_CHOICES
from learning.networks import ARCHITECTURES

ARCHITECTURE_CHOICES = tuple(ARCHITECTURES)  # learning/networks' registry
MIXTURE_CHOICES = ("qswitch", "uniform", "domain")
QSWITCH_SCORE_CHOICES = ("q1-mean", "min-q-sample")


def _f(default: Any, help: str, only: tuple[str, ...] | None = None, **kw) -> Any:
    """A config field with its help text and, optionally, the experiments that accept it."""
    meta = {"help": help, "only": only}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=meta, **kw)
    return field(default=default, metadata=meta, **kw)


QMP = ("qmp_dnc", "qmp_sac", "qmp_uds_dnc")
CTPG = ("ctpg_dnc", "ctpg_sac")
DNC = ("dnc_sac", "qmp_dnc", "uds_dnc", "qmp_uds_dnc", "ctpg_dnc")
UDS = ("uds_dnc", "qmp_uds_dnc")
DISTILL = ("dnc_sac", "uds_dnc")  # the original's MoPDnC (qmp_*) never distils (§1.3)
PC_GRAD = ("mtsac", "qmp_sac", "ctpg_sac")
SHARING = PC_GRAD  # experiments with parameter-sharing architectures (PTSL, CARE, SM, PaCo, MOORE)
RESIDUAL_MODES = ("none", "sum", "linear", "project")
CARE_ARRANGEMENTS = ("mtrl", "per_network")
SM_VARIANTS = ("paper", "ctpg", "mtrl")
BLOCK_GATE_CHOICES = ("alpha", "success")


@dataclass(frozen=True)
class ExperimentConfig:
    """Every option of a run; CLI flags, presets and variant.json all come from these fields."""

    experiment: str = _f("qmp_dnc", "experiment name (positional EXPERIMENT argument)")
    env: str = _f("MazeLarge-10-v0", "environment suite id")
    seed: int = _f(0, "random seed (python, numpy, torch, env seeds)")
    name: str = _f("", "run name, part of the log dir (spaces become '-'; empty: left out)")
    preset: str | None = _f(None, "settings layered over the env's preset: ctpg (CTPG's control and "
                            "guide settings for HalfCheetahMT5-v0, HalfCheetahMT8-v0, MetaWorldMT10-v2, "
                            "MetaWorldMT50-v2, shared by Base / w/ QMP / w/ CTPG; Soft Modularization as "
                            "CTPG's module at its sizes) | ptsl (the PTSL paper's settings on "
                            "MetaWorldMT10-v2 / MetaWorldMT50-v2: batch 1280, lr 3e-4, each architecture "
                            "at the paper's width, CARE in mtrl's arrangement, mtrl's Soft Modularization); "
                            "flags still override")
    n_epochs: int = _f(1000, "number of epochs")
    batch_size: int = _f(1000, "env steps collected per training iteration, total over all tasks")
    steps_per_epoch: int = _f(1, "training iterations (collect + update) per epoch")
    gradient_steps_per_itr: int = _f(1000, "gradient steps per iteration (DnC family: split over tasks)")
    min_buffer_size: int = _f(10000, "warm-up transitions (per task for the DnC family, in total for the SAC family)")
    buffer_batch_size: int = _f(32, "minibatch size per gradient step (per task for the DnC family)")
    lr: float = _f(3e-4, "Adam learning rate of policy, critics and temperature")
    hidden_sizes: tuple[int, ...] = _f((256, 256), "hidden layer widths of policy and Q networks")
    discount: float = _f(0.99, "discount factor gamma")
    target_update_tau: float = _f(0.005, "Polyak coefficient of the target critics")
    target_entropy: float | None = _f(None, "SAC target entropy (default -|A|)")
    reward_scale: float = _f(1.0, "reward multiplier in the critic target")
    grad_clip: float | None = _f(None, "clip the gradient norm of critics, actor and temperature to this "
                                 "(per task for the DnC family's separate learners); unset: no clipping")
    max_alpha: float | None = _f(None, "cap every SAC temperature at this value (CTPG: 1.0); unset: no cap")
    temperature_form: str | None = _f(None, "temperature loss: alpha (loss alpha (-log pi - H)) | log_alpha "
                                      "(loss log alpha (-log pi - H)); unset: the original's, alpha for the "
                                      "SAC family, log_alpha for the DnC family")
    policy_architecture: str | None = _f(None, f"policy network: {'|'.join(ARCHITECTURE_CHOICES)} (default depends on the experiment)")
    Q_architecture: str | None = _f(None, f"Q network: {'|'.join(ARCHITECTURE_CHOICES)} (default depends on the experiment)")
    include_task_id: bool = _f(False, "feed the one-hot task id to the networks")
    sparse_tasks: tuple[int, ...] = _f((), "task indices given a sparse reward (Maze, Kitchen)")
    num_evaluation_episodes: int = _f(10, "evaluation episodes per evaluation, split evenly over tasks")
    evaluation_frequency: int = _f(1, "evaluate every this many epochs")
    snapshot_gap: int = _f(1, "save a snapshot every this many epochs (overwrites params.pt)")
    snapshot_mode: str = _f("last", "last: only params.pt | all: also keep itr_<epoch>.pt every epoch | "
                            "gap: also keep itr_<epoch>.pt every --snapshot_gap epochs")
    snapshot_buffer: bool = _f(False, "snapshots also hold the replay buffer and the env states, so that "
                               "`run.py resume` continues exactly (large: the whole buffer)")
    vis_freq: int = _f(-1, "render evaluation videos (mp4 in <log_dir>/videos) at epoch 0 and every this "
                       "many epochs, a multiple of --evaluation_frequency; -1: off (rendering is slow "
                       "on a CPU: minutes per episode)")
    vis_num: int = _f(10, "videos per rendering, split over tasks (at least one per task)")
    vis_width: int = _f(500, "video frame width in pixels")
    vis_height: int = _f(500, "video frame height in pixels")
    vis_fps: int = _f(40, "video frames per second")
    log_per_task: str = _f("all", "per-task columns of progress.csv, TensorBoard and wandb: all (every "
                           "per-task key, incl. the T x T selection probabilities and per-task losses) | "
                           "summary (per task: success, return, suite statistics, own-policy share) | "
                           "none (pooled keys only)")
    progress_bar: bool | None = _f(None, "tqdm epoch bar (default: only when stderr is a terminal; off a "
                                   "terminal, e.g. sbatch, nohup or sweep logs, the epoch tables print alone)")
    replay_buffer_size: int | None = _f(None, "replay capacity per task (default: 1e6 per task for the "
                                        "DnC family; 1e6 // T per task for sac, mtsac and qmp_sac, "
                                        "whose original keeps one 1e6 buffer for all tasks)")
    envs_per_task: int = _f(1, "parallel training envs per task")
    n_workers: int = _f(1, "processes that step the envs, 1..T * --envs_per_task (1: in this process; "
                        "N > 1: N worker processes, each stepping a contiguous slice of the envs; same "
                        "results; the evaluation envs use min(N, their number) workers)")
    num_threads: int = _f(0, "torch intra-op threads for updates (0: torch's default, one per core); "
                          "use 1 when several runs share the cores")
    device: str = _f("auto", "auto | cpu | cuda | cuda:N (auto picks CUDA when present)")
    gpu: int | None = _f(None, "alias of --device cuda:N")
    log_dir: str | None = _f(None, "log directory (default data/local/experiment/<experiment>_<env>_<seed>, "
                             "or <experiment>_<env>_<name>_<seed> with --name)")
    wandb: bool = _f(False, "also log every epoch's metrics to Weights & Biases (offline when WANDB_MODE=offline "
                     "or no API key is configured; sync later with `wandb sync`)")
    wandb_project: str = _f("qmp", "wandb project (with --wandb)")
    wandb_entity: str | None = _f(None, "wandb entity, user or team (with --wandb; default: your default entity)")
    policy_sampling_freq: int = _f(1, "Q-switch / mixture re-evaluation period in env steps", only=QMP)
    qswitch_score: str = _f("q1-mean", "Q-switch score: q1-mean (original code) | min-q-sample (paper text)", only=QMP)
    mixture: str = _f("qswitch", f"behaviour mixture: {'|'.join(MIXTURE_CHOICES)}", only=QMP)
    mixture_probs: str | None = _f(None, "file with a T x T matrix for --mixture domain", only=QMP)
    mixture_warmup: int = _f(0, "epochs during which each task collects with its own policy only", only=QMP)
    guide_step: int = _f(10, "CTPG: env steps between guide decisions (K)", only=CTPG)
    guide_update_step: int = _f(10, "CTPG: env steps per task per guide gradient step", only=CTPG)
    guide_lr: float = _f(1e-4, "CTPG: Adam learning rate of the guide actor, critics and temperature",
                         only=CTPG)
    guide_tau: float = _f(0.01, "CTPG: Polyak coefficient of the guide critics' targets", only=CTPG)
    guide_hidden_sizes: tuple[int, ...] = _f((), "CTPG: guide network widths (empty: --hidden_sizes)",
                                             only=CTPG)
    guide_batch_size: int | None = _f(None, "CTPG: guide segments per task per step (default: the "
                                      "control minibatch per task)", only=CTPG)
    no_filter_gate: bool = _f(False, "CTPG ablation: no policy-filter gate", only=CTPG)
    no_block_gate: bool = _f(False, "CTPG ablation: no guide-block gate", only=CTPG)
    no_hindsight: bool = _f(False, "CTPG ablation: no hindsight relabelling of guide actions", only=CTPG)
    block_gate: str = _f("alpha", "CTPG guide-block gate: alpha (block tasks with log alpha above the "
                         "mean) | success (block tasks above 0.8 evaluation success)", only=CTPG)
    guide_filter_start: int = _f(10000, "CTPG: env steps per task before the policy-filter gate acts",
                                 only=CTPG)
    guide_mask_logits: bool = _f(True, "CTPG: filter gate masks before the softmax (paper); False: the "
                                 "released code (only the all-masked fallback acts)", only=CTPG)
    guide_task_onehot: bool = _f(True, "CTPG: append the task one-hot to the guide networks' input (the "
                                 "release's guide); False: the observation alone", only=CTPG)
    guide_buffer_size: int | None = _f(None, "CTPG: env steps per task whose guide segments are kept (the "
                                       "release samples guide segments from its replay buffer: capacity / T "
                                       "steps per task); unset: the replay capacity per task", only=CTPG)
    kl_coeff: tuple[float, ...] = _f((0.0,), "DnC regulariser beta: 1 value for every pair or T*T "
                                     "values row-major (row i = policy i's loss against each j)",
                                     only=DNC)
    sampling_type: str = _f("all", f"observations of the DnC regulariser: {'|'.join(SAMPLING_TYPE_CHOICES)}",
                            only=DNC)
    regularize_representation: bool = _f(False, "DnC regulariser = MSE of last hidden activations "
                                         "instead of the policy KL", only=DNC)
    distillation_period: int | None = _f(None, "distil all policies into one every this many epochs "
                                         "(None/0 = never)", only=DISTILL)
    distillation_n_epochs: int = _f(100, "gradient steps of each distillation", only=DISTILL)
    sharing_quantile: float = _f(0.0, "UDS: share other-task data whose Q1 exceeds this quantile "
                                 "of the own batch, in [0, 1)", only=UDS)
    unsupervised: bool = _f(True, "UDS: relabel shared rewards to the suite's minimum reward "
                            "(only True is supported)", only=UDS)
    pal_dim: int = _f(50, "PTSL: size of the task-specific projected layers (PTSL's runs: 50 on MT10 and "
                      "on MT50 at 200k steps, 32 only for its MT50 1M runs)", only=SHARING)
    shared_projection: bool = _f(True, "PTSL: one down/up projection pair shared by the layers",
                                 only=SHARING)
    residual_mode: str = _f("none", f"PTSL residual of the task path: {'|'.join(RESIDUAL_MODES)}",
                            only=SHARING)
    num_experts: int = _f(4, "CARE / MOORE: number of experts", only=SHARING)
    care_arrangement: str = _f("mtrl", "CARE and CARE + PTSL: mtrl (mtrl/PTSL: experts on the state, "
                               "task encoder and experts shared by actor and critic, trained by the "
                               "critic, detached in the actor loss, target encoder at --encoder_tau; "
                               "applies when both networks are care/care_ptsl) | per_network (Meta-World+: "
                               "each network owns all its parts, the critic's experts see [s, a])",
                               only=SHARING)
    encoder_tau: float = _f(0.05, "CARE (--care_arrangement mtrl): Polyak coefficient of the target "
                            "critic's encoder (mtrl: 0.05)", only=SHARING)
    num_param_sets: int = _f(5, "PaCo: number of shared parameter sets (5 for Meta-World, 3 for "
                             "HalfCheetah in CTPG)", only=SHARING)
    sm_variant: str = _f("paper", "Soft Modularization: paper (Soft-Module's code) | ctpg (CTPG's module) | "
                         "mtrl (mtrl's, the PTSL paper's SM baseline: 50-wide state and task encoders, "
                         "modules --hidden_sizes wide, last layer averaged over modules; with both networks "
                         "soft_modular, mtrl's arrangement: the critic's encoders read detached by the actor)",
                         only=SHARING)
    sm_num_layers: int | None = _f(None, "Soft Modularization: module layers (default: paper/ctpg 4, mtrl 2)",
                                   only=SHARING)
    sm_num_modules: int = _f(4, "Soft Modularization: modules per layer", only=SHARING)
    sm_module_hidden: int | None = _f(None, "Soft Modularization: module width (default: paper/ctpg 128, "
                                      "mtrl the last --hidden_sizes width)", only=SHARING)
    sm_gating_hidden: int | None = _f(None, "Soft Modularization: routing width (default: paper/ctpg 256, "
                                      "mtrl the last --hidden_sizes width)", only=SHARING)
    sm_gating_layers: int | None = _f(None, "Soft Modularization: Linear layers between the task-gated "
                                      "embedding and the routing (default: paper 2, ctpg 1 as CTPG's "
                                      "module; mtrl has exactly 1)", only=SHARING)
    extreme_loss_threshold: float | None = _f(None, "a task whose critic loss exceeds this is left out of "
                                              "the critic and actor losses of the step (every method; PaCo "
                                              "also resets its composition); unset: 3000 with PaCo networks, "
                                              "off otherwise")
    extreme_loss_after: int = _f(100_000, "gradient steps before extreme losses are handled")
    task_loss_weights: bool = _f(False, "weight task t's critic and actor losses by T softmax(-log alpha)_t "
                                 "(Soft Modularization's and CTPG's weighting)")
    use_pc_grad: bool = _f(False, "PCGrad on policy and critic gradients", only=PC_GRAD)
    skip_alpha_pc_grad: bool = _f(True, "with --use_pc_grad, leave the temperature out of PCGrad",
                                  only=PC_GRAD)

    @property
    def log_name(self) -> str:
        """``<experiment>_<env>_<seed>``, or ``<experiment>_<env>_<name>_<seed>`` with a --name."""
        parts = [self.experiment, self.env, self.name.replace(" ", "-"), str(self.seed)]
        return "_".join(p for p in parts if p)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# Per-environment overrides of the global defaults (reference §1.4; HalfCheetah: CTPG's settings).
ENV_PRESETS: dict[str, dict[str, Any]] = {
    "JacoReachMT5-v1": dict(n_epochs=2000, batch_size=1000, steps_per_epoch=1, gradient_steps_per_itr=1000,
                            min_buffer_size=10000, buffer_batch_size=32, lr=3e-4, hidden_sizes=(256, 256),
                            num_evaluation_episodes=50),
    "MazeLarge-10-v0": dict(n_epochs=2000, batch_size=6000, steps_per_epoch=1, gradient_steps_per_itr=1000,
                            min_buffer_size=3000, buffer_batch_size=256, lr=3e-4, hidden_sizes=(256, 256),
                            num_evaluation_episodes=100),
    # Quick-start suite (not in the paper, `make run`): the maze's learner settings with a collection
    # batch of 500 steps per task and 100 updates per task per epoch; 101 epochs = 204k env steps,
    # evaluated every 5 epochs (the last at epoch 100).
    "MazeQuick-4-v0": dict(n_epochs=101, batch_size=2000, steps_per_epoch=1, gradient_steps_per_itr=400,
                           min_buffer_size=1000, buffer_batch_size=256, lr=3e-4, hidden_sizes=(256, 256),
                           num_evaluation_episodes=20, evaluation_frequency=5),
    "Walker2dMT4-v0": dict(n_epochs=2000, batch_size=4000, steps_per_epoch=1, gradient_steps_per_itr=6000,
                           min_buffer_size=10000, buffer_batch_size=32, lr=3e-4, hidden_sizes=(256, 256),
                           num_evaluation_episodes=40),
    "MetaWorldCDS-v1": dict(n_epochs=500, batch_size=2000, steps_per_epoch=10, gradient_steps_per_itr=200,
                            min_buffer_size=5000, buffer_batch_size=256, lr=1.5e-3, hidden_sizes=(256, 256),
                            num_evaluation_episodes=40),
    "MetaWorldMT10-v2": dict(n_epochs=1000, batch_size=5000, steps_per_epoch=10, gradient_steps_per_itr=500,
                             min_buffer_size=5000, buffer_batch_size=2560, lr=1.5e-3, hidden_sizes=(256, 256),
                             num_evaluation_episodes=100),
    "MetaWorldMT50-v2": dict(n_epochs=1000, batch_size=25000, steps_per_epoch=8, gradient_steps_per_itr=2500,
                             min_buffer_size=1500, buffer_batch_size=1280, lr=3e-4, hidden_sizes=(400, 400),
                             num_evaluation_episodes=250),
    # The original's Kitchen preset misspells n_epochs (reference §6.1), so 1000 epochs ran.
    "KitchenMTEasy-v0": dict(n_epochs=1000, batch_size=2000, steps_per_epoch=5, gradient_steps_per_itr=500,
                             min_buffer_size=2000, buffer_batch_size=1280, lr=3e-4, hidden_sizes=(256, 256),
                             num_evaluation_episodes=50),
    # CTPG's HalfCheetah settings (anchors §1.12-§1.14) mapped to the DnC-family schedule:
    # 1000-step episodes, one per task per iteration; evaluation every 10k steps per task.
    "HalfCheetahMT5-v0": dict(n_epochs=80, batch_size=5000, steps_per_epoch=10, gradient_steps_per_itr=5000,
                              min_buffer_size=1500, buffer_batch_size=128, lr=1e-4, hidden_sizes=(400, 400),
                              num_evaluation_episodes=160),
    "HalfCheetahMT8-v0": dict(n_epochs=80, batch_size=8000, steps_per_epoch=10, gradient_steps_per_itr=8000,
                              min_buffer_size=1500, buffer_batch_size=128, lr=1e-4, hidden_sizes=(400, 400),
                              num_evaluation_episodes=256),
}
# CTPG's guide settings per benchmark (anchors §1.3, §1.9, §1.12): the guide networks' widths (the
# benchmark's network: 400 x 5 on Meta-World, 400 x 2 on HalfCheetah), 128 segments per task per guide
# step and the release's guide window (its replay capacity / T steps per task, from CTPG_SUITES below).
# Only the CTPG experiments have these flags, so they apply to CTPG runs only.
for _env, _layers, _window in (("MetaWorldMT10-v2", 5, 100_000), ("MetaWorldMT50-v2", 5, 200_000),
                               ("HalfCheetahMT5-v0", 2, 100_000), ("HalfCheetahMT8-v0", 2, 125_000)):
    ENV_PRESETS[_env].update(guide_hidden_sizes=(400,) * _layers, guide_batch_size=128,
                             guide_buffer_size=_window)



@dataclass(frozen=True)
class CTPGSuite:
    """One benchmark of CTPG's main table as the release runs it (DarkDawn233/CTPG
    ``scripts/start.sh`` lines 5-30 and ``config/env/*.yaml``; anchors §1.12)."""

    num_tasks: int  # N
    steps_per_task: int  # num_train_steps (vectorised steps; 1,500,100 / 800,100 rounded down)
    capacity_per_task: int  # replay_buffer.capacity / N
    num_layers: int  # env.network.num_layers: hidden layers of 400 units
    num_param_sets: int  # env.network.paco_num_of_param_set
    paco_layers: int  # env.network.paco_num_layers: PaCo's hidden layers of 400 units
    sm_hidden_layers: int  # env.network.sm_hidden_layers: Soft Modularization's observation embedding


CTPG_SUITES: dict[str, CTPGSuite] = {
    "HalfCheetahMT5-v0": CTPGSuite(5, 800_000, 500_000 // 5, 2, 3, 2, 1),
    "HalfCheetahMT8-v0": CTPGSuite(8, 800_000, 1_000_000 // 8, 2, 3, 2, 1),
    "MetaWorldMT10-v2": CTPGSuite(10, 1_500_000, 1_000_000 // 10, 5, 5, 3, 2),
    "MetaWorldMT50-v2": CTPGSuite(50, 1_500_000, 10_000_000 // 50, 5, 5, 3, 2),
}
PRESET_CHOICES = ("ctpg", "ptsl")
CTPG_STEPS_PER_ITERATION = 10  # vectorised steps per collect/update iteration (= guide_update_step)
CTPG_EVAL_EVERY = 10_000  # steps per task between evaluations (experiment.eval_freq)


def ctpg_preset(env: str, experiment: str, architecture: str | None = None) -> dict[str, Any]:
    """CTPG's control settings as the release runs every cell of its table (anchors §1.11-§1.14).

    The same values for Base (``mtsac``, ``dnc_sac``), w/ QMP (``qmp_sac``, ``qmp_dnc``) and w/ CTPG
    (``ctpg_sac``, ``ctpg_dnc``): Adam 1e-4, tau 0.01, gradient-norm clip 0.1, temperature in the
    alpha form capped at 1, losses weighted T softmax(-log alpha), extreme task losses (> 3000)
    masked after 100k updates, reward x 0.1, 128 transitions per task per update, one update per
    vectorised step after 1500 warm-up steps per task, the release's replay capacity per task,
    400-unit layers (``architecture`` paco / soft_modular: PaCo's layers / SM's observation
    embedding, ``config/env/*.yaml network``), 32 evaluation episodes per task every 10k steps per
    task. Collection and
    updates alternate every ``CTPG_STEPS_PER_ITERATION`` vectorised steps (the release: every
    step), so one guide step follows every 10 control steps, as in the release.

    The two schedule families count differently (learning/trainer.py ``Schedule``): the SAC family
    samples ``buffer_batch_size`` in total and runs ``gradient_steps_per_itr`` updates; the DnC
    family samples ``buffer_batch_size`` per task and runs ``gradient_steps_per_itr // T``.

    Raises:
        ValueError: ``env`` is not one of CTPG's four suites (naming --preset and them).
    """
    if env not in CTPG_SUITES:
        raise ValueError(f"--preset ctpg is defined for CTPG's suites only; --env={env!r}, allowed: "
                         f"{', '.join(CTPG_SUITES)}")
    suite = CTPG_SUITES[env]
    t, k = suite.num_tasks, CTPG_STEPS_PER_ITERATION
    dnc = experiment in DNC
    layers = {"paco": suite.paco_layers, "soft_modular": suite.sm_hidden_layers}.get(architecture or "",
                                                                                   suite.num_layers)
    return dict(
        lr=1e-4, target_update_tau=0.01, discount=0.99, reward_scale=0.1, grad_clip=0.1, max_alpha=1.0,
        temperature_form="alpha", task_loss_weights=True, extreme_loss_threshold=3000.0,
        extreme_loss_after=100_000, hidden_sizes=(400,) * layers,
        num_param_sets=suite.num_param_sets,
        batch_size=k * t, steps_per_epoch=CTPG_EVAL_EVERY // k, evaluation_frequency=1,
        n_epochs=suite.steps_per_task // CTPG_EVAL_EVERY,
        gradient_steps_per_itr=k * t if dnc else k,
        buffer_batch_size=128 if dnc else 128 * t,
        min_buffer_size=1500 if dnc else 1500 * t,
        replay_buffer_size=suite.capacity_per_task, num_evaluation_episodes=32 * t,
        guide_buffer_size=suite.capacity_per_task, guide_batch_size=128,
        guide_hidden_sizes=(400,) * suite.num_layers)


def ctpg_architecture_sizes(env: str, architecture: str | None) -> dict[str, Any]:
    """CTPG's Soft Modularization (``--preset ctpg``): its own module (one gating layer,
    DarkDawn233/CTPG ``mtrl/agent/components/soft_modularization.py`` lines 112-123) at the suite's
    sizes (``config/env/metaworld-mt10.yaml`` lines 33-39; HalfCheetah ``config/env/gym_extensions-*``
    lines 24-30): 4 layers of 4 modules, modules 128 and routing 256 wide on Meta-World, 64 and 128
    on HalfCheetah (the observation embedding's widths come with ``ctpg_preset``)."""
    if architecture != "soft_modular":
        return {}
    small = env.startswith("HalfCheetah")
    return dict(sm_variant="ctpg", sm_num_layers=4, sm_num_modules=4, sm_module_hidden=64 if small else 128,
                sm_gating_hidden=128 if small else 256, sm_gating_layers=1)


# The PTSL paper's runs (JosselinSomervilleRoberts/PTSL README.md lines 160-230, the MT10 / MT50 200k
# commands): hidden width per architecture, 3 hidden layers (SM: its module width).
PTSL_WIDTHS = {"shared_onehot": 400, "multihead": 400, "shared": 400, "care": 400, "ptsl": 367,
               "care_ptsl": 326, "soft_modular": 326}


def ptsl_preset(env: str, experiment: str, architecture: str | None = None) -> dict[str, Any]:
    """The PTSL paper's settings (mtrl's ``state_sac`` with the README's commands, anchors §2.5-§2.6):
    batch 1280, Adam 3e-4, critic tau 0.005, one evaluation episode per task, and each architecture at
    the paper's size: MT-SAC and CARE 400 x 3, SAC + PTSL 367 x 3, CARE + PTSL 326 x 3 (pal_dim 50,
    shared projection, no residual: the parameter-matched widths of the 200k runs, MT50 included),
    CARE with 4 experts in mtrl's arrangement, Soft Modularization as mtrl's (4 modules, width 326:
    the SM command sets no width, so the fork's actor config gives it, ``config/agent/components/
    metaworld_actor.yaml`` line 5). The MT50 1M runs: ``--pal_dim 32`` with 274 (CARE + PTSL) or
    325 (SAC + PTSL).

    Raises:
        ValueError: ``env`` is not MetaWorldMT10-v2 or MetaWorldMT50-v2 (naming --preset and them).
    """
    suites = {"MetaWorldMT10-v2": 10, "MetaWorldMT50-v2": 50}
    if env not in suites:
        raise ValueError(f"--preset ptsl is defined for PTSL's suites only; --env={env!r}, allowed: "
                         f"{', '.join(suites)}")
    width = PTSL_WIDTHS.get(architecture or "", 400)
    return dict(lr=3e-4, buffer_batch_size=1280, target_update_tau=0.005, num_evaluation_episodes=suites[env],
                hidden_sizes=(width,) if architecture == "soft_modular" else (width,) * 3,
                pal_dim=50, shared_projection=True, residual_mode="none", num_experts=4,
                care_arrangement="mtrl", encoder_tau=0.05, sm_variant="mtrl", sm_num_modules=4)


def config_fields() -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(ExperimentConfig) if f.name != "experiment"]


def resolve_config(experiment: str, cli: dict[str, Any]) -> ExperimentConfig:
    """Defaults <- per-environment preset <- ``--preset`` (e.g. :func:`ctpg_preset`) <- flags
    given on the command line (reference §1.4).

    Raises:
        ValueError: an unknown ``--preset`` or one not defined for ``--env``.
    """
    env = cli.get("env") or ExperimentConfig.env
    only = {f.name: f.metadata.get("only") for f in dataclasses.fields(ExperimentConfig)}
    layers = dict(ENV_PRESETS.get(env, {}))
    preset = cli.get("preset")
    if preset is not None:
        if preset not in PRESET_CHOICES:
            raise ValueError(f"--preset={preset!r}; allowed: {', '.join(PRESET_CHOICES)}")
        architecture = cli.get("policy_architecture")
        if preset == "ptsl":
            layers.update(ptsl_preset(env, experiment, architecture))
        else:
            layers.update(ctpg_preset(env, experiment, architecture))
            layers.update(ctpg_architecture_sizes(env, architecture))
    values = {k: v for k, v in layers.items()  # presets of flags this experiment has
              if only[k] is None or experiment in only[k]}
    values.update({k: v for k, v in cli.items() if v is not None})
    values["experiment"] = experiment
    return ExperimentConfig(**values)


def set_seed(seed: int) -> None:
    """Seed python, numpy and torch; deterministic cuDNN (reference §1.5)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


def resolve_device(device: str, gpu: int | None = None) -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``--gpu N`` is an alias of ``cuda:N``.

    Raises:
        ValueError: malformed --device, or CUDA requested but unavailable.
    """
    if gpu is not None:
        device = f"cuda:{gpu}"
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device != "cpu" and not (device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit())):
        raise ValueError(f"--device={device!r}; allowed: auto, cpu, cuda, cuda:N")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"--device={device} but CUDA is not available; use --device cpu or auto")
    return torch.device(device)


def config_from_variant(variant: dict[str, Any]) -> ExperimentConfig:
    """The :class:`ExperimentConfig` stored in a ``variant.json`` (extra keys such as ``resolved``,
    ``argv`` or ``versions`` are ignored; fields missing from older files keep their defaults)."""
    names = {f.name for f in dataclasses.fields(ExperimentConfig)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in variant.items() if k in names}
    return ExperimentConfig(**values)


def read_variant(log_dir: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``<log_dir>/variant.json`` of a run.

    Raises:
        ValueError: no such file (not a run directory), or it is unreadable or not a JSON object
            (the message names the file).
    """
    path = Path(log_dir) / "variant.json"
    if not path.is_file():
        raise ValueError(f"LOGDIR {log_dir} holds no variant.json: not a run directory")
    try:
        variant = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"{path} is unreadable ({err}); it is the run's configuration: restore it "
                         "(or rewrite it from the run's command line) before resuming or evaluating") from None
    if not isinstance(variant, dict) or not isinstance(variant.get("experiment"), str):
        raise ValueError(f"{path} is not a run configuration (a JSON object with an \"experiment\" "
                         "and the run's flags)")
    return variant


def log_dir_base(config: ExperimentConfig) -> Path:
    """``--log_dir`` or ``data/local/experiment/<log_name>`` (see :attr:`ExperimentConfig.log_name`)."""
    return Path(config.log_dir) if config.log_dir else Path("data/local/experiment") / config.log_name


def check_log_dir(config: ExperimentConfig) -> None:
    """Raise ValueError naming --log_dir when the run's directory could not be created.

    The nearest existing ancestor must be a directory in which a directory can be made (checked
    before any env is built by making and removing an empty one there: permission bits alone do
    not tell, e.g. ``/proc`` looks writable to root).
    """
    base = log_dir_base(config).absolute()
    if base.exists() and not base.is_dir():
        raise ValueError(f"--log_dir {base} exists and is not a directory")
    parent = base.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--log_dir {base} cannot be created: {parent} is not a writable directory")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".qmp-log-dir-check-", dir=parent))
    except OSError as err:
        raise ValueError(f"--log_dir {base} cannot be created: no directory can be made in {parent} "
                         f"({err.strerror})") from None


VERSIONED_PACKAGES = ("torch", "mujoco", "gymnasium", "metaworld")


def package_versions() -> dict[str, str | None]:
    """Versions of python and of the packages that decide a run's numbers (None: not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSIONED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


def git_state(directory: str | os.PathLike | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding ``directory`` (default: this file's);
    ``(None, None)`` when it is not a git checkout or git is missing. ``dirty``: tracked files
    differ from the commit (untracked files are not counted)."""
    cwd = Path(directory) if directory is not None else Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = git("status", "--porcelain", "--untracked-files=no")
    return commit, (None if status is None else bool(status))


def run_provenance(argv: list[str] | None = None) -> dict[str, Any]:
    """How the run was started: the command line (list and shell-quoted), the git commit of
    this repository with a dirty flag, and the package versions."""
    argv = list(sys.argv if argv is None else argv)
    commit, dirty = git_state()
    return {"argv": argv, "command": shlex.join(argv), "git_commit": commit, "git_dirty": dirty,
            "versions": package_versions()}


def make_log_dir(config: ExperimentConfig, resolved: dict[str, Any] | None = None) -> Path:
    """Create the run's log dir and write ``variant.json``: the config fields, the values actually
    used where a flag's default is resolved at build time (under ``"resolved"``), and the
    provenance of :func:`run_provenance` (``argv``, ``command``, ``git_commit``, ``git_dirty``,
    ``versions``). :func:`config_from_variant` reads the config back.

    An existing dir is never reused (a ``_1``, ``_2`` ... suffix is added).
    """
    base = log_dir_base(config)
    path, k = base, 0
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}_{k}")
    path.mkdir(parents=True)
    with open(path / "variant.json", "w") as f:
        json.dump({**config.to_dict(), "resolved": resolved or {}, **run_provenance()}, f, indent=2,
                  default=str)
    return path


def default_target_entropy(config: ExperimentConfig, act_dim: int) -> float:
    """``--target_entropy`` or -|A| (reference §3.1; the original treats 0 as unset too)."""
    return float(config.target_entropy) if config.target_entropy else -float(act_dim)


def env_flag(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false", "False")
