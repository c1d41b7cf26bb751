"""Working with a run's snapshots: ``run.py resume LOGDIR`` and ``run.py evaluate LOGDIR``."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
import torch

from garage_experiments import build_trainer, config_from_run, prepare_resume
from learning.sampler import evaluate
from learning.trainer import NonFiniteLossError, TrainingInterrupted

MODES = {"mop": "", "p": "p/"}  # evaluation mode -> the trainer's log prefix (reference §3.13)


def load_weights(trainer, snapshot: Path) -> int:
    """Load the policy and critic weights of ``snapshot`` (``policy.pt`` or ``params.pt``) into
    the trainer's algorithm; returns the snapshot's epoch.

    Raises:
        ValueError: if the file does not exist.
    """
    if not snapshot.is_file():
        raise ValueError(f"no snapshot {snapshot}: the run has not finished an epoch yet")
    state = torch.load(snapshot, map_location=trainer.sampler.device, weights_only=False)
    if "policy" in state:
        trainer.algorithm.policy.load_state_dict(state["policy"])
        trainer.algorithm.qf.load_state_dict(state["qf"])
    else:
        trainer.algorithm.load_state_dict(state["algorithm"])
    return int(state["epoch"])


def evaluate_run(log_dir: Path | str, episodes: int | None = None, modes=("mop", "p"),
                 video: bool = False, snapshot: Path | str | None = None) -> dict[str, dict]:
    """Evaluate a saved run's policies on the test envs, deterministically (reference §3.13).

    Args:
        log_dir: the run directory (its ``variant.json`` rebuilds the networks and envs).
        episodes: episodes per task (default: the run's ``--num_evaluation_episodes // T``).
        modes: ``mop`` (the behaviour mixture of QMP runs; the own policies otherwise) and/or
            ``p`` (each task's own policy); ``p`` is skipped for runs without a mixture.
        video: also render one episode per task and mode to ``<log_dir>/videos``.
        snapshot: the weights to load (default ``policy.pt``, else ``params.pt``).

    Returns:
        mode -> {"epoch", "tasks": [{task, name, success, return, episodes, extras...}], pooled
        "success" and "return"}.

    Raises:
        ValueError: not a run directory, no snapshot, or an unknown mode.
    """
    log_dir = Path(log_dir)
    config = config_from_run(log_dir)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"--mode {bad[0]!r}; allowed: {', '.join(MODES)}")
    if snapshot is None:
        snapshot = log_dir / "policy.pt" if (log_dir / "policy.pt").is_file() else log_dir / "params.pt"
    trainer = build_trainer(config, log_dir)
    try:
        epoch = load_weights(trainer, Path(snapshot))
        per_task = episodes or max(1, config.num_evaluation_episodes // trainer.num_tasks)
        results = {}
        for mode in modes:
            prefix = MODES[mode]
            if prefix not in trainer.eval_modes:
                continue
            behaviour = trainer.eval_modes[prefix]
            record = evaluate(trainer.eval_sampler, behaviour, per_task)
            results[mode] = _summary(record, trainer.suite, epoch)
            if video:
                from tools.video import record_videos
                record_videos(trainer.suite, behaviour, trainer.sampler.obs_indices.cpu().numpy(),
                              trainer.sampler.device, log_dir / "videos", tag=f"evaluate_{mode}",
                              num_videos=trainer.num_tasks, width=config.vis_width,
                              height=config.vis_height, fps=config.vis_fps, seed=config.seed + 30_000)
    finally:
        trainer.close()
    return results


def _summary(record, suite, epoch: int) -> dict:
    tasks = []
    for k in range(suite.num_tasks):
        row = {"task": k, "name": suite.task_names[k], "episodes": len(record.returns[k]),
               "success": float(np.mean(record.successes[k])),
               "return": float(np.mean(record.returns[k]))}
        for key, name in suite.episode_info_keys.items():
            row[name] = float(np.mean(record.extras[key][k]))
        tasks.append(row)
    return {"epoch": epoch, "tasks": tasks,
            "success": float(np.mean([t["success"] for t in tasks])),
            "return": float(np.mean([t["return"] for t in tasks]))}


def format_results(results: dict[str, dict]) -> str:
    """A plain-text table per mode: task, name, success rate, mean return (and extras)."""
    lines = []
    for mode, res in results.items():
        extras = [k for k in res["tasks"][0] if k not in ("task", "name", "episodes", "success", "return")]
        lines.append(f"mode {mode} (snapshot epoch {res['epoch']}, "
                     f"{res['tasks'][0]['episodes']} episodes per task)")
        lines.append("  ".join(["task", f"{'name':<28}", "success", "   return", *extras]))
        for t in res["tasks"]:
            cells = [f"{t['task']:>4}", f"{t['name'][:28]:<28}", f"{t['success']:7.3f}",
                     f"{t['return']:9.2f}", *(f"{t[k]:.3f}" for k in extras)]
            lines.append("  ".join(cells))
        lines.append(f"{'mean':>4}  {'':<28}  {res['success']:7.3f}  {res['return']:9.2f}")
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("log_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--episodes", type=click.IntRange(min=1), default=None,
              help="episodes per task [default: the run's --num_evaluation_episodes // T]")
@click.option("--mode", "modes", type=click.Choice(list(MODES)), multiple=True,
              help="mop: the behaviour mixture (QMP runs; the own policies otherwise); p: each task's "
                   "own policy. Repeat for both [default: both]")
@click.option("--video", is_flag=True, help="also render one episode per task to LOG_DIR/videos")
@click.option("--snapshot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="weights to load [default: LOG_DIR/policy.pt, else params.pt]")
def evaluate_command(log_dir, episodes, modes, video, snapshot):
    """Evaluate a saved run: per-task success and return, printed; no new log dir."""
    try:
        results = evaluate_run(log_dir, episodes, modes or tuple(MODES), video, snapshot)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    click.echo(format_results(results))


FINAL_KEYS = ("Evaluation/SuccessRate", "Evaluation/p/SuccessRate", "Evaluation/AverageReturn",
              "Evaluation/p/AverageReturn")


def train_and_report(trainer) -> None:
    """Train, print the final pooled metrics; a signal exits with 130 / 143 and a non-finite
    loss with 1, each after saying why (snapshot and logs are kept)."""
    try:
        final = trainer.train()
    except TrainingInterrupted as stop:
        click.echo(str(stop), err=True)
        sys.exit(stop.exit_code)
    except NonFiniteLossError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(1)
    for key in FINAL_KEYS:
        if key in final:
            click.echo(f"final {key}: {final[key]:.3f}")
    click.echo(f"logs in {trainer.log_dir}")


@click.command("resume")
@click.argument("log_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--n_epochs", type=click.IntRange(min=1), default=None,
              help="new total number of epochs (to extend a finished run) [default: the run's]")
def resume_command(log_dir, n_epochs):
    """Continue a run from its last snapshot, appending to its progress.csv and TensorBoard log.

    Exact continuation needs the run to have been started with --snapshot_buffer True.
    """
    try:
        trainer = prepare_resume(log_dir, n_epochs)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    click.echo(f"log dir: {trainer.log_dir} (resuming at epoch {trainer.start_epoch})")
    train_and_report(trainer)
