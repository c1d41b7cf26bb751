"""One builder per experiment: config -> env suite -> networks -> behaviour policy ->
algorithm -> trainer (reference §1.1; garage's experiment launchers)."""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import environments
from environments.base import TaskSuite
from experiment_utils import (ARCHITECTURE_CHOICES, BLOCK_GATE_CHOICES, CTPG_SUITES, DISTILL, PRESET_CHOICES,
                              RESIDUAL_MODES, CARE_ARRANGEMENTS, SM_VARIANTS, MIXTURE_CHOICES, PC_GRAD,
                              QSWITCH_SCORE_CHOICES, SAMPLING_TYPE_CHOICES, UDS,
                              ExperimentConfig, check_log_dir, config_from_variant, default_target_entropy,
                              make_log_dir,
                              resolve_device, set_seed)
from learning.algorithms.ctpg_training import GuideTraining
from learning.algorithms.dnc import DnCSAC, kl_coefficients
from learning.algorithms.sac import TEMPERATURE_FORMS, MultiTaskSAC
from learning.algorithms.uds import UDSSAC
from learning.logging import PER_TASK_LEVELS
from learning.networks import TASK_CONDITIONED
from learning.policies.behaviour import OwnPolicy
from learning.policies.ctpg_guide import CTPGBehaviour, build_guide
from learning.policies.mixture_policies_wrapper import MixtureOfPolicies
from learning.policies.qswitch_mixture_policies_wrapper import QSwitchMixturePolicy
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.care_twin_q import CARE_TRUNKS, make_twin_q, share_care_parts
from learning.q_functions.sm_twin_q import share_sm_parts
from learning.replay_buffer import TaskReplayBuffer
from learning.segment_buffer import SegmentBuffer, SegmentRecorder
from learning.sampler import Sampler
from learning.trainer import SNAPSHOT_MODES, Schedule, Trainer

EVAL_ENV_BUDGET = 50  # evaluation sub-envs in total; episodes beyond run in waves


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment is made of and which architectures it accepts (reference §1.1)."""

    family: str  # "dnc": per-task buffers, warm-up and gradient split; "sac": shared-learner schedule
    qmp: bool  # behaviour policy is a mixture of the task policies
    architectures: tuple[str, ...]  # allowed --policy_architecture / --Q_architecture
    default_architecture: str
    per_task_alpha: bool
    summary: str
    ctpg: bool = False  # behaviour policy is CTPG's guide over the task policies


EXPERIMENTS: dict[str, ExperimentSpec] = {
    "sac": ExperimentSpec("sac", False, ("shared", "multihead"), "shared", False,
                          "Shared: one SAC agent for all tasks"),
    "mtsac": ExperimentSpec("sac", False, ("shared", *TASK_CONDITIONED), "multihead", True,
                            "Parameters: multi-task SAC with per-task temperature"),
    "dnc_sac": ExperimentSpec("dnc", False, ("separate",), "separate", True,
                              "Separated: one SAC learner per task"),
    "qmp_dnc": ExperimentSpec("dnc", True, ("separate",), "separate", True,
                              "Separated + QMP"),
    "qmp_sac": ExperimentSpec("sac", True, TASK_CONDITIONED, "multihead", True,
                              "Parameters + QMP (multi-head)"),
    "uds_dnc": ExperimentSpec("dnc", False, ("separate",), "separate", True,
                              "Data: Separated + unsupervised data sharing"),
    "qmp_uds_dnc": ExperimentSpec("dnc", True, ("separate",), "separate", True,
                                  "Data + QMP"),
    "ctpg_dnc": ExperimentSpec("dnc", False, ("separate",), "separate", True,
                               "Separated + CTPG (cross-task policy guidance)", ctpg=True),
    "ctpg_sac": ExperimentSpec("sac", False, TASK_CONDITIONED, "multihead", True,
                               "Parameters + CTPG (multi-head MTSAC with a guide; --use_pc_grad for "
                               "PCGrad + CTPG)", ctpg=True),
}


def architecture_options(config: ExperimentConfig, architecture: str) -> dict:
    """The architecture's own keyword arguments from the flags (learning/networks)."""
    ptsl = dict(pal_dim=config.pal_dim, shared_projection=config.shared_projection,
                residual_mode=config.residual_mode)
    return {"ptsl": ptsl,
            "care": dict(num_experts=config.num_experts),
            "care_ptsl": dict(num_experts=config.num_experts, **ptsl),
            "moore": dict(num_experts=config.num_experts),
            "soft_modular": dict(variant=config.sm_variant, num_layers=config.sm_num_layers,
                                 num_modules=config.sm_num_modules, module_hidden=config.sm_module_hidden,
                                 gating_hidden=config.sm_gating_hidden,
                                 num_gating_layers=config.sm_gating_layers),
            "paco": dict(num_param_sets=config.num_param_sets)}.get(architecture, {})


def parameter_count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def resolved_values(config: ExperimentConfig, num_tasks: int, act_dim: int) -> dict:
    """Values fixed from the flags and the suite at build time (variant.json's ``resolved``):
    architectures, replay capacity per task, target entropy, evaluation episodes per task, device."""
    policy_arch, q_arch = architectures(config)
    extra = {}
    if EXPERIMENTS[config.experiment].ctpg:
        extra["guide_buffer_size_per_task"] = guide_window(config, num_tasks)
    return dict(num_tasks=num_tasks, policy_architecture=policy_arch, Q_architecture=q_arch,
                temperature_loss=temperature_form(config), extreme_loss_threshold=extreme_loss_threshold(config),
                **extra, replay_buffer_size_per_task=replay_capacity_per_task(config, num_tasks),
                target_entropy=default_target_entropy(config, act_dim),
                evaluation_episodes_per_task=max(1, config.num_evaluation_episodes // num_tasks),
                device=str(resolve_device(config.device, config.gpu)))


def architectures(config: ExperimentConfig) -> tuple[str, str]:
    spec = EXPERIMENTS[config.experiment]
    return (config.policy_architecture or spec.default_architecture,
            config.Q_architecture or spec.default_architecture)


POSITIVE_INT_FLAGS = ("n_epochs", "batch_size", "steps_per_epoch", "gradient_steps_per_itr",
                      "buffer_batch_size", "num_evaluation_episodes", "evaluation_frequency",
                      "snapshot_gap", "envs_per_task", "policy_sampling_freq", "guide_step",
                      "guide_update_step")
MAX_SEED = 2**32 - 1  # numpy's seed range
ORIGINAL_REPLAY_CAPACITY = 1_000_000  # the original's PathBuffer capacity (reference §1.1, §2.3)


def replay_capacity_per_task(config: ExperimentConfig, num_tasks: int) -> int:
    """Transitions kept per task buffer (reference §1.1, §2.3).

    ``--replay_buffer_size`` when given; else the original's capacities: one 1e6 buffer per task
    for the DnC family, and one 1e6 buffer shared by all tasks for the SAC family (``sac``,
    ``mtsac``, ``qmp_sac``), i.e. ``1e6 // T`` per task here, since every task collects the same
    number of steps and a shared ring then holds the same newest ``1e6 // T`` of each task.
    """
    if config.replay_buffer_size is not None:
        return config.replay_buffer_size
    if EXPERIMENTS[config.experiment].family == "dnc":
        return ORIGINAL_REPLAY_CAPACITY
    return ORIGINAL_REPLAY_CAPACITY // num_tasks


PACO_EXTREME_LOSS_THRESHOLD = 3000.0  # PaCo's and CTPG's mask_loss_threshold (anchors §1.4)


def temperature_form(config: ExperimentConfig) -> str:
    """``--temperature_form``, or the original's: ``alpha`` for its SAC family, ``log_alpha`` for
    its DnC family (reference §3.1 step 3)."""
    if config.temperature_form is not None:
        return config.temperature_form
    return "log_alpha" if EXPERIMENTS[config.experiment].family == "dnc" else "alpha"


def extreme_loss_threshold(config: ExperimentConfig) -> float | None:
    """``--extreme_loss_threshold``, or 3000 when a network is PaCo (its own trick), else None (off)."""
    if config.extreme_loss_threshold is not None:
        return config.extreme_loss_threshold
    return PACO_EXTREME_LOSS_THRESHOLD if "paco" in architectures(config) else None


def guide_window(config: ExperimentConfig, num_tasks: int) -> int:
    """Env steps per task whose guide segments are kept: ``--guide_buffer_size``, or the replay
    capacity per task (the release samples guide segments from its control replay buffer)."""
    if config.guide_buffer_size is not None:
        return config.guide_buffer_size
    return replay_capacity_per_task(config, num_tasks)


def validate(config: ExperimentConfig) -> TaskSuite:
    """Check every flag before any work; returns the suite.

    Raises:
        ValueError: naming the flag and its allowed values.
    """
    if config.experiment not in EXPERIMENTS:
        raise ValueError(f"EXPERIMENT={config.experiment!r}; allowed: {', '.join(EXPERIMENTS)}")
    spec = EXPERIMENTS[config.experiment]
    for flag in POSITIVE_INT_FLAGS:
        if getattr(config, flag) <= 0:
            raise ValueError(f"--{flag} must be a positive integer, got {getattr(config, flag)}")
    if config.vis_freq != -1 and (config.vis_freq <= 0 or config.vis_freq % config.evaluation_frequency):
        raise ValueError(f"--vis_freq must be -1 (off) or a positive multiple of --evaluation_frequency "
                         f"({config.evaluation_frequency}), got {config.vis_freq}")
    for flag in ("vis_num", "vis_width", "vis_height", "vis_fps"):
        if getattr(config, flag) <= 0:
            raise ValueError(f"--{flag} must be a positive integer, got {getattr(config, flag)}")
    if config.residual_mode not in RESIDUAL_MODES:
        raise ValueError(f"--residual_mode={config.residual_mode!r}; allowed: {', '.join(RESIDUAL_MODES)}")
    if {"ptsl", "care_ptsl"} & set(architectures(config)) and config.shared_projection and len(set(config.hidden_sizes)) > 1:
        raise ValueError("--shared_projection True needs equal --hidden_sizes (one projection pair for "
                         f"every layer); got {config.hidden_sizes}")
    if config.care_arrangement not in CARE_ARRANGEMENTS:
        raise ValueError(f"--care_arrangement={config.care_arrangement!r}; allowed: {', '.join(CARE_ARRANGEMENTS)}")
    if not 0 < config.encoder_tau <= 1:
        raise ValueError(f"--encoder_tau must be in (0, 1], got {config.encoder_tau}")
    if config.sm_variant not in SM_VARIANTS:
        raise ValueError(f"--sm_variant={config.sm_variant!r}; allowed: {', '.join(SM_VARIANTS)}")
    for flag in ("sm_num_layers", "sm_module_hidden", "sm_gating_hidden", "sm_gating_layers"):
        if getattr(config, flag) is not None and getattr(config, flag) < (2 if flag == "sm_num_layers" else 1):
            raise ValueError(f"--{flag} must be at least {2 if flag == 'sm_num_layers' else 1}, "
                             f"got {getattr(config, flag)}")
    if config.sm_variant == "mtrl" and config.sm_gating_layers not in (None, 1):
        raise ValueError(f"--sm_gating_layers={config.sm_gating_layers} with --sm_variant mtrl; allowed: 1 "
                         "(mtrl's routing has one projection)")
    for flag in ("pal_dim", "num_experts", "num_param_sets", "sm_num_modules"):
        if getattr(config, flag) <= 0:
            raise ValueError(f"--{flag} must be a positive integer, got {getattr(config, flag)}")
    if config.snapshot_mode not in SNAPSHOT_MODES:
        raise ValueError(f"--snapshot_mode={config.snapshot_mode!r}; allowed: {', '.join(SNAPSHOT_MODES)}")
    if config.log_per_task not in PER_TASK_LEVELS:
        raise ValueError(f"--log_per_task={config.log_per_task!r}; allowed: {', '.join(PER_TASK_LEVELS)}")
    if config.num_threads < 0:
        raise ValueError(f"--num_threads must be >= 0, got {config.num_threads}")
    if config.min_buffer_size < 0:
        raise ValueError(f"--min_buffer_size must be >= 0, got {config.min_buffer_size}")
    if not config.hidden_sizes or min(config.hidden_sizes) <= 0:
        raise ValueError(f"--hidden_sizes must be positive integers, got {config.hidden_sizes}")
    if not config.lr > 0:
        raise ValueError(f"--lr must be > 0, got {config.lr}")
    if not 0 < config.discount <= 1:
        raise ValueError(f"--discount must be in (0, 1], got {config.discount}")
    if not 0 < config.target_update_tau <= 1:
        raise ValueError(f"--target_update_tau must be in (0, 1], got {config.target_update_tau}")
    for flag in ("grad_clip", "max_alpha", "extreme_loss_threshold", "guide_buffer_size"):
        value = getattr(config, flag)
        if value is not None and not value > 0:
            raise ValueError(f"--{flag} must be > 0 (or unset), got {value}")
    if config.temperature_form is not None and config.temperature_form not in TEMPERATURE_FORMS:
        raise ValueError(f"--temperature_form={config.temperature_form!r}; "
                         f"allowed: {', '.join(TEMPERATURE_FORMS)}")
    if config.preset is not None and config.preset not in PRESET_CHOICES:
        raise ValueError(f"--preset={config.preset!r}; allowed: {', '.join(PRESET_CHOICES)}")
    if config.preset == "ctpg" and config.env not in CTPG_SUITES:
        raise ValueError(f"--preset ctpg is defined for CTPG's suites only; --env={config.env!r}, "
                         f"allowed: {', '.join(CTPG_SUITES)}")
    if not 0 <= config.seed <= MAX_SEED:
        raise ValueError(f"--seed must be in [0, 2**32 - 1], got {config.seed}")
    if "/" in config.name:
        raise ValueError(f"--name must not contain '/' (it is part of the log dir name), "
                         f"got {config.name!r}; use --log_dir for another location")
    if config.replay_buffer_size is not None and config.replay_buffer_size <= 0:
        raise ValueError(f"--replay_buffer_size must be a positive integer, got {config.replay_buffer_size}")
    for flag, arch in zip(("policy_architecture", "Q_architecture"), architectures(config)):
        if arch not in ARCHITECTURE_CHOICES:
            raise ValueError(f"--{flag}={arch!r}; allowed: {', '.join(ARCHITECTURE_CHOICES)}")
        if arch not in spec.architectures:
            raise ValueError(f"--{flag}={arch!r} cannot be used by {config.experiment}; "
                             f"allowed: {', '.join(spec.architectures)}")
    if (spec.qmp or spec.ctpg) and config.include_task_id:
        raise ValueError(f"--include_task_id True cannot be used by {config.experiment}: it "
                         "runs every task's policy on every task's states; allowed: False")
    if config.block_gate not in BLOCK_GATE_CHOICES:
        raise ValueError(f"--block_gate={config.block_gate!r}; allowed: {', '.join(BLOCK_GATE_CHOICES)}")
    if not config.guide_lr > 0 or not 0 < config.guide_tau <= 1:
        raise ValueError(f"--guide_lr must be > 0 and --guide_tau in (0, 1]; got {config.guide_lr}, "
                         f"{config.guide_tau}")
    if config.guide_batch_size is not None and config.guide_batch_size <= 0:
        raise ValueError(f"--guide_batch_size must be a positive integer, got {config.guide_batch_size}")
    if config.guide_hidden_sizes and min(config.guide_hidden_sizes) <= 0:
        raise ValueError(f"--guide_hidden_sizes must be positive integers, got {config.guide_hidden_sizes}")
    if config.guide_filter_start < 0:
        raise ValueError(f"--guide_filter_start must be >= 0, got {config.guide_filter_start}")
    if config.experiment == "mtsac" and "shared" in architectures(config) and not config.include_task_id:
        raise ValueError("mtsac with a shared network needs --include_task_id True (allowed: True)")
    if config.mixture not in MIXTURE_CHOICES:
        raise ValueError(f"--mixture={config.mixture!r}; allowed: {', '.join(MIXTURE_CHOICES)}")
    if config.qswitch_score not in QSWITCH_SCORE_CHOICES:
        raise ValueError(f"--qswitch_score={config.qswitch_score!r}; "
                         f"allowed: {', '.join(QSWITCH_SCORE_CHOICES)}")
    if config.mixture_warmup < 0:
        raise ValueError(f"--mixture_warmup must be >= 0, got {config.mixture_warmup}")
    if config.sampling_type not in SAMPLING_TYPE_CHOICES:
        raise ValueError(f"--sampling_type={config.sampling_type!r}; "
                         f"allowed: {', '.join(SAMPLING_TYPE_CHOICES)}")
    if config.distillation_period and config.experiment not in DISTILL:
        raise ValueError(f"--distillation_period cannot be used by {config.experiment}; "
                         f"allowed for: {', '.join(DISTILL)}")
    if config.distillation_period is not None and config.distillation_period < 0:
        raise ValueError(f"--distillation_period must be >= 0 (0 = off), got {config.distillation_period}")
    if config.distillation_n_epochs <= 0:
        raise ValueError(f"--distillation_n_epochs must be a positive integer, "
                         f"got {config.distillation_n_epochs}")
    if not 0.0 <= config.sharing_quantile < 1.0:
        raise ValueError(f"--sharing_quantile must be in [0, 1), got {config.sharing_quantile}")
    if config.experiment in UDS:
        if not config.unsupervised:
            raise ValueError("--unsupervised False is not supported: no suite provides per-task "
                             "reward functions for supervised relabelling; allowed: True")
        if any(c != 0 for c in config.kl_coeff):
            raise ValueError(f"--kl_coeff must be 0 for {config.experiment} (the original asserts "
                             "kl_coeff == [0] for data sharing); allowed: 0")
    if config.use_pc_grad and config.experiment not in PC_GRAD:
        raise ValueError(f"--use_pc_grad True cannot be used by {config.experiment}: PCGrad needs "
                         f"parameters shared across tasks; allowed for: {', '.join(PC_GRAD)}")
    if config.mixture_probs is not None and not (spec.qmp and config.mixture == "domain"):
        raise ValueError("--mixture_probs is only read with --mixture domain; "
                         f"got --mixture {config.mixture}")
    resolve_device(config.device, config.gpu)
    check_log_dir(config)
    suite = environments.get_suite(config.env, tuple(config.sparse_tasks))
    t = suite.num_tasks
    if (spec.qmp or spec.ctpg) and t < 2:
        raise ValueError(f"{config.experiment} mixes the policies of several tasks but --env={config.env} "
                         f"has {t} task; use a multi-task suite ({', '.join(environments.known_env_ids())})")
    if not 1 <= config.n_workers <= t * config.envs_per_task:
        raise ValueError(f"--n_workers must be in 1..{t * config.envs_per_task} (at most one worker per env: "
                         f"{t} tasks x --envs_per_task {config.envs_per_task}), got {config.n_workers}")
    if config.num_evaluation_episodes < t:
        raise ValueError(f"--num_evaluation_episodes must be at least the number of tasks ({t}) of "
                         f"{config.env}: episodes are split evenly over tasks, "
                         f"got {config.num_evaluation_episodes}")
    capacity = replay_capacity_per_task(config, t)
    stored = capacity if spec.family == "dnc" else capacity * t
    if stored < config.min_buffer_size:
        per = "per task" if spec.family == "dnc" else f"in total over {t} tasks"
        raise ValueError(f"--replay_buffer_size {capacity} per task holds {stored} transitions {per}, "
                         f"fewer than --min_buffer_size {config.min_buffer_size}: no gradient step "
                         "would ever run")
    kl_coefficients(config.kl_coeff, suite.num_tasks)  # length / sign check (names --kl_coeff)
    if spec.qmp and config.mixture == "domain" and config.mixture_probs is None \
            and suite.domain_mixture is None:
        raise ValueError(f"--mixture domain needs --mixture_probs FILE: {config.env} "
                         "provides no domain mixture")
    if spec.qmp and config.mixture != "qswitch":
        check_mixture_probs(load_mixture_probs(config, suite), suite.num_tasks)
    return suite


def check_mixture_probs(probs: np.ndarray, num_tasks: int) -> None:
    """Raise ValueError naming --mixture_probs unless ``probs`` is (T, T), >= 0, rows summing to 1."""
    if probs.shape != (num_tasks, num_tasks) or (probs < 0).any() \
            or not np.allclose(probs.sum(1), 1.0, atol=1e-4):
        raise ValueError(f"--mixture_probs must hold a {num_tasks} x {num_tasks} non-negative matrix "
                         f"whose rows sum to 1; got shape {probs.shape}")


def load_mixture_probs(config: ExperimentConfig, suite: TaskSuite) -> np.ndarray:
    """Uniform 1/T, the suite's domain matrix, or a T x T matrix read with numpy.loadtxt."""
    t = suite.num_tasks
    if config.mixture == "uniform":
        return np.full((t, t), 1.0 / t)
    if config.mixture_probs is not None:
        try:
            return np.loadtxt(config.mixture_probs, ndmin=2)
        except (OSError, ValueError) as err:
            raise ValueError(f"--mixture_probs {config.mixture_probs}: cannot read a matrix ({err})") from None
    return np.asarray(suite.domain_mixture)


def build_trainer(config: ExperimentConfig, log_dir: Path | None = None) -> Trainer:
    """Assemble every component of a run (DESIGN §3 data flow).

    Args:
        config: the run's configuration.
        log_dir: an existing run directory to reuse (resume, evaluate); by default a new one is
            created and ``variant.json`` written.
    """
    suite = validate(config)
    spec = EXPERIMENTS[config.experiment]
    set_seed(config.seed)
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device, config.gpu)
    t = suite.num_tasks
    probe = suite.make_env(0)
    raw_dim, act_dim = probe.observation_space.shape[0], probe.action_space.shape[0]
    probe.close()
    obs_idx = suite.network_obs_indices(raw_dim, config.include_task_id)
    policy_arch, q_arch = architectures(config)
    hidden = tuple(config.hidden_sizes)
    policy_options, q_options = architecture_options(config, policy_arch), architecture_options(config, q_arch)
    if config.care_arrangement == "mtrl" and {policy_arch, q_arch} <= set(CARE_TRUNKS):
        policy_options, q_options = share_care_parts(t, len(obs_idx), policy_options, q_options,
                                                     config.encoder_tau, device)
    if config.sm_variant == "mtrl" and policy_arch == q_arch == "soft_modular":  # mtrl's SM arrangement
        policy_options, q_options = share_sm_parts(t, len(obs_idx), policy_options, q_options,
                                                   config.encoder_tau, device)
    policy = TanhGaussianPolicy(policy_arch, t, len(obs_idx), act_dim, hidden, policy_options).to(device)
    qf = make_twin_q(q_arch, t, len(obs_idx), act_dim, hidden, q_options).to(device)
    capacity = replay_capacity_per_task(config, t)
    buffer = TaskReplayBuffer(t, capacity, len(obs_idx), act_dim, device,
                              stream_width=config.envs_per_task)
    target_entropy = default_target_entropy(config, act_dim)
    threshold = extreme_loss_threshold(config)
    common = dict(per_task_alpha=spec.per_task_alpha, lr=config.lr, discount=config.discount,
                  tau=config.target_update_tau, reward_scale=config.reward_scale,
                  target_entropy=target_entropy,
                  task_reduction="sum" if spec.family == "dnc" else "mean",
                  use_pc_grad=config.use_pc_grad, pc_grad_alpha=not config.skip_alpha_pc_grad,
                  temperature_form=temperature_form(config), task_loss_weights=config.task_loss_weights,
                  extreme_loss=None if threshold is None else (threshold, config.extreme_loss_after),
                  grad_clip=config.grad_clip, max_alpha=config.max_alpha)
    if spec.family == "dnc":
        dnc = dict(buffer=buffer, kl_coeff=config.kl_coeff, sampling_type=config.sampling_type,
                   regularize_representation=config.regularize_representation,
                   batch_size=config.buffer_batch_size,
                   distillation_period=config.distillation_period,
                   distillation_n_epochs=config.distillation_n_epochs)
        if config.experiment in UDS:
            # Buffers hold network observations for both UDS experiments (fixes §6.5).
            algorithm = UDSSAC(policy, qf, t, **common, **dnc, min_reward=suite.min_reward,
                               sharing_quantile=config.sharing_quantile)
        else:
            algorithm = DnCSAC(policy, qf, t, **common, **dnc)
    else:
        algorithm = MultiTaskSAC(policy, qf, t, **common)
    own = OwnPolicy(policy)
    behaviour, eval_modes = own, {"": own}
    if spec.qmp:
        if config.mixture == "qswitch":
            behaviour = QSwitchMixturePolicy(policy, qf, config.policy_sampling_freq,
                                             config.qswitch_score)
        else:
            behaviour = MixtureOfPolicies(policy, torch.as_tensor(load_mixture_probs(config, suite)),
                                          config.policy_sampling_freq)
        eval_modes = {"": behaviour, "p/": own}
    schedule = Schedule(spec.family, t, config.envs_per_task, config.batch_size,
                        config.min_buffer_size, config.gradient_steps_per_itr,
                        config.buffer_batch_size)
    guide_training = None
    if spec.ctpg:  # the guide collects; evaluation uses the control policies alone
        guide_training = build_guide_training(config, algorithm, schedule, len(obs_idx), act_dim,
                                              capacity, device)
        behaviour = guide_training.behaviour
    episodes = max(1, config.num_evaluation_episodes // t)
    # --n_workers: the vector envs step their sub-envs in that many processes (at most one per env)
    eval_envs = min(episodes, max(1, EVAL_ENV_BUDGET // t))
    sampler = Sampler(dataclasses.replace(suite, n_workers=config.n_workers), config.envs_per_task,
                      obs_idx, device, config.seed, discount=config.discount)
    eval_sampler = None
    try:
        eval_sampler = Sampler(dataclasses.replace(suite, n_workers=min(config.n_workers, t * eval_envs)),
                               eval_envs, obs_idx, device, config.seed + 10_000, test=True,
                               discount=config.discount)
        resolved = dict(resolved_values(config, t, act_dim),
                        policy_parameters=parameter_count(policy), Q_parameters=parameter_count(qf))
        log_dir = make_log_dir(config, resolved) if log_dir is None else Path(log_dir)
        recorder = video_recorder(config, suite, eval_modes, obs_idx, device, log_dir)
        return Trainer(config, suite, algorithm, behaviour, own, eval_modes, buffer, sampler,
                       eval_sampler, schedule, log_dir, on_evaluation=recorder,
                       guide_training=guide_training)
    except BaseException:  # no env worker process outlives a failed build
        for built in (sampler, eval_sampler):
            if built is not None:
                built.close()
        raise


def build_guide_training(config: ExperimentConfig, algorithm: MultiTaskSAC, schedule: Schedule,
                         obs_dim: int, act_dim: int, capacity: int, device) -> GuideTraining:
    """CTPG's guide learner, behaviour, segment storage and schedule (anchors §1.2-§1.9): a
    multi-head guide on [observation, task one-hot] (the release's, whatever the control network;
    ``--guide_task_onehot False``: the observation alone), segments of ``--guide_step`` K steps
    kept for the newest :func:`guide_window` steps per task (window // K segments)."""
    t, k = algorithm.num_tasks, config.guide_step
    hidden = tuple(config.guide_hidden_sizes) or tuple(config.hidden_sizes)
    guide = build_guide("multihead", t, obs_dim, hidden, task_onehot=config.guide_task_onehot,
                        lr=config.guide_lr, discount=config.discount, tau=config.guide_tau,
                        reward_scale=config.reward_scale).to(device)
    behaviour = CTPGBehaviour(algorithm.policy, algorithm.qf, guide, algorithm.log_alpha,
                              guide_step=k, filter_gate=not config.no_filter_gate,
                              block_gate=not config.no_block_gate, block_mode=config.block_gate,
                              mask_logits=config.guide_mask_logits,
                              filter_start=config.guide_filter_start)
    segments = SegmentBuffer(t, max(1, guide_window(config, t) // k), obs_dim, act_dim, k, device)
    return GuideTraining(guide, behaviour, segments, SegmentRecorder(segments, config.envs_per_task),
                         algorithm, t, config.guide_batch_size or schedule.minibatch_per_task(),
                         config.guide_update_step, hindsight=not config.no_hindsight)


def video_recorder(config: ExperimentConfig, suite: TaskSuite, eval_modes: dict, obs_idx,
                   device, log_dir: Path):
    """``--vis_freq``: a callback for the trainer that renders evaluation episodes of every
    evaluation mode to ``<log_dir>/videos`` at epoch 0 and every ``vis_freq`` epochs (reference
    §1.2); None when off. A rendering failure is reported and training continues."""
    if config.vis_freq <= 0:
        return None

    def record(epoch: int) -> None:
        if epoch % config.vis_freq:
            return
        from tools.video import record_videos
        for prefix, behaviour in eval_modes.items():
            tag = f"epoch{epoch}" + (f"_{prefix.strip('/')}" if prefix else "")
            try:
                record_videos(suite, behaviour, obs_idx, device, log_dir / "videos", tag=tag,
                              num_videos=config.vis_num, width=config.vis_width,
                              height=config.vis_height, fps=config.vis_fps, seed=config.seed + 20_000)
            except Exception as err:  # noqa: BLE001 - a video must never stop training
                warnings.warn(f"--vis_freq: rendering epoch {epoch} failed: {err!r}", stacklevel=1)

    return record


def config_from_run(log_dir: Path | str, **overrides) -> ExperimentConfig:
    """The configuration a run was started with, read from its ``variant.json``
    (:func:`experiment_utils.config_from_variant`), with ``log_dir`` set to the run's directory.

    Raises:
        ValueError: ``log_dir`` holds no ``variant.json``, or it is broken (naming the file).
    """
    from experiment_utils import read_variant

    config = config_from_variant(read_variant(log_dir))
    return dataclasses.replace(config, log_dir=str(log_dir), **overrides)


def prepare_resume(log_dir: Path | str, n_epochs: int | None = None) -> Trainer:
    """A trainer restored from a run's last readable snapshot, holding the run's lock:
    :func:`tools.snapshots.prepare_resume` (kept here for callers of the library API)."""
    from tools.snapshots import prepare_resume as prepare

    return prepare(log_dir, n_epochs)


def resume_experiment(log_dir: Path | str, n_epochs: int | None = None) -> tuple[Path, dict[str, float]]:
    """:func:`prepare_resume` and train; returns (log dir, final pooled evaluation metrics)."""
    trainer = prepare_resume(log_dir, n_epochs)
    return trainer.log_dir, trainer.train()


def run_experiment(config: ExperimentConfig) -> tuple[Path, dict[str, float]]:
    """Build and train; returns (log dir, final pooled evaluation metrics)."""
    trainer = build_trainer(config)
    return trainer.log_dir, trainer.train()
