"""``run.py evaluate LOGDIR``: a saved run's policies on its test envs, repeating the evaluation the
run logged at the snapshot's epoch (per-task success and return; a table or JSON)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import click
import numpy as np

from experiment_utils import resolve_device
from garage_experiments import build_trainer, config_from_run
from learning.sampler import evaluate, evaluation_seed
from tools.snapshots import load_weights, read_snapshot, warnings_echoed

MODES = {"mop": "", "p": "p/"}  # evaluation mode -> the trainer's log prefix (reference §3.13)


def logged_evaluation(log_dir: Path, epoch: int) -> dict[str, dict]:
    """The evaluation progress.csv logged at ``epoch``: mode -> {"success", "return"} (a metric
    the run did not log is left out; a mode without a logged evaluation is absent)."""
    try:
        with open(log_dir / "progress.csv", newline="") as f:
            row = next((r for r in csv.DictReader(f) if r.get("Epoch") == str(epoch)), None)
    except OSError:
        return {}
    out: dict[str, dict] = {}
    for mode, prefix in MODES.items():
        metrics = {name: float(row[key]) for name, key in
                   (("success", f"Evaluation/{prefix}SuccessRate"), ("return", f"Evaluation/{prefix}AverageReturn"))
                   if row and row.get(key)}
        if "return" in metrics:
            out[mode] = metrics
    return out


def evaluate_run(log_dir: Path | str, episodes: int | None = None, modes=("mop", "p"),
                 video: bool = False, snapshot: Path | str | None = None,
                 seed: int | None = None) -> dict[str, dict]:
    """Evaluate a saved run's policies on the test envs, deterministically (reference §3.13).

    Each mode is evaluated as the trainer does (:func:`learning.sampler.evaluation_seed` of the
    seed, the snapshot's epoch and the mode), so with the defaults it reproduces the evaluation
    the run logged at the snapshot's epoch, whatever modes are chosen (with
    ``--distillation_period``, an epoch's evaluation precedes its distillation and differs).

    Args:
        log_dir: the run directory (its ``variant.json`` rebuilds the networks and envs).
        episodes: episodes per task (default: the run's ``--num_evaluation_episodes // T``).
        modes: ``mop`` (the behaviour mixture of QMP runs; the own policies otherwise) and/or
            ``p`` (each task's own policy); ``p`` is skipped for runs without a mixture.
        video: also render one episode per task and mode to ``<log_dir>/videos``.
        snapshot: the weights to load (default ``policy.pt``, else ``params.pt``, else the
            newest readable ``itr_<epoch>.pt``).
        seed: the seed evaluations are derived from (default: the run's ``--seed``).

    Returns:
        mode -> {"epoch", "snapshot", "seed", "tasks": [{task, name, success, return, episodes,
        extras...}], pooled "success" and "return"}; "success" is None for suites whose success
        is meaningless (HalfCheetah, one-task gymnasium ids).

    Raises:
        ValueError: not a run directory, a broken variant.json, no readable snapshot, or an
            unknown mode.
    """
    log_dir = Path(log_dir)
    config = config_from_run(log_dir)
    bad = [m for m in modes if m not in MODES]
    if bad:
        raise ValueError(f"--mode {bad[0]!r}; allowed: {', '.join(MODES)}")
    device = resolve_device(config.device, config.gpu)
    path, state = read_snapshot(log_dir, ["policy.pt", "params.pt"], device, keys=["policy", "algorithm"],
                                explicit=Path(snapshot) if snapshot is not None else None)
    seed = config.seed if seed is None else seed
    trainer = build_trainer(config, log_dir)
    try:
        epoch = load_weights(trainer, state)
        per_task = episodes or max(1, config.num_evaluation_episodes // trainer.num_tasks)
        results = {}
        for mode in modes:
            prefix = MODES[mode]
            if prefix not in trainer.eval_modes:
                continue
            behaviour = trainer.eval_modes[prefix]
            record = evaluate(trainer.eval_sampler, behaviour, per_task,
                              seed=evaluation_seed(seed, epoch, prefix))
            results[mode] = {**_summary(record, trainer.suite, epoch), "snapshot": str(path), "seed": seed}
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
    with_success = getattr(suite, "success_is_meaningful", True)
    tasks = []
    for k in range(suite.num_tasks):
        row = {"task": k, "name": suite.task_names[k], "episodes": len(record.returns[k]),
               "success": float(np.mean(record.successes[k])) if with_success else None,
               "return": float(np.mean(record.returns[k]))}
        for key, name in suite.episode_info_keys.items():
            row[name] = float(np.mean(record.extras[key][k]))
        tasks.append(row)
    return {"epoch": epoch, "tasks": tasks,
            "success": float(np.mean([t["success"] for t in tasks])) if with_success else None,
            "return": float(np.mean([t["return"] for t in tasks]))}


def _cell(value, width: int, digits: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:{width}.{digits}f}"


def format_results(results: dict[str, dict], logged: dict[str, dict] | None = None) -> str:
    """A plain-text table per mode: task, name, success rate ('-' where success is meaningless),
    mean return (and extras); with ``logged``, the values the run logged at that epoch."""
    lines = []
    for mode, res in results.items():
        extras = [k for k in res["tasks"][0] if k not in ("task", "name", "episodes", "success", "return")]
        lines.append(f"mode {mode} (snapshot epoch {res['epoch']}, "
                     f"{res['tasks'][0]['episodes']} episodes per task)")
        lines.append("  ".join(["task", f"{'name':<28}", "success", "   return", *extras]))
        for t in res["tasks"]:
            cells = [f"{t['task']:>4}", f"{t['name'][:28]:<28}", _cell(t["success"], 7, 3),
                     f"{t['return']:9.2f}", *(f"{t[k]:.3f}" for k in extras)]
            lines.append("  ".join(cells))
        lines.append(f"{'mean':>4}  {'':<28}  {_cell(res['success'], 7, 3)}  {res['return']:9.2f}")
        if logged and mode in logged:
            lines.append(f"{'':>4}  {'logged (progress.csv)':<28}  "
                         f"{_cell(logged[mode].get('success'), 7, 3)}  {logged[mode]['return']:9.2f}")
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
              help="weights to load [default: LOG_DIR/policy.pt, else params.pt, else the newest "
                   "readable itr_<epoch>.pt]")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None,
              help="seed of the evaluation episodes [default: the run's --seed, which repeats the "
                   "evaluation the run logged at the snapshot's epoch]")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True), default=None,
              is_flag=False, flag_value="-",
              help="also write the results as JSON to this file; --json alone (or --json=-): JSON to "
                   "stdout instead of the table")
def evaluate_command(log_dir, episodes, modes, video, snapshot, seed, json_out):
    """Evaluate a saved run: per-task success and return, printed; no new log dir.

    With the defaults it repeats the evaluation the run logged at the snapshot's epoch (the
    'logged' line shows that row of progress.csv).
    """
    with warnings_echoed(click.echo):
        try:
            results = evaluate_run(log_dir, episodes, modes or tuple(MODES), video, snapshot, seed)
        except ValueError as err:
            raise click.UsageError(str(err)) from None
    epoch = next(iter(results.values()))["epoch"] if results else None
    logged = logged_evaluation(log_dir, epoch) if epoch is not None and episodes is None and seed is None \
        else {}
    if json_out is None or json_out != "-":
        click.echo(format_results(results, logged))
    if json_out is not None:
        report = json.dumps({"log_dir": str(log_dir), "modes": results, "logged": logged}, indent=2)
        if json_out == "-":
            click.echo(report)
        else:
            Path(json_out).write_text(report + "\n")
