"""CTPG's control-side settings (issue 18): --grad_clip, --max_alpha, --temperature_form,
--extreme_loss_threshold and --task_loss_weights for every method, --preset ctpg, the guide's task
one-hot input, its replay window and the first warm iteration's guide steps.

Expected values are computed here from the raw gradients / hand numbers, not by the helpers
under test."""

import math

import pytest
import torch

from experiment_utils import CTPG_SUITES, ENV_PRESETS, ExperimentConfig, resolve_config
from garage_experiments import build_guide_training, extreme_loss_threshold, temperature_form
from learning.algorithms.ctpg_training import GuideTraining
from learning.algorithms.dnc import DnCSAC
from learning.algorithms.optim import clip_grad_norm
from learning.algorithms.sac import MultiTaskSAC
from learning.policies.ctpg_guide import TaskOneHotInput, build_guide
from learning.policies.tanh_gaussian import TanhGaussianPolicy
from learning.q_functions.twin_q import TwinQFunction
from learning.replay_buffer import TaskReplayBuffer, TransitionBatch
from learning.trainer import Schedule


def batch(t=2, b=4, reward=None):
    g = torch.Generator().manual_seed(1)
    r = torch.rand(t, b, generator=g) * 50 if reward is None else reward
    return TransitionBatch(obs=torch.rand(t, b, 3, generator=g), action=torch.rand(t, b, 2, generator=g) * 2 - 1,
                           reward=r, next_obs=torch.rand(t, b, 3, generator=g), terminal=torch.zeros(t, b))


def make_sac(arch="multihead", t=2, dnc=False, **kw):
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(arch, t, 3, 2, (8,))
    qf = TwinQFunction(arch, t, 3, 2, (8,))
    common = dict(per_task_alpha=True, lr=1e-3, discount=0.9, tau=0.5, reward_scale=1.0,
                  target_entropy=-2.0, task_reduction="sum" if dnc else "mean")
    if dnc:
        buffer = TaskReplayBuffer(t, 10, 3, 2)
        return DnCSAC(policy, qf, t, buffer=buffer, **common, **kw)
    return MultiTaskSAC(policy, qf, t, **common, **kw)


def captured_grads(sac, data):
    """One update whose optimiser steps record the gradients they would apply (and do nothing)."""
    grads = {}
    for name, opt, params in (("qf", sac.qf_optimizer, sac.qf.parameters),
                              ("policy", sac.policy_optimizer, sac.policy.parameters),
                              ("alpha", sac.alpha_optimizer, lambda: [sac.log_alpha])):
        def step(name=name, params=params):
            grads[name] = [p.grad.clone() for p in params() if p.grad is not None]
        opt.step = step
    sac.update(data)
    return grads


def global_norm(grads):
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads))


# ----------------------------------------------------------------------------- --grad_clip
def test_clip_grad_norm_global_and_per_task_against_hand_numbers():
    a = torch.zeros(2, 2, requires_grad=True)
    b = torch.zeros(2, requires_grad=True)
    a.grad = torch.tensor([[3.0, 0.0], [0.0, 0.03]])  # task 0 norm 3 (with b: 5), task 1 norm 0.05
    b.grad = torch.tensor([4.0, 0.04])
    clip_grad_norm([a, b], 0.1, num_tasks=2)
    torch.testing.assert_close(a.grad[0], torch.tensor([0.06, 0.0]), atol=1e-6, rtol=0)  # 3 * 0.1 / 5
    torch.testing.assert_close(b.grad[0], torch.tensor(0.08), atol=1e-6, rtol=0)
    torch.testing.assert_close(a.grad[1], torch.tensor([0.0, 0.03]))  # below the bound: untouched
    torch.testing.assert_close(b.grad[1], torch.tensor(0.04))
    a.grad, b.grad = torch.tensor([[3.0, 0.0], [0.0, 0.0]]), torch.tensor([4.0, 0.0])
    clip_grad_norm([a, b], 0.1)  # one norm over everything: 5 -> 0.1
    torch.testing.assert_close(a.grad, torch.tensor([[0.06, 0.0], [0.0, 0.0]]), atol=1e-6, rtol=0)
    assert clip_grad_norm([a, b], None) is None
    with pytest.raises(ValueError, match="grad_clip"):
        clip_grad_norm([a, b], 0.0)


@pytest.mark.parametrize("dnc", [False, True], ids=["sac-family", "dnc-family"])
def test_grad_clip_bounds_critic_actor_and_temperature_updates(dnc):
    """--grad_clip c: every optimiser steps on the raw gradient times min(1, c / ||raw||), the norm
    over all parameters (SAC family) or per task slice (DnC family's separate learners)."""
    arch = "separate" if dnc else "multihead"
    data = batch()
    raw = captured_grads(make_sac(arch, dnc=dnc), data)
    clip = 1e-3
    clipped = captured_grads(make_sac(arch, dnc=dnc, grad_clip=clip), data)
    for name in ("qf", "policy", "alpha"):
        if dnc:
            for t in range(2):
                norm = global_norm([g[t] for g in raw[name]])
                assert norm > clip, name
                for g_raw, g_clip in zip(raw[name], clipped[name]):
                    torch.testing.assert_close(g_clip[t], g_raw[t] * clip / norm, rtol=1e-4, atol=1e-9)
        else:
            norm = global_norm(raw[name])
            assert norm > clip, name
            for g_raw, g_clip in zip(raw[name], clipped[name]):
                torch.testing.assert_close(g_clip, g_raw * clip / norm, rtol=1e-4, atol=1e-9)


def test_grad_clip_off_by_default_and_large_bounds_change_nothing():
    data = batch()
    raw = captured_grads(make_sac(), data)
    loose = captured_grads(make_sac(grad_clip=1e9), data)
    for name in raw:
        for g_raw, g in zip(raw[name], loose[name]):
            torch.testing.assert_close(g, g_raw)
    assert ExperimentConfig().grad_clip is None


# ----------------------------------------------------------------------------- temperature
def test_max_alpha_caps_every_temperature_after_the_step():
    for cap, expected in ((1.0, [1.0, 0.5]), (None, None)):
        sac = make_sac(max_alpha=cap)
        with torch.no_grad():
            sac.log_alpha.copy_(torch.tensor([math.log(3.0), math.log(0.5)]))
        sac.update(batch())
        alpha = sac.alpha().detach()
        if expected is None:
            assert alpha[0] > 2.5  # one Adam step of lr 1e-3 cannot bring 3 down to 1
        else:
            torch.testing.assert_close(alpha[0], torch.tensor(expected[0]))
            assert abs(float(alpha[1]) - 0.5) < 0.01  # below the cap: only the Adam step


@pytest.mark.parametrize("experiment, flag, expected", [
    ("dnc_sac", None, "log_alpha"), ("mtsac", None, "alpha"), ("dnc_sac", "alpha", "alpha"),
    ("ctpg_dnc", "alpha", "alpha"), ("mtsac", "log_alpha", "log_alpha")])
def test_temperature_form_flag_overrides_the_family_default(experiment, flag, expected):
    config = resolve_config(experiment, {"env": "MazeQuick-4-v0", "temperature_form": flag})
    assert temperature_form(config) == expected


# ----------------------------------------------------------------------------- extreme losses
def test_extreme_task_masked_for_a_non_paco_network():
    """Task 1's critic loss (~1e8) exceeds 3000: its head gets no critic or actor gradient, task 0's
    does; before the start step (after=1) nothing is masked."""
    reward = torch.tensor([[1.0, 2.0, 0.5, 1.0], [1e4] * 4])
    sac = make_sac("multihead", extreme_loss=(3000.0, 1))
    for update, masked in ((0, False), (1, True)):
        grads = captured_grads(sac, batch(reward=reward))
        for name in ("qf", "policy"):
            heads_w = grads[name][-2]  # per-task heads (T, H, out)
            assert heads_w.shape[0] == 2 and heads_w[0].abs().sum() > 0
            assert (heads_w[1].abs().sum() == 0) == masked, (update, name)
        assert sac.num_updates == update + 1


@pytest.mark.parametrize("experiment, extra, expected", [
    ("mtsac", {}, None), ("mtsac", {"extreme_loss_threshold": 50.0}, 50.0),
    ("dnc_sac", {"extreme_loss_threshold": 50.0}, 50.0), ("ctpg_dnc", {}, None),
    ("mtsac", {"policy_architecture": "paco", "Q_architecture": "paco"}, 3000.0)])
def test_extreme_loss_threshold_for_every_method(experiment, extra, expected):
    config = resolve_config(experiment, {"env": "MazeQuick-4-v0", **extra})
    assert extreme_loss_threshold(config) == expected


def test_task_loss_weights_for_the_dnc_family():
    """T softmax(-log alpha) on separate learners: task t's critic gradient scales by w_t."""
    data = batch()
    grads = {}
    for weighted in (False, True):
        sac = make_sac("separate", dnc=True, task_loss_weights=weighted)
        with torch.no_grad():
            sac.log_alpha.copy_(torch.tensor([0.0, math.log(3.0)]))
        grads[weighted] = captured_grads(sac, data)["qf"][0]  # (T, in, hidden) first layer of q1
    w = [1.5, 0.5]  # 2 * softmax([0, -log 3]) = 2 * (3/4, 1/4)
    for t in range(2):
        torch.testing.assert_close(grads[True][t], w[t] * grads[False][t], rtol=1e-5, atol=1e-7)
    assert resolve_config("dnc_sac", {"task_loss_weights": True}).task_loss_weights


@pytest.mark.parametrize("experiment", ["mtsac", "ctpg_dnc"])
def test_the_flags_reach_the_built_learner(tmp_path, experiment):
    from garage_experiments import build_trainer
    flags = dict(env="MazeQuick-4-v0", hidden_sizes=(8,), num_threads=1, log_dir=str(tmp_path / "run"),
                 grad_clip=0.25, max_alpha=2.0, temperature_form="alpha", extreme_loss_threshold=77.0,
                 extreme_loss_after=5, task_loss_weights=True, target_update_tau=0.02, reward_scale=0.3)
    trainer = build_trainer(resolve_config(experiment, flags))
    try:
        sac = trainer.algorithm
        assert (sac.grad_clip, sac.max_log_alpha, sac.temperature_form, sac.extreme_loss,
                sac.task_loss_weights, sac.tau, sac.reward_scale) == (
            0.25, math.log(2.0), "alpha", (77.0, 5), True, 0.02, 0.3)
    finally:
        trainer.close()


# ----------------------------------------------------------------------------- --preset ctpg
SUITE_NUMBERS = {  # env: (T, steps per task, replay capacity per task, hidden layers) from the release
    "HalfCheetahMT5-v0": (5, 800_000, 100_000, 2), "HalfCheetahMT8-v0": (8, 800_000, 125_000, 2),
    "MetaWorldMT10-v2": (10, 1_500_000, 100_000, 5), "MetaWorldMT50-v2": (50, 1_500_000, 200_000, 5)}
CELLS = ("mtsac", "qmp_sac", "ctpg_sac", "dnc_sac", "qmp_dnc", "ctpg_dnc")


@pytest.mark.parametrize("env", list(SUITE_NUMBERS))
@pytest.mark.parametrize("experiment", CELLS)
def test_ctpg_preset_resolves_to_the_release_settings(env, experiment):
    t, steps, capacity, layers = SUITE_NUMBERS[env]
    config = resolve_config(experiment, {"env": env, "preset": "ctpg"})
    assert (config.lr, config.target_update_tau, config.reward_scale, config.grad_clip,
            config.max_alpha, config.temperature_form, config.task_loss_weights,
            config.extreme_loss_threshold, config.discount) == (1e-4, 0.01, 0.1, 0.1, 1.0, "alpha", True,
                                                                 3000.0, 0.99)
    assert config.hidden_sizes == (400,) * layers and config.replay_buffer_size == capacity
    assert config.num_evaluation_episodes == 32 * t
    family = "dnc" if "dnc" in experiment else "sac"
    schedule = Schedule(family, t, 1, config.batch_size, config.min_buffer_size,
                        config.gradient_steps_per_itr, config.buffer_batch_size)
    vector_steps = config.batch_size // t  # collected per task per iteration
    assert schedule.minibatch_per_task() == 128  # CTPG: 128 transitions per task per update
    assert schedule.gradient_steps() == vector_steps  # one update per vectorised step
    assert not schedule.warm(1499) and schedule.warm(1500)  # 1500 warm-up steps per task
    assert config.n_epochs * config.steps_per_epoch * vector_steps == steps
    assert config.steps_per_epoch * vector_steps * config.evaluation_frequency == 10_000
    if experiment.startswith("ctpg"):
        assert config.guide_buffer_size == capacity and config.guide_batch_size == 128
        assert config.guide_hidden_sizes == (400,) * layers


def test_ctpg_preset_is_shared_by_base_qmp_and_ctpg_and_flags_still_win():
    control = ("lr", "target_update_tau", "reward_scale", "grad_clip", "max_alpha", "temperature_form",
               "task_loss_weights", "extreme_loss_threshold", "hidden_sizes", "replay_buffer_size",
               "batch_size", "gradient_steps_per_itr", "buffer_batch_size", "min_buffer_size")
    for group in (("mtsac", "qmp_sac", "ctpg_sac"), ("dnc_sac", "qmp_dnc", "ctpg_dnc")):
        values = {tuple(getattr(resolve_config(e, {"env": "MetaWorldMT10-v2", "preset": "ctpg"}), k)
                        for k in control) for e in group}
        assert len(values) == 1, group
    config = resolve_config("mtsac", {"env": "MetaWorldMT10-v2", "preset": "ctpg", "lr": 3e-4})
    assert config.lr == 3e-4 and config.grad_clip == 0.1
    plain = resolve_config("mtsac", {"env": "MetaWorldMT10-v2"})  # QMP's preset stays the default
    assert (plain.lr, plain.grad_clip, plain.buffer_batch_size) == (1.5e-3, None, 2560)


@pytest.mark.parametrize("env, arch, hidden", [
    ("MetaWorldMT10-v2", "paco", (400,) * 3), ("HalfCheetahMT8-v0", "paco", (400,) * 2),
    ("MetaWorldMT50-v2", "soft_modular", (400,) * 2), ("HalfCheetahMT5-v0", "soft_modular", (400,)),
    ("MetaWorldMT10-v2", "shared_onehot", (400,) * 5), ("HalfCheetahMT5-v0", "multihead", (400,) * 2)])
def test_ctpg_preset_widths_follow_the_architecture(env, arch, hidden):
    """The release's env.network: paco_num_layers 3 / 2, sm_hidden_layers 2 / 1, num_layers 5 / 2."""
    config = resolve_config("mtsac", {"env": env, "preset": "ctpg", "policy_architecture": arch,
                                      "Q_architecture": arch})
    assert config.hidden_sizes == hidden
    assert config.num_param_sets == (3 if env.startswith("HalfCheetah") else 5)


def test_variant_json_records_every_control_setting(tmp_path):
    import json

    from experiment_utils import make_log_dir
    config = resolve_config("ctpg_dnc", {"env": "HalfCheetahMT8-v0", "preset": "ctpg",
                                         "log_dir": str(tmp_path / "run")})
    variant = json.loads((make_log_dir(config) / "variant.json").read_text())
    assert {k: variant[k] for k in ("preset", "grad_clip", "max_alpha", "temperature_form",
                                    "extreme_loss_threshold", "task_loss_weights", "reward_scale",
                                    "target_update_tau", "lr", "guide_buffer_size",
                                    "guide_task_onehot")} == dict(
        preset="ctpg", grad_clip=0.1, max_alpha=1.0, temperature_form="alpha", extreme_loss_threshold=3000.0,
        task_loss_weights=True, reward_scale=0.1, target_update_tau=0.01, lr=1e-4, guide_buffer_size=125_000,
        guide_task_onehot=True)


def test_cli_preset_flag_layers_under_other_flags_and_bad_values_are_usage_errors(tmp_path, monkeypatch):
    import json

    from click.testing import CliRunner

    import run
    monkeypatch.setenv("QMP_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(run, "build_trainer", lambda config: pytest.fail("dry run built a trainer"))
    args = ["ctpg_sac", "--env", "HalfCheetahMT5-v0", "--preset", "ctpg", "--dry_run", "--grad_clip", "0.5",
            "--guide_buffer_size", "5000"]
    result = CliRunner().invoke(run.cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["preset"], report["grad_clip"], report["max_alpha"], report["buffer_batch_size"]) == (
        "ctpg", 0.5, 1.0, 640)
    assert report["resolved"]["guide_buffer_size_per_task"] == 5000
    assert report["resolved"]["replay_buffer_size_per_task"] == 100_000
    bad = CliRunner().invoke(run.cli, ["mtsac", "--env", "MazeQuick-4-v0", "--preset", "ctpg", "--dry_run"])
    assert bad.exit_code == 2 and "--preset ctpg" in bad.output
    bad = CliRunner().invoke(run.cli, ["mtsac", "--env", "MazeQuick-4-v0", "--temperature_form", "x",
                                       "--dry_run"])
    assert bad.exit_code == 2 and "--temperature_form" in bad.output


def test_ctpg_preset_rejects_other_suites_and_names():
    with pytest.raises(ValueError, match="--preset ctpg.*HalfCheetahMT5-v0"):
        resolve_config("mtsac", {"env": "MazeQuick-4-v0", "preset": "ctpg"})
    with pytest.raises(ValueError, match="--preset='qmp'; allowed: ctpg"):
        resolve_config("mtsac", {"env": "MetaWorldMT10-v2", "preset": "qmp"})


def test_env_presets_hold_the_release_guide_window_for_ctpg_runs_without_the_preset():
    for env, (_, _, capacity, _) in SUITE_NUMBERS.items():
        assert ENV_PRESETS[env]["guide_buffer_size"] == capacity == CTPG_SUITES[env].capacity_per_task
        assert resolve_config("ctpg_dnc", {"env": env}).guide_buffer_size == capacity


# ----------------------------------------------------------------------------- the guide's input
class Recorder(torch.nn.Module):
    def __init__(self, out):
        super().__init__()
        self.out, self.seen = out, None

    def forward(self, x):
        self.seen = x
        return x.sum(-1, keepdim=True).expand(*x.shape[:2], self.out)


def test_task_one_hot_is_appended_to_each_tasks_rows():
    t, b, d = 3, 2, 4
    inner = Recorder(t)
    obs = torch.randn(t, b, d)
    TaskOneHotInput(inner, t)(obs)
    torch.testing.assert_close(inner.seen[..., :d], obs)
    for i in range(t):
        expected = torch.zeros(b, t)
        expected[:, i] = 1.0
        torch.testing.assert_close(inner.seen[i, :, d:], expected)
    with pytest.raises(ValueError, match="expected 3"):
        TaskOneHotInput(inner, t)(torch.randn(2, b, d))


def test_guide_built_with_the_one_hot_sees_it_and_its_output_depends_on_it():
    t, d = 3, 4
    torch.manual_seed(0)
    guide = build_guide("multihead", t, d, (8,), task_onehot=True)
    assert isinstance(guide.actor, TaskOneHotInput) and isinstance(guide.critic, TaskOneHotInput)
    assert isinstance(guide.comparable_critic, TaskOneHotInput)
    trunk_in = [p for p in guide.actor.parameters() if p.dim() == 2][0]
    assert trunk_in.shape[-1] == d + t or trunk_in.shape[0] == d + t
    obs = torch.randn(t, 5, d)
    logits = guide.logits(obs)
    # the same networks fed a different one-hot (task 0's everywhere) give other logits
    inner = guide.actor.net
    zero_hot = torch.cat([obs, torch.eye(t)[0].expand(t, 5, t)], -1)
    assert not torch.allclose(logits, inner(zero_hot))
    torch.testing.assert_close(logits[0], inner(zero_hot)[0])
    plain = build_guide("multihead", t, d, (8,), task_onehot=False)
    assert not isinstance(plain.actor, TaskOneHotInput)
    assert plain.logits(obs).shape == (t, 5, t)


# ----------------------------------------------------------------------------- guide window
@pytest.mark.parametrize("experiment, extra, segments", [
    ("ctpg_dnc", {"env": "HalfCheetahMT5-v0"}, 10_000),
    ("ctpg_sac", {"env": "HalfCheetahMT8-v0"}, 12_500),
    ("ctpg_dnc", {"env": "MetaWorldMT50-v2"}, 20_000),
    ("ctpg_dnc", {"env": "HalfCheetahMT5-v0", "guide_buffer_size": 500, "guide_step": 5}, 100),
    ("ctpg_dnc", {"env": "MazeQuick-4-v0"}, 100_000),  # no CTPG window: the replay capacity (1M)
])
def test_guide_window_sets_the_segment_capacity_and_the_one_hot_flag_reaches_the_builder(
        experiment, extra, segments):
    config = resolve_config(experiment, {**extra, "hidden_sizes": (8,), "guide_hidden_sizes": (8,)})
    t = 4
    sac = make_sac("separate" if experiment == "ctpg_dnc" else "multihead", t=t)
    schedule = Schedule("dnc", t, 1, 40, 10, 40, 8)
    training = build_guide_training(config, sac, schedule, 3, 2, 1_000_000, "cpu")
    assert training.buffer.capacity == segments
    assert isinstance(training.guide.actor, TaskOneHotInput)
    config = resolve_config(experiment, {**extra, "hidden_sizes": (8,), "guide_hidden_sizes": (8,),
                                         "guide_task_onehot": False})
    training = build_guide_training(config, sac, schedule, 3, 2, 1_000_000, "cpu")
    assert not isinstance(training.guide.actor, TaskOneHotInput)


# ----------------------------------------------------------------------------- first warm iteration
class CountingGuide:
    def __init__(self):
        self.calls = 0

    def update(self, *args, **kwargs):
        self.calls += 1
        return {}


class FakeBehaviour:
    block_gate, pending_block = False, torch.zeros(2, dtype=torch.bool)
    last_decision = last_guide_action = None

    def set_step(self, step):
        self.step = step


class FakeBuffer:
    def __len__(self):
        return 1

    def sample(self, batch_size, active=None):
        return None


class FakeRecorder:
    def step(self, *args):
        pass


class FakeControl:
    policy, log_alpha = None, torch.zeros(2)


def test_first_warm_iteration_runs_one_guide_step_not_a_catch_up_burst():
    """The release: guide steps at vectorised steps init_steps, init_steps + 10, ... (none for the
    warm-up). 1500 warm-up steps -> 1 guide step; then one per 10 collected steps."""
    guide = CountingGuide()
    training = GuideTraining(guide, FakeBehaviour(), FakeBuffer(), FakeRecorder(), FakeControl(), 2,
                             batch_size=4, update_every=10)
    step = TransitionBatch(*(torch.zeros(2, 1, 1),) * 5)
    for _ in range(1500):
        training.observe(step, torch.zeros(2, 1, dtype=torch.bool))
    training.update(1500)
    assert guide.calls == 1
    for _ in range(25):
        training.observe(step, torch.zeros(2, 1, dtype=torch.bool))
    training.update(1525)
    assert guide.calls == 3  # 25 more steps: two guide steps, 5 carried over
    for _ in range(5):
        training.observe(step, torch.zeros(2, 1, dtype=torch.bool))
    training.update(1530)
    assert guide.calls == 4
