"""The epoch loop: collection schedule, updates, evaluation, dowel logging and snapshots
(reference §3.2, §3.13; garage's Trainer role)."""

from __future__ import annotations

import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import dowel
import numpy as np
import torch
from dowel import tabular
from tqdm.auto import tqdm

from learning.logging import OrderedCsvOutput, SummaryStdOutput
from learning.policies.behaviour import SwitchState
from learning.replay_buffer import TaskReplayBuffer
from learning.sampler import EpisodeRecord, Sampler, evaluate

# NaN marks 'no finished episode this epoch'; tensorboardX warns on every such scalar.
logging.getLogger("tensorboardX.x2num").setLevel(logging.ERROR)


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
    """

    def __init__(self, config, suite, algorithm, behaviour, own_policy, eval_modes,
                 buffer: TaskReplayBuffer, sampler: Sampler, eval_sampler: Sampler,
                 schedule: Schedule, log_dir: Path):
        self.config, self.suite, self.algorithm = config, suite, algorithm
        self.behaviour, self.own_policy, self.eval_modes = behaviour, own_policy, eval_modes
        self.buffer, self.sampler, self.eval_sampler = buffer, sampler, eval_sampler
        self.schedule, self.log_dir = schedule, Path(log_dir)
        self.num_tasks = suite.num_tasks
        self.total_env_steps = 0
        self.switch_state = SwitchState.initial(self.num_tasks, schedule.envs_per_task,
                                                sampler.device)
        self.final_evaluation: dict[str, float] = {}

    # ------------------------------------------------------------------ loop
    def train(self) -> dict[str, float]:
        """Run ``n_epochs`` epochs; returns the last evaluation's pooled metrics."""
        outputs = self._setup_logging()
        epoch = -1
        try:
            bar = tqdm(range(self.config.n_epochs), desc=self.log_dir.name, unit="epoch",
                       dynamic_ncols=True)
            for epoch in bar:
                self._run_epoch(epoch)
                self._show_progress(bar)
                if (epoch + 1) % self.config.snapshot_gap == 0:
                    self.save_snapshot(epoch)
            self._write_final(epoch)
        except KeyboardInterrupt:
            tqdm.write(f"interrupted at epoch {epoch}: snapshot and logs kept in {self.log_dir}")
            self.save_snapshot(epoch)
            raise
        finally:
            for out in outputs:
                dowel.logger.remove_output_type(type(out))
            self.sampler.close()
            self.eval_sampler.close()
        return self.final_evaluation

    def _write_final(self, epoch: int) -> None:
        """``final_evaluation.json``: written only when every epoch has run (the run is complete)."""
        with open(self.log_dir / "final_evaluation.json", "w") as f:
            json.dump({"epoch": epoch, "total_env_steps": self.total_env_steps,
                       "evaluation": self.final_evaluation}, f, indent=2)

    def _show_progress(self, bar) -> None:
        """Success rate on the progress bar, or return for suites where success is trivial."""
        final = self.final_evaluation
        if self.suite.success_is_meaningful and "Evaluation/SuccessRate" in final:
            bar.set_postfix(success=f"{final['Evaluation/SuccessRate']:.2f}")
        elif "Evaluation/AverageReturn" in final:
            bar.set_postfix(avg_return=f"{final['Evaluation/AverageReturn']:.1f}")

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
            batch, c = self.sampler.collect(behaviour, self.switch_state, steps, record)
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
            update_time += time.perf_counter() - tu
        self.total_env_steps += collected
        tabular.record("Epoch", epoch)
        tabular.record("TotalEnvSteps", self.total_env_steps)
        te = time.perf_counter()
        evaluate_now = epoch % self.config.evaluation_frequency == 0
        if evaluate_now:
            self._evaluate(epoch)
        eval_time = time.perf_counter() - te if evaluate_now else 0.0
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

    # --------------------------------------------------------------- logging
    def _setup_logging(self):
        outputs = [OrderedCsvOutput(str(self.log_dir / "progress.csv")),
                   dowel.TensorBoardOutput(str(self.log_dir)),
                   dowel.TextOutput(str(self.log_dir / "debug.log")),
                   SummaryStdOutput(write=tqdm.write)]
        for out in outputs:
            dowel.logger.add_output(out)
        return outputs

    def _evaluate(self, epoch: int) -> None:
        episodes = max(1, self.config.num_evaluation_episodes // self.num_tasks)
        for prefix, behaviour in self.eval_modes.items():
            record = evaluate(self.eval_sampler, behaviour, episodes)
            pooled = log_episode_stats(f"Evaluation/{prefix}", record, self.suite, epoch)
            if prefix == "":
                self.final_evaluation = pooled
            else:
                self.final_evaluation.update(pooled)

    def _log_train(self, record: EpisodeRecord, stats: dict, counts: torch.Tensor) -> None:
        t = self.num_tasks
        per_task_return = [_mean(r) for r in record.returns]
        per_task_success = [_mean(s) for s in record.successes]
        tabular.record("Train/AverageReturn", _nanmean(per_task_return))
        tabular.record("Train/SuccessRate", _nanmean(per_task_success))
        tabular.record("Train/TotalEnvSteps", self.total_env_steps)
        tabular.record("Train/ReplayBufferSize", len(self.buffer) * t)
        stats = {k: v.detach().cpu().numpy() for k, v in stats.items()}
        for key, value in stats.items():
            tabular.record(f"Train/{key}", float(np.mean(value)))
        probs = (counts.double() / counts.sum(1, keepdim=True).clamp(min=1)).numpy()
        mixture = len(self.eval_modes) > 1
        for i in range(t):
            prefix = f"Train/LocalPolicy{i}/"
            for key, value in stats.items():
                tabular.record(prefix + key, float(value[i]))
            tabular.record(prefix + "AverageReturn", per_task_return[i])
            tabular.record(prefix + "SuccessRate", per_task_success[i])
            tabular.record(prefix + "ReplayBufferSize", len(self.buffer))
            tabular.record(prefix + "EnvSteps", self.total_env_steps // t)
            if mixture:
                tabular.record(prefix + "MixtureProbs", float(probs[i, i]))
                for j in range(t):
                    tabular.record(prefix + f"Policy{j}Prob", float(probs[i, j]))

    # ------------------------------------------------------------- snapshot
    def save_snapshot(self, epoch: int) -> Path:
        """Networks, optimisers, RNG states and counters (not the replay buffer) -> params.pt."""
        path = self.log_dir / "params.pt"
        torch.save({
            "epoch": epoch,
            "total_env_steps": self.total_env_steps,
            "algorithm": self.algorithm.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in _optimizers(self.algorithm)},
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state(),
                    "python": random.getstate()},
            "config": self.config.to_dict(),
        }, path)
        return path


def _optimizers(algorithm):
    return [(n, o) for n, o in vars(algorithm).items() if isinstance(o, torch.optim.Optimizer)]


def _mean(values) -> float:
    return float(np.mean(values)) if len(values) else float("nan")


def _nanmean(values) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


def log_episode_stats(prefix: str, record: EpisodeRecord, suite, epoch: int) -> dict[str, float]:
    """Record pooled and per-task evaluation metrics (reference §3.13 key names).

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
            "SuccessRate": _mean([x for i in idx for x in record.successes[i]]),
        }
        for key, name in suite.episode_info_keys.items():
            out[name] = _mean([x for i in idx for x in record.extras[key][i]])
        return out

    pooled = {prefix + k: v for k, v in metrics(range(suite.num_tasks)).items()}
    for key, value in pooled.items():
        tabular.record(key, value)
    for task in range(suite.num_tasks):
        for key, value in metrics([task]).items():
            tabular.record(f"{prefix}Task{task}/{key}", value)
    return pooled
