"""The epoch loop: collection schedule, updates, evaluation, dowel logging and snapshots
(reference §3.2, §3.13; garage's Trainer role)."""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import dowel
import numpy as np
import torch
from dowel import tabular
from tqdm.auto import tqdm

from learning.logging import OrderedCsvOutput, SummaryStdOutput, keep_per_task_key, make_wandb_output
from learning.policies.behaviour import SwitchState
from learning.replay_buffer import TaskReplayBuffer
from learning.run_lock import RunLock, RunLockedError, RunLockLost
from learning.sampler import EpisodeRecord, Sampler, evaluate, evaluation_seed

# NaN marks 'no finished episode this epoch'; tensorboardX warns on every such scalar.
logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)

SNAPSHOT_MODES = ("last", "all", "gap")
LOSS_KEYS = ("Qf1Loss", "Qf2Loss", "PolicyLoss", "AlphaLoss")


class TrainingInterrupted(Exception):
    """SIGINT/SIGTERM stopped the run; ``exit_code`` is 128 + the signal number (130, 143)."""

    def __init__(self, signum: int, last_epoch: int, log_dir: Path, snapshot: bool):
        name = signal.Signals(signum).name
        kept = "snapshot of that epoch and logs" if snapshot else "logs and the previous snapshot"
        super().__init__(f"{name}: stopped after epoch {last_epoch}; {kept} in {log_dir}")
        self.exit_code = 128 + signum


class NonFiniteLossError(RuntimeError):
    """A training loss became NaN or infinite; the message names the task and the loss."""


class _StopNow(Exception):
    """Raised by the signal handler on a second signal."""


@dataclass(frozen=True)
class Schedule:
    """How much to collect and update per iteration (reference §3.2).

    ``dnc`` family: warm-up until every task buffer holds ``min_buffer_size``; then
    ``batch_size`` steps split evenly over tasks; task i gets
    ``max(int(G * samples_i / sum samples), 1)`` gradient steps on ``buffer_batch_size``
    of its own transitions; tasks collect equally, so every task gets ``max(G // T, 1)`` and
    they are done together. ``sac`` family: warm-up until ``min_buffer_size`` transitions
    in total; ``G`` steps on ``buffer_batch_size`` transitions in total (an equal share
    from every task's buffer).
    """

    family: str
    num_tasks: int
    envs_per_task: int
    batch_size: int
    min_buffer_size: int
    gradient_steps_per_itr: int
    buffer_batch_size: int

    def warm(self, buffer_len: int) -> bool:
        stored = buffer_len if self.family == "dnc" else buffer_len * self.num_tasks
        return stored >= self.min_buffer_size

    def steps_per_env(self, buffer_len: int) -> int:
        if self.warm(buffer_len):
            per_task = self.batch_size / self.num_tasks
        elif self.family == "dnc":
            per_task = self.min_buffer_size
        else:
            per_task = self.min_buffer_size / self.num_tasks
        return max(1, math.ceil(per_task / self.envs_per_task))

    def gradient_steps(self) -> int:
        if self.family == "dnc":
            return max(self.gradient_steps_per_itr // self.num_tasks, 1)
        return self.gradient_steps_per_itr

    def minibatch_per_task(self) -> int:
        if self.family == "dnc":
            return self.buffer_batch_size
        return max(1, math.ceil(self.buffer_batch_size / self.num_tasks))


class Trainer:
    """Runs epochs of (collect, update) iterations, evaluates, logs and snapshots.

    Args:
        config: the run's ExperimentConfig.
        suite: task suite.
        algorithm: object with ``sample_batch(buffer, n)``, ``update(batch) -> stats``,
            ``end_of_epoch(epoch) -> dict`` (run after evaluation) and ``state_dict()``.
        behaviour: training behaviour policy (own policy, Q-switch, mixture).
        own_policy: the own-policy behaviour (warm-up and evaluation mode "p").
        eval_modes: log prefix -> behaviour evaluated in that mode ("" and, for QMP, "p/").
        buffer, sampler, eval_sampler, schedule: as named.
        log_dir: the run's directory.
        on_evaluation: optional callback ``f(epoch)`` run after each evaluation (videos).
        guide_training: CTPG's :class:`~learning.algorithms.ctpg_training.GuideTraining` (segment
            recording, guide updates, block gate, logging) when ``behaviour`` is its guide.
    """

    def __init__(self, config, suite, algorithm, behaviour, own_policy, eval_modes,
                 buffer: TaskReplayBuffer, sampler: Sampler, eval_sampler: Sampler,
                 schedule: Schedule, log_dir: Path, on_evaluation=None, guide_training=None):
        self.config, self.suite, self.algorithm = config, suite, algorithm
        self.behaviour, self.own_policy, self.eval_modes = behaviour, own_policy, eval_modes
        self.buffer, self.sampler, self.eval_sampler = buffer, sampler, eval_sampler
        self.schedule, self.log_dir = schedule, Path(log_dir)
        self.on_evaluation = on_evaluation
        self.guide_training = guide_training
        self.num_tasks = suite.num_tasks
        self.total_env_steps = 0
        self.switch_state = SwitchState.initial(self.num_tasks, schedule.envs_per_task,
                                                sampler.device)
        self.final_evaluation: dict[str, float] = {}
        self.start_epoch = 0  # > 0 after load_snapshot (a resumed run)
        self._signal: int | None = None
        self.lock = RunLock(self.log_dir)  # one writer per run dir: taken by train() (or resume)

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, float]:
        """Run epochs ``start_epoch .. n_epochs - 1``; returns the last evaluation's pooled metrics.

        The first SIGINT or SIGTERM lets the epoch in progress finish, writes its snapshot and
        stops; a second one stops at once, keeping the logs and the previous snapshot. Either
        way the run raises :class:`TrainingInterrupted` (exit code 130 / 143).

        Raises:
            TrainingInterrupted: on SIGINT / SIGTERM.
            NonFiniteLossError: a loss became NaN or infinite (after a snapshot of that state
                to ``params_nonfinite.pt``).
        """
        try:
            self.lock.acquire()  # already held when resuming (tools/snapshots.prepare_resume)
        except RunLockedError:
            self.close()
            raise
        outputs = self._setup_logging()
        last = self.start_epoch - 1
        handlers = self._install_signal_handlers()
        try:
            bar = tqdm(range(self.start_epoch, self.config.n_epochs), desc=self.log_dir.name,
                       unit="epoch", dynamic_ncols=True, initial=self.start_epoch,
                       total=self.config.n_epochs, disable=not self._bar_shown())
            for epoch in bar:
                self._run_epoch(epoch)
                last = epoch
                self._show_progress(bar)
                if self.lock.lost:  # another writer may own the dir now: write no snapshot
                    raise RunLockLost(f"{self.log_dir}: the run's lock was lost ({self.lock.lost}) after "
                                      f"epoch {epoch}; stopped without a snapshot of it")
                if self._snapshot_due(epoch):
                    self.save_snapshot(epoch)
                if self._signal is not None:
                    raise TrainingInterrupted(self._signal, epoch, self.log_dir, snapshot=True)
            self._write_final(last)
        except _StopNow as stop:
            raise TrainingInterrupted(stop.args[0], last, self.log_dir, snapshot=False) from None
        finally:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            dowel.logger.dump_all()
            for out in outputs:
                dowel.logger.remove_output_type(type(out))
                out.close()
            self.close()
            self.lock.release()
        return self.final_evaluation

    def close(self) -> None:
        """Close the training and evaluation envs (done by :meth:`train` when it returns)."""
        self.sampler.close()
        self.eval_sampler.close()

    def _snapshot_due(self, epoch: int) -> bool:
        """Every ``--snapshot_gap`` epochs, every epoch with ``--snapshot_mode all``, and before
        stopping on a signal."""
        return (self._signal is not None or getattr(self.config, "snapshot_mode", "last") == "all"
                or (epoch + 1) % self.config.snapshot_gap == 0)

    def _install_signal_handlers(self) -> dict:
        """SIGINT/SIGTERM -> finish the epoch (first signal) or stop now (second); main thread only."""
        if threading.current_thread() is not threading.main_thread():
            return {}

        def handle(signum, frame):
            if self._signal is not None:
                raise _StopNow(signum)
            self._signal = signum
            tqdm.write(f"{signal.Signals(signum).name}: finishing the epoch, then snapshot and stop "
                       "(send it again to stop now)")

        return {signum: signal.signal(signum, handle) for signum in (signal.SIGINT, signal.SIGTERM)}

    def _write_final(self, epoch: int) -> None:
        """``final_evaluation.json``: written only when every epoch has run (the run is complete)."""
        with open(self.log_dir / "final_evaluation.json", "w") as f:
            json.dump({"epoch": epoch, "total_env_steps": self.total_env_steps,
                       "evaluation": self.final_evaluation}, f, indent=2)
        # TensorBoard's HPARAMS tab: the flags against the final evaluation.
        hparams = {k: v if isinstance(v, (bool, int, float, str)) else str(v)
                   for k, v in self.config.to_dict().items()}
        metrics = {f"final/{k}": float(v) for k, v in self.final_evaluation.items()
                   if isinstance(v, (int, float)) and math.isfinite(v)}
        self._tensorboard._writer.add_hparams(hparams, metrics, name="hparams")

    def _bar_shown(self) -> bool:
        """``--progress_bar``; unset: only when stderr is a terminal, so that logs written by
        sbatch, nohup or a sweep trial get each epoch's table without the bar's carriage-return frames."""
        choice = getattr(self.config, "progress_bar", None)
        return sys.stderr.isatty() if choice is None else bool(choice)

    def _show_progress(self, bar) -> None:
        """The own policies' number on the progress bar, like for like across methods: QMP's
        ``Evaluation/p/...`` where logged (its ``Evaluation/...`` is the behaviour mixture's), else
        ``Evaluation/...``; success rate, or return for suites where success is meaningless."""
        final = self.final_evaluation
        for leaf, name, fmt in (("SuccessRate", "success", ".2f"), ("AverageReturn", "avg_return", ".1f")):
            if leaf == "SuccessRate" and not self.suite.success_is_meaningful:
                continue
            for key in (f"Evaluation/p/{leaf}", f"Evaluation/{leaf}"):
                if key in final:
                    bar.set_postfix({name: format(final[key], fmt)})
                    return

    def _run_epoch(self, epoch: int) -> None:
        t0 = time.perf_counter()
        behaviour = self.own_policy if epoch < self.config.mixture_warmup else self.behaviour
        record = EpisodeRecord.empty(self.num_tasks, self.sampler.extra_keys)
        counts = torch.zeros(self.num_tasks, self.num_tasks, dtype=torch.long)
        collect_time = update_time = 0.0
        collected, stats = 0, {}
        for _ in range(self.config.steps_per_epoch):
            tc = time.perf_counter()
            steps = self.schedule.steps_per_env(len(self.buffer))
            observer = (self.guide_training.observe
                        if self.guide_training is not None and behaviour is self.behaviour else None)
            batch, c = self.sampler.collect(behaviour, self.switch_state, steps, record, observer)
            self.buffer.add(batch)
            counts += c
            collected += batch.reward.numel()
            collect_time += time.perf_counter() - tc
            tu = time.perf_counter()
            if self.schedule.warm(len(self.buffer)):
                for _ in range(self.schedule.gradient_steps()):
                    minibatch = self.algorithm.sample_batch(self.buffer,
                                                            self.schedule.minibatch_per_task())
                    stats = self.algorithm.update(minibatch)
                self._check_finite(stats, epoch)
                if self.guide_training is not None:
                    self.guide_training.update((self.total_env_steps + collected) // self.num_tasks)
            update_time += time.perf_counter() - tu
        self.total_env_steps += collected
        tabular.record("Epoch", epoch)
        tabular.record("TotalEnvSteps", self.total_env_steps)
        te = time.perf_counter()
        evaluate_now = epoch % self.config.evaluation_frequency == 0
        if evaluate_now:
            self._evaluate(epoch)
        eval_time = time.perf_counter() - te if evaluate_now else 0.0
        if evaluate_now and self.on_evaluation is not None:
            self.on_evaluation(epoch)
        epoch_stats = self.algorithm.end_of_epoch(epoch)  # DnC distillation, after evaluation
        for key, value in epoch_stats.items():
            tabular.record(f"Train/{key}", value)
        self._log_train(record, stats, counts)
        tabular.record("Time/EnvStepsPerSecond", collected / max(collect_time, 1e-9))
        tabular.record("Time/CollectSeconds", collect_time)
        tabular.record("Time/UpdateSeconds", update_time)
        tabular.record("Time/EvaluationSeconds", eval_time)
        tabular.record("Time/EpochSeconds", time.perf_counter() - t0)
        dowel.logger.log(tabular)
        dowel.logger.dump_all(epoch)
        tabular.clear()  # keys not recorded next epoch (no evaluation) stay empty, not stale

    def _check_finite(self, stats: dict, epoch: int) -> None:
        """Stop on a NaN/inf loss of the iteration's last update, naming the task and the loss."""
        for key in LOSS_KEYS:
            value = stats.get(key)
            if value is None or bool(torch.isfinite(value).all()):
                continue
            task = int((~torch.isfinite(value)).nonzero()[0, 0]) if value.dim() else 0
            path = self.save_snapshot(epoch - 1, self.log_dir / "params_nonfinite.pt")
            name = self.suite.task_names[task] if task < len(self.suite.task_names) else ""
            raise NonFiniteLossError(f"non-finite {key} ({float(value.reshape(-1)[task])}) for task "
                                     f"{task} ({name}) in epoch {epoch}; state saved to {path}, "
                                     f"last good snapshot {self.log_dir / 'params.pt'}")

    # --------------------------------------------------------------- logging
    def _setup_logging(self):
        resume = self.start_epoch - 1 if self.start_epoch > 0 else None
        self._tensorboard = dowel.TensorBoardOutput(str(self.log_dir), x_axis="TotalEnvSteps")
        outputs = [OrderedCsvOutput(str(self.log_dir / "progress.csv"), resume_after_epoch=resume),
                   self._tensorboard,
                   dowel.TextOutput(str(self.log_dir / "debug.log")),
                   SummaryStdOutput(write=tqdm.write)]
        if getattr(self.config, "wandb", False):
            outputs.append(make_wandb_output(self.config.to_dict(), self.log_dir))
        for out in outputs:
            dowel.logger.add_output(out)
        return outputs

    def _evaluate(self, epoch: int) -> None:
        episodes = max(1, self.config.num_evaluation_episodes // self.num_tasks)
        for prefix, behaviour in self.eval_modes.items():
            # seeded per (seed, epoch, mode): `run.py evaluate` repeats it from the snapshot
            record = evaluate(self.eval_sampler, behaviour, episodes,
                              seed=evaluation_seed(self.config.seed, epoch, prefix))
            pooled = log_episode_stats(f"Evaluation/{prefix}", record, self.suite, epoch,
                                       getattr(self.config, "log_per_task", "all"))
            if prefix == "":
                self.final_evaluation = pooled
                if self.guide_training is not None:
                    success = torch.tensor([_mean(s) for s in record.successes])
                    self.guide_training.evaluated(success)
            else:
                self.final_evaluation.update(pooled)

    def _log_train(self, record: EpisodeRecord, stats: dict, counts: torch.Tensor) -> None:
        t = self.num_tasks
        per_task_return = [_mean(r) for r in record.returns]
        per_task_success = [_mean(s) for s in record.successes]
        tabular.record("Train/AverageReturn", _nanmean(per_task_return))
        success_logged = getattr(self.suite, "success_is_meaningful", True)  # not for return-only suites
        if success_logged:
            tabular.record("Train/SuccessRate", _nanmean(per_task_success))
        tabular.record("Train/TotalEnvSteps", self.total_env_steps)
        tabular.record("Train/ReplayBufferSize", len(self.buffer) * t)
        stats = {k: v.detach().cpu().numpy() for k, v in stats.items()}
        for key, value in stats.items():
            tabular.record(f"Train/{key}", float(np.mean(value)))
        level = getattr(self.config, "log_per_task", "all")

        def record_task(key: str, value) -> None:  # --log_per_task decides
            if keep_per_task_key(key, level):
                tabular.record(key, value)

        if self.guide_training is not None:
            for key, value in self.guide_training.stats().items():
                record_task(key, value)
        if level == "none":
            return
        probs = (counts.double() / counts.sum(1, keepdim=True).clamp(min=1)).numpy()
        mixture = len(self.eval_modes) > 1
        for i in range(t):
            prefix = f"Train/LocalPolicy{i}/"
            for key, value in stats.items():
                record_task(prefix + key, float(value[i]))
            record_task(prefix + "AverageReturn", per_task_return[i])
            if success_logged:
                record_task(prefix + "SuccessRate", per_task_success[i])
            record_task(prefix + "ReplayBufferSize", len(self.buffer))
            record_task(prefix + "EnvSteps", self.total_env_steps // t)
            if mixture:
                record_task(prefix + "MixtureProbs", float(probs[i, i]))
                if level == "all":  # the T x T selection matrix: T^2 columns (2,500 on MT50)
                    for j in range(t):
                        tabular.record(prefix + f"Policy{j}Prob", float(probs[i, j]))

    # ------------------------------------------------------------- snapshot
    def save_snapshot(self, epoch: int, path: Path | None = None) -> Path:
        """Snapshot of the state after ``epoch`` (the last finished epoch) -> ``params.pt``.

        Holds networks, optimisers, RNG states and counters; with ``--snapshot_buffer`` also the
        replay buffer and both samplers (env states, running episode statistics), which makes a
        resumed run continue exactly. ``--snapshot_mode all`` / ``gap`` also keep a copy
        ``itr_<epoch>.pt``. A small ``policy.pt`` (policy and critic weights, enough to act with
        every behaviour) is written beside it for evaluation.
        """
        path = Path(path) if path is not None else self.log_dir / "params.pt"
        state = {
            "epoch": epoch,
            "total_env_steps": self.total_env_steps,
            "algorithm": self.algorithm.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in _optimizers(self.algorithm)},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
                    "python": random.getstate()},
            "switch_state": {"choice": self.switch_state.choice.cpu(),
                             "since_reset": self.switch_state.since_reset.cpu(),
                             **_guide_env_state(self.switch_state)},
            "final_evaluation": self.final_evaluation,
            "config": self.config.to_dict(),
        }
        with_buffer = getattr(self.config, "snapshot_buffer", False)
        if self.guide_training is not None:
            state["guide_training"] = self.guide_training.state_dict(with_buffer)
        if with_buffer:
            state["buffer"] = self.buffer.state_dict()
            state["sampler"] = self.sampler.state_dict()
            state["eval_sampler"] = self.eval_sampler.state_dict()
        _atomic_save(state, path)  # a reader (evaluate) or a kill mid-write never sees half a file
        if path.name == "params.pt":
            mode = getattr(self.config, "snapshot_mode", "last")
            if mode == "all" or (mode == "gap" and (epoch + 1) % self.config.snapshot_gap == 0):
                shutil.copyfile(path, self.log_dir / f"itr_{epoch}.pt")
            _atomic_save({"epoch": epoch, "config": self.config.to_dict(),
                          "policy": self.algorithm.policy.state_dict(),
                          "qf": self.algorithm.qf.state_dict()}, self.log_dir / "policy.pt")
        return path

    def load_snapshot(self, path: Path | dict) -> int:
        """Restore a :meth:`save_snapshot` file (or its already loaded dict); training continues
        at the returned epoch.

        Raises:
            RuntimeError: if the snapshot was written by a run with another configuration shape
                (torch's state-dict mismatch).
        """
        state = path if isinstance(path, dict) else \
            torch.load(path, map_location=self.sampler.device, weights_only=False)
        self.algorithm.load_state_dict(state["algorithm"])
        optimizers = dict(_optimizers(self.algorithm))
        for name, opt_state in state["optimizers"].items():
            optimizers[name].load_state_dict(opt_state)
        torch.set_rng_state(state["rng"]["torch"].cpu())  # map_location moved it to the device
        if state["rng"].get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["rng"]["cuda"]])
        np.random.set_state(state["rng"]["numpy"])
        random.setstate(state["rng"]["python"])
        self.switch_state.choice.copy_(state["switch_state"]["choice"])
        self.switch_state.since_reset.copy_(state["switch_state"]["since_reset"])
        if "guide_blocked" in state["switch_state"]:
            from learning.policies.ctpg_guide import GuideEnvState
            self.switch_state.guide = GuideEnvState(
                state["switch_state"]["guide_blocked"].to(self.switch_state.choice.device),
                state["switch_state"]["guide_guided"].to(self.switch_state.choice.device))
        if self.guide_training is not None:
            self.guide_training.load_state_dict(state["guide_training"])
        self.final_evaluation = state["final_evaluation"]
        self.total_env_steps = state["total_env_steps"]
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])
            self.sampler.load_state_dict(state["sampler"])
            self.eval_sampler.load_state_dict(state["eval_sampler"])
        self.start_epoch = state["epoch"] + 1
        return self.start_epoch


def _atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file beside ``path``, then rename it over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def _guide_env_state(switch_state: SwitchState) -> dict:
    """CTPG's per-env gate flags kept on the switch state (none for other behaviours)."""
    guide = getattr(switch_state, "guide", None)
    if guide is None:
        return {}
    return {"guide_blocked": guide.blocked.cpu(), "guide_guided": guide.guided.cpu()}


def _optimizers(algorithm):
    return [(n, o) for n, o in vars(algorithm).items() if isinstance(o, torch.optim.Optimizer)]


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _nanmean(values) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def log_episode_stats(prefix: str, record: EpisodeRecord, suite, epoch: int,
                      per_task: str = "all") -> dict[str, float]:
    """Record pooled and per-task evaluation metrics (reference §3.13 key names); no
    ``SuccessRate`` for suites whose success is meaningless (``suite.success_is_meaningful`` False:
    HalfCheetah, one-task gymnasium ids), where return is the metric. ``per_task`` (the run's
    ``--log_per_task``) selects the per-task keys (:func:`learning.logging.keep_per_task_key`).

    Returns:
        The pooled metrics, keyed by full name.
    """
    def metrics(idx) -> dict[str, float]:
        returns = np.array([r for i in idx for r in record.returns[i]])
        out = {
            "Iteration": epoch,
            "NumEpisodes": len(returns),
            "AverageEpisodeLength": _mean([x for i in idx for x in record.lengths[i]]),
            "AverageDiscountedReturn": _mean([x for i in idx for x in record.discounted_returns[i]]),
            "AverageReturn": _mean(returns),
            "StdReturn": float(np.std(returns)) if len(returns) else float("nan"),
            "MaxReturn": float(np.max(returns)) if len(returns) else float("nan"),
            "MinReturn": float(np.min(returns)) if len(returns) else float("nan"),
            "TerminationRate": _mean([x for i in idx for x in record.terminations[i]]),
        }
        if getattr(suite, "success_is_meaningful", True):
            out["SuccessRate"] = _mean([x for i in idx for x in record.successes[i]])
        for key, name in suite.episode_info_keys.items():
            out[name] = _mean([x for i in idx for x in record.extras[key][i]])
        return out

    pooled = {prefix + k: v for k, v in metrics(range(suite.num_tasks)).items()}
    for key, value in pooled.items():
        tabular.record(key, value)
    extras = frozenset(suite.episode_info_keys.values())
    for task in range(suite.num_tasks if per_task != "none" else 0):
        for key, value in metrics([task]).items():
            if keep_per_task_key(f"{prefix}Task{task}/{key}", per_task, extras):
                tabular.record(f"{prefix}Task{task}/{key}", value)
    return pooled
