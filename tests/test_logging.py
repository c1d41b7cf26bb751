"""--log_per_task (which per-task columns a run logs) and the progress bar (off a terminal it steps
aside; --progress_bar decides; its number is the own policies')."""

from __future__ import annotations

import csv
import json
import re
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

import run
from learning.logging import keep_per_task_key
from learning.trainer import Trainer

T = 4  # MazeQuick-4-v0
TINY = ["qmp_dnc", "--env", "MazeQuick-4-v0", "--n_epochs", "1", "--batch_size", "40", "--min_buffer_size", "5",
        "--gradient_steps_per_itr", "4", "--buffer_batch_size", "4", "--hidden_sizes", "8",
        "--num_evaluation_episodes", "4", "--num_threads", "1", "--device", "cpu", "--seed", "3"]
PER_TASK = re.compile(r"(Task|LocalPolicy)\d+/")


def _run(tmp_path, capfd, level: str, *extra: str) -> tuple[list[dict], str, dict]:
    log_dir = tmp_path / level
    with pytest.raises(SystemExit) as done:
        run.main([*TINY, "--log_per_task", level, *extra, "--log_dir", str(log_dir)])
    assert done.value.code == 0
    err = capfd.readouterr().err
    with open(log_dir / "progress.csv") as f:
        rows = list(csv.DictReader(f))
    return rows, err, json.loads((log_dir / "variant.json").read_text())


def test_log_per_task_levels_select_columns_and_change_nothing_else(tmp_path, capfd):
    rows = {}
    for level, extra in (("all", ()), ("summary", ("--progress_bar", "True")), ("none", ())):
        rows[level], err, variant = _run(tmp_path, capfd, level, *extra)
        assert variant["log_per_task"] == level
        if level == "summary":  # asked for: the bar draws with carriage returns
            assert "\r" in err and "epoch" in err
        else:  # stderr is no terminal here: no bar frames in the log
            assert "\r" not in err and "epoch/s" not in err
    columns = {level: list(r[0]) for level, r in rows.items()}
    pooled = [c for c in columns["all"] if not PER_TASK.search(c)]
    for level in ("summary", "none"):
        assert [c for c in columns[level] if not PER_TASK.search(c)] == pooled
        for key in pooled:  # the same run: the per-task level only changes what is written
            if not key.startswith("Time/"):
                assert rows[level][0][key] == rows["all"][0][key], key
    assert not [c for c in columns["none"] if PER_TASK.search(c)]
    expected_summary = {f"{prefix}Task{k}/{leaf}" for prefix in ("Evaluation/", "Evaluation/p/")
                        for k in range(T) for leaf in ("SuccessRate", "AverageReturn")} | \
        {f"Train/LocalPolicy{k}/{leaf}" for k in range(T) for leaf in ("SuccessRate", "AverageReturn", "MixtureProbs")}
    assert {c for c in columns["summary"] if PER_TASK.search(c)} == expected_summary
    everything = set(columns["all"])
    assert expected_summary < everything
    assert {f"Train/LocalPolicy{i}/Policy{j}Prob" for i in range(T) for j in range(T)} <= everything
    assert {"Evaluation/p/Task2/NumEpisodes", "Train/LocalPolicy2/Qf1Loss"} <= everything


def test_keep_per_task_key_by_level():
    assert keep_per_task_key("Evaluation/p/Task12/StagesCompleted", "summary", {"StagesCompleted"})
    assert not keep_per_task_key("Evaluation/p/Task12/StagesCompleted", "summary")
    assert not keep_per_task_key("Train/LocalPolicy3/Policy12Prob", "summary")
    assert keep_per_task_key("Train/LocalPolicy3/Policy12Prob", "all")
    assert not keep_per_task_key("Evaluation/Task0/SuccessRate", "none")
    assert keep_per_task_key("Evaluation/SuccessRate", "none") and keep_per_task_key("Train/Qf1Loss", "none")
    with pytest.raises(ValueError, match="--log_per_task='some'; allowed: all, summary, none"):
        keep_per_task_key("Evaluation/SuccessRate", "some")


def test_a_bad_log_per_task_is_refused_before_any_work(tmp_path):
    result = CliRunner().invoke(run.cli, ["sac", "--env", "Pendulum-v1", "--log_per_task", "some",
                                          "--log_dir", str(tmp_path / "x")])
    assert result.exit_code == 2 and "--log_per_task='some'; allowed: all, summary, none" in result.output
    assert not (tmp_path / "x").exists()


class _Bar:
    def set_postfix(self, values):
        self.shown = dict(values)


@pytest.mark.parametrize("meaningful, final, shown", [
    # QMP: Evaluation/ is the mixture's number, Evaluation/p/ the own policies' (like for like).
    (True, {"Evaluation/SuccessRate": 0.9, "Evaluation/p/SuccessRate": 0.3, "Evaluation/AverageReturn": 5.0},
     {"success": "0.30"}),
    (True, {"Evaluation/SuccessRate": 0.9, "Evaluation/AverageReturn": 5.0}, {"success": "0.90"}),
    (False, {"Evaluation/AverageReturn": -5.0, "Evaluation/p/AverageReturn": -7.25}, {"avg_return": "-7.2"}),
])
def test_the_progress_bar_shows_the_own_policies_number(meaningful, final, shown):
    bar = _Bar()
    stub = SimpleNamespace(final_evaluation=final, suite=SimpleNamespace(success_is_meaningful=meaningful))
    Trainer._show_progress(stub, bar)
    assert bar.shown == shown
