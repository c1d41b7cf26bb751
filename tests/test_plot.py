"""tools/plot.py: grouping by variant.json, curve statistics, summary table, figures, errors.

Run dirs are built by hand (variant.json + progress.csv) so every expected value is known; one
slow test plots two real 2-epoch runs.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
from click.testing import CliRunner

from tools import plot
from tools.plot import compute_curves, compute_selection, compute_summary, load_runs, make_plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PDF_MAGIC = b"%PDF-"

BASE_VARIANT = {
    "experiment": "qmp_dnc", "env": "MazeLarge-10-v0", "seed": 0, "name": "None", "n_epochs": 5,
    "lr": 0.0003, "hidden_sizes": [8], "num_threads": 1, "device": "auto", "log_dir": "",
    "resolved": {"num_tasks": 2, "device": "cpu"},
}


def write_run(path: Path, columns: dict[str, list], **variant) -> Path:
    """A fake run dir: ``columns`` maps a progress.csv column to its values (None = empty cell)."""
    path.mkdir(parents=True)
    v = {**BASE_VARIANT, "log_dir": str(path), **variant}
    (path / "variant.json").write_text(json.dumps(v, indent=2))
    n = len(next(iter(columns.values())))
    cols = {"Epoch": list(range(n)), **columns}
    with open(path / "progress.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(cols))
        for i in range(n):
            writer.writerow(["" if cols[c][i] is None else cols[c][i] for c in cols])
    return path


def steps(n: int, per_epoch: int = 100) -> list[int]:
    return [per_epoch * (i + 1) for i in range(n)]


# ------------------------------------------------------------------------------ grouping
def test_groups_follow_variant_json_not_directory_names(tmp_path):
    # Directory names pair the runs differently from variant.json (and claim the wrong seeds).
    runs = {
        "qmp_lr0.001_seed0": dict(lr=0.0003, seed=0, value=0.1),
        "qmp_lr0.001_seed1": dict(lr=0.001, seed=1, value=0.6),
        "qmp_lr0.0003_seed0": dict(lr=0.001, seed=0, value=0.8, num_threads=4, name="other"),
        "qmp_lr0.0003_seed1": dict(lr=0.0003, seed=1, value=0.3),
    }
    for name, r in runs.items():
        write_run(tmp_path / name, {"TotalEnvSteps": steps(3), "Evaluation/p/SuccessRate": [r["value"]] * 3},
                  lr=r["lr"], seed=r["seed"], num_threads=r.get("num_threads", 1),
                  name=r.get("name", "None"))
    curves = compute_curves([tmp_path / n for n in runs])
    assert [c.label for c in curves] == ["qmp_dnc MazeLarge-10-v0 lr=0.0003", "qmp_dnc MazeLarge-10-v0 lr=0.001"]
    low_lr, high_lr = curves
    assert {p.name for p in low_lr.runs} == {"qmp_lr0.001_seed0", "qmp_lr0.0003_seed1"}
    assert {p.name for p in high_lr.runs} == {"qmp_lr0.001_seed1", "qmp_lr0.0003_seed0"}
    np.testing.assert_allclose(low_lr.mean, [0.2] * 3)
    np.testing.assert_allclose(high_lr.mean, [0.7] * 3)
    assert low_lr.n_seeds == high_lr.n_seeds == 2


def test_runs_from_before_a_speed_only_flag_existed_group_with_newer_ones(tmp_path):
    # variant.json of older runs lacks --n_workers (it changes speed, not results); newer ones have it.
    write_run(tmp_path / "old", {"TotalEnvSteps": steps(2), "Evaluation/p/SuccessRate": [0.0, 0.2]}, seed=0)
    write_run(tmp_path / "new", {"TotalEnvSteps": steps(2), "Evaluation/p/SuccessRate": [0.0, 0.6]},
              seed=1, n_workers=1)
    (curve,) = compute_curves([tmp_path / "old", tmp_path / "new"])
    assert curve.label == "qmp_dnc MazeLarge-10-v0" and curve.n_seeds == 2
    np.testing.assert_allclose(curve.mean, [0.0, 0.4])


def test_parent_dir_expands_and_labels_show_only_differing_flags(tmp_path):
    for i, (exp, hidden) in enumerate([("qmp_dnc", [8]), ("qmp_dnc", [16]), ("dnc_sac", [8])]):
        write_run(tmp_path / "sweep" / f"run{i}", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]},
                  experiment=exp, hidden_sizes=hidden)
    curves = compute_curves([tmp_path / "sweep"])
    assert [c.label for c in curves] == ["dnc_sac MazeLarge-10-v0", "qmp_dnc MazeLarge-10-v0 hidden_sizes=16",
                                         "qmp_dnc MazeLarge-10-v0 hidden_sizes=8"]


def test_parent_dir_skips_runs_that_are_still_starting_with_a_note(tmp_path):
    good = write_run(tmp_path / "sweep" / "done", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]})
    starting = tmp_path / "sweep" / "starting"
    starting.mkdir()
    (starting / "variant.json").write_text(json.dumps(BASE_VARIANT))
    no_eval = write_run(tmp_path / "sweep" / "no_eval", {"TotalEnvSteps": steps(1), "Evaluation/SuccessRate": [None]},
                        seed=1)
    notes = []
    runs = load_runs([tmp_path / "sweep"], log=notes.append)
    assert [r.path for r in runs] == [good]
    assert len(notes) == 2 and any("starting" in n for n in notes) and any("no_eval" in n for n in notes)
    result = CliRunner().invoke(plot.plot_command, [str(no_eval), "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 2 and "no values" in result.output and "no_eval" in result.output


# ------------------------------------------------------------------------------ curves
def test_mean_and_band_match_numpy_and_skip_empty_cells(tmp_path):
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 1, size=(3, 4))  # 3 seeds x 4 evaluations
    dirs = []
    for seed in range(3):
        # Evaluation every other epoch: the odd rows are empty and must be left out.
        y = [values[seed, i // 2] if i % 2 == 0 else None for i in range(8)]
        dirs.append(write_run(tmp_path / f"r{seed}", {"TotalEnvSteps": steps(8), "Evaluation/SuccessRate": y},
                              seed=seed))
    (curve,) = compute_curves(dirs)
    np.testing.assert_array_equal(curve.x, [100, 300, 500, 700])
    np.testing.assert_allclose(curve.mean, values.mean(axis=0))
    # A percentile bootstrap of the mean of 3 seeds puts mass 1/27 (> 2.5 %) on "all three resamples
    # are the lowest seed" (and likewise the highest), so the 95 % band is exactly [min, max].
    np.testing.assert_allclose(curve.low, values.min(axis=0))
    np.testing.assert_allclose(curve.high, values.max(axis=0))


def test_band_matches_an_independent_bootstrap(tmp_path):
    values = np.array([[0.0, 0.2, 0.5], [0.3, 0.4, 0.9], [0.1, 0.9, 0.2], [0.6, 0.6, 0.7], [0.2, 0.1, 1.0]])
    dirs = [write_run(tmp_path / f"r{s}", {"TotalEnvSteps": steps(3), "Evaluation/SuccessRate": list(values[s])},
                      seed=s) for s in range(5)]
    (curve,) = compute_curves(dirs)
    rng = np.random.default_rng(12345)
    boot = np.array([values[rng.integers(0, 5, 5)].mean(axis=0) for _ in range(20000)])
    np.testing.assert_allclose(curve.low, np.percentile(boot, 2.5, axis=0), atol=0.03)
    np.testing.assert_allclose(curve.high, np.percentile(boot, 97.5, axis=0), atol=0.03)
    assert np.all(curve.low < curve.mean) and np.all(curve.mean < curve.high)


def test_different_step_grids_are_interpolated_onto_the_shared_range(tmp_path):
    xa, ya = [0, 100, 200, 300, 400], [0.0, 0.4, 0.2, 0.8, 1.0]
    xb, yb = [50, 150, 250, 350], [1.0, 0.0, 0.5, 0.5]
    a = write_run(tmp_path / "a", {"TotalEnvSteps": xa, "Evaluation/SuccessRate": ya}, seed=0)
    b = write_run(tmp_path / "b", {"TotalEnvSteps": xb, "Evaluation/SuccessRate": yb}, seed=1)
    (curve,) = compute_curves([a, b])
    grid = [50, 100, 150, 200, 250, 300, 350]
    np.testing.assert_array_equal(curve.x, grid)
    # Linear interpolation by hand: a at 50/150/250/350 is halfway between its neighbours;
    # b at 100/200/300 is halfway between its neighbours.
    a_on_grid = [0.2, 0.4, 0.3, 0.2, 0.5, 0.8, 0.9]
    b_on_grid = [1.0, 0.5, 0.0, 0.25, 0.5, 0.5, 0.5]
    np.testing.assert_allclose(curve.mean, (np.array(a_on_grid) + np.array(b_on_grid)) / 2)


def test_one_seed_has_no_band(tmp_path):
    d = write_run(tmp_path / "solo", {"TotalEnvSteps": steps(3), "Evaluation/SuccessRate": [0.1, 0.2, 0.3]})
    (curve,) = compute_curves([d])
    assert curve.low is None and curve.high is None and curve.n_seeds == 1
    np.testing.assert_allclose(curve.mean, [0.1, 0.2, 0.3])


def test_task_curves_use_the_metrics_task_columns(tmp_path):
    dirs = []
    for s, (t0, t1) in enumerate([([0, 1], [1, 1]), ([0, 0], [0, 1])]):
        dirs.append(write_run(tmp_path / f"r{s}", {
            "TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [9, 9], "Evaluation/p/SuccessRate": [0.5, 0.5],
            "Evaluation/Task0/SuccessRate": [9, 9], "Evaluation/Task1/SuccessRate": [9, 9],
            "Evaluation/p/Task0/SuccessRate": t0, "Evaluation/p/Task1/SuccessRate": t1}, seed=s))
    (suite, tasks), = plot.compute_task_curves(dirs).items()
    assert suite == "MazeLarge-10-v0" and list(tasks) == [0, 1]
    np.testing.assert_allclose(tasks[0][0].mean, [0.0, 0.5])
    np.testing.assert_allclose(tasks[1][0].mean, [0.5, 1.0])
    assert tasks[1][0].metrics == ["Evaluation/p/Task1/SuccessRate"]


# ------------------------------------------------------------------------------ default metric
def _metric_columns(prefixes, leaves=("SuccessRate", "AverageReturn")):
    return {f"Evaluation/{p}{leaf}": [0.0, 1.0] for p in prefixes for leaf in leaves}


@pytest.mark.parametrize("env, prefixes, expected", [
    ("HalfCheetahMT5-v0", ["", "p/"], "Evaluation/p/AverageReturn"),
    ("HalfCheetahMT5-v0", [""], "Evaluation/AverageReturn"),
    ("Pendulum-v1", [""], "Evaluation/AverageReturn"),
    ("MazeLarge-10-v0", ["", "p/"], "Evaluation/p/SuccessRate"),
    ("MazeLarge-10-v0", [""], "Evaluation/SuccessRate"),
])
def test_default_metric(tmp_path, env, prefixes, expected):
    d = write_run(tmp_path / "r", {"TotalEnvSteps": steps(2), **_metric_columns(prefixes)}, env=env)
    (run,) = load_runs([d])
    assert run.metric == expected


# ------------------------------------------------------------------------------ summary
def test_summary_csv_iqm_and_mean_match_independent_computation(tmp_path):
    finals = np.array([0.05, 0.9, 0.3, 0.35, 0.4, 0.42, 0.6, 1.0])
    dirs = []
    for s, final in enumerate(finals):
        # Last row has no evaluation: the final score is the last evaluated epoch's value.
        y = [0.0, final, None]
        dirs.append(write_run(tmp_path / f"a{s}", {"TotalEnvSteps": steps(3), "Evaluation/SuccessRate": y}, seed=s))
    dirs.append(write_run(tmp_path / "b0", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0.0, 0.7]},
                          lr=0.001))
    paths = make_plots(dirs, out=tmp_path / "out" / "fig.png", log=lambda m: None)
    table = next(p for p in paths if p.suffix == ".csv")
    assert table == tmp_path / "out" / "fig_summary.csv"
    with open(table) as f:
        rows = {r["group"]: r for r in csv.DictReader(f)}
    a = rows["qmp_dnc MazeLarge-10-v0 lr=0.0003"]
    assert int(a["n_seeds"]) == 8
    assert float(a["iqm"]) == pytest.approx(scipy.stats.trim_mean(finals, 0.25))
    assert float(a["iqm"]) != pytest.approx(finals.mean())  # the data tell IQM and mean apart
    assert float(a["mean"]) == pytest.approx(finals.mean())
    assert float(a["iqm_ci_low"]) <= float(a["iqm"]) <= float(a["iqm_ci_high"])
    assert float(a["mean_ci_low"]) < float(a["mean"]) < float(a["mean_ci_high"])
    assert finals.min() <= float(a["mean_ci_low"]) and float(a["mean_ci_high"]) <= finals.max()
    b = rows["qmp_dnc MazeLarge-10-v0 lr=0.001"]
    assert int(b["n_seeds"]) == 1
    for key in ("iqm", "iqm_ci_low", "iqm_ci_high", "mean", "mean_ci_low", "mean_ci_high"):
        assert float(b[key]) == pytest.approx(0.7)
    assert list(rows[a["group"]]) == list(plot.SUMMARY_COLUMNS)


def test_compute_summary_uses_the_last_evaluated_value_per_run(tmp_path):
    d0 = write_run(tmp_path / "x0", {"TotalEnvSteps": steps(4), "Evaluation/SuccessRate": [0.9, 0.2, None, None]})
    d1 = write_run(tmp_path / "x1", {"TotalEnvSteps": steps(4), "Evaluation/SuccessRate": [0.0, None, 0.4, None]},
                   seed=1)
    (row,) = compute_summary([d0, d1]).to_dict("records")
    assert row["mean"] == pytest.approx(0.3)


# ------------------------------------------------------------------------------ selection
def _selection_columns(kind: str, matrices: list[np.ndarray]) -> dict[str, list]:
    t = matrices[0].shape[0]
    return {f"Train/LocalPolicy{i}/{kind}{j}Prob": [m[i, j] for m in matrices] for i in range(t) for j in range(t)}


def test_selection_matrix_is_the_seed_mean_of_the_last_epoch(tmp_path):
    first = np.eye(2)
    last0 = np.array([[0.75, 0.25], [0.5, 0.5]])
    last1 = np.array([[0.25, 0.75], [0.0, 1.0]])
    d0 = write_run(tmp_path / "q0", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1],
                                     **_selection_columns("Policy", [first, last0])})
    d1 = write_run(tmp_path / "q1", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1],
                                     **_selection_columns("Policy", [first, last1])}, seed=1)
    ctpg = write_run(tmp_path / "c0", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1],
                                       **_selection_columns("Guide", [first, last1])}, experiment="ctpg")
    plain = write_run(tmp_path / "d0", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]},
                      experiment="dnc_sac")
    sels = {(s.label, s.kind): s for s in compute_selection([d0, d1, ctpg, plain])}
    assert set(sels) == {("qmp_dnc MazeLarge-10-v0", "Policy"), ("ctpg MazeLarge-10-v0", "Guide")}
    qmp = sels[("qmp_dnc MazeLarge-10-v0", "Policy")]
    np.testing.assert_allclose(qmp.matrix, (last0 + last1) / 2)
    assert qmp.n_seeds == 2 and qmp.epochs == [1, 1]
    np.testing.assert_allclose(sels[("ctpg MazeLarge-10-v0", "Guide")].matrix, last1)


def test_no_selection_columns_skips_the_heat_map_with_a_note(tmp_path):
    d = write_run(tmp_path / "d", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]})
    notes = []
    paths = make_plots([d], out=tmp_path / "p.png", log=notes.append)
    assert not (tmp_path / "p_selection.png").exists()
    assert tmp_path / "p_selection.png" not in paths
    assert any("selection" in n for n in notes) and any("per-task" in n for n in notes)


# ------------------------------------------------------------------------------ figures
def _full_runs(tmp_path: Path) -> list[Path]:
    dirs = []
    for s in range(2):
        for exp in ("qmp_dnc", "dnc_sac"):
            cols = {"TotalEnvSteps": steps(4), "Evaluation/SuccessRate": [0, 0.5, None, 1],
                    "Evaluation/Task0/SuccessRate": [0, 1, None, 1], "Evaluation/Task1/SuccessRate": [0, 0, None, 1]}
            if exp == "qmp_dnc":
                cols.update({"Evaluation/p/SuccessRate": [0, 0.5 * s, None, 1],
                             "Evaluation/p/Task0/SuccessRate": [0, s, None, 1],
                             "Evaluation/p/Task1/SuccessRate": [0, 0, None, 1]})
                cols.update(_selection_columns("Policy", [np.eye(2)] * 3 + [np.full((2, 2), 0.5)]))
            dirs.append(write_run(tmp_path / f"{exp}_{s}", cols, experiment=exp, seed=s))
    return dirs


@pytest.mark.parametrize("ext, magic", [(".png", PNG_MAGIC), (".pdf", PDF_MAGIC)])
def test_every_figure_is_written_in_the_requested_format(tmp_path, ext, magic):
    out = tmp_path / "figs" / f"curves{ext}"
    paths = make_plots(_full_runs(tmp_path), out=out, log=lambda m: None)
    expected = [out, tmp_path / "figs" / f"curves_tasks{ext}", tmp_path / "figs" / f"curves_selection{ext}",
                tmp_path / "figs" / f"curves_summary{ext}", tmp_path / "figs" / "curves_summary.csv"]
    assert paths == expected
    for p in expected[:-1]:
        assert p.read_bytes()[:len(magic)] == magic, p


def test_cli_writes_the_default_out_in_the_current_dir(tmp_path, monkeypatch):
    dirs = _full_runs(tmp_path / "runs")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(plot.plot_command, [str(tmp_path / "runs")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "plot.png").read_bytes()[:8] == PNG_MAGIC
    assert (tmp_path / "plot_summary.csv").is_file()
    assert "wrote plot.png" in result.output
    assert len(dirs) == 4


# ------------------------------------------------------------------------------ errors
def _invoke(args):
    return CliRunner().invoke(plot.plot_command, [str(a) for a in args])


def test_logdir_without_run_files_is_a_usage_error(tmp_path):
    good = write_run(tmp_path / "good", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]})
    empty = tmp_path / "not_a_run"
    empty.mkdir()
    out = tmp_path / "o.png"
    result = _invoke([good, empty, "--out", out])
    assert result.exit_code == 2
    assert "not_a_run" in result.output and "variant.json" in result.output
    assert not out.exists()
    only_variant = tmp_path / "half"
    only_variant.mkdir()
    (only_variant / "variant.json").write_text(json.dumps(BASE_VARIANT))
    result = _invoke([good, only_variant, "--out", out])
    assert result.exit_code == 2 and "half" in result.output and "progress.csv" in result.output
    result = _invoke([tmp_path / "missing", "--out", out])
    assert result.exit_code == 2 and "missing" in result.output
    assert not out.exists()


def test_unknown_metric_is_a_usage_error_listing_close_matches(tmp_path):
    qmp = write_run(tmp_path / "qmp", {"TotalEnvSteps": steps(2), "Evaluation/p/SuccessRate": [0, 1],
                                       "Evaluation/SuccessRate": [0, 1]})
    dnc = write_run(tmp_path / "dnc", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]},
                    experiment="dnc_sac")
    out = tmp_path / "o.png"
    result = _invoke([qmp, dnc, "--metric", "Evaluation/p/SuccessRate", "--out", out])
    assert result.exit_code == 2
    assert "Evaluation/p/SuccessRate" in result.output and "dnc" in result.output
    assert "close matches: Evaluation/SuccessRate" in result.output
    result = _invoke([qmp, "--metric", "Evaluation/SucessRate", "--out", out])
    assert result.exit_code == 2 and "Evaluation/SuccessRate" in result.output
    assert not out.exists()


def test_bad_out_extension_is_a_usage_error(tmp_path):
    d = write_run(tmp_path / "r", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0, 1]})
    result = _invoke([d, "--out", tmp_path / "x.jpg"])
    assert result.exit_code == 2 and ".png or .pdf" in result.output


# ------------------------------------------------------------------------------ real runs
@pytest.mark.slow
def test_real_run(tmp_path):
    import run as run_py

    first = tmp_path / "weird_name_0"
    args = ["qmp_dnc", "--env=MazeLarge-10-v0", "--n_epochs", "2", "--batch_size", "100", "--min_buffer_size",
            "20", "--gradient_steps_per_itr", "2", "--buffer_batch_size", "8", "--hidden_sizes", "8",
            "--num_evaluation_episodes", "10", "--num_threads", "1", "--log_dir", str(first)]
    with pytest.raises(SystemExit) as exit_info:
        run_py.main(args)
    assert exit_info.value.code == 0
    # A second "seed": the same real files under another seed and a misleading name.
    second = tmp_path / "dnc_sac_lr0.1"
    shutil.copytree(first, second)
    variant = json.loads((second / "variant.json").read_text())
    (second / "variant.json").write_text(json.dumps({**variant, "seed": 1, "log_dir": str(second)}))
    paths = make_plots([tmp_path], out=tmp_path / "real.png", log=lambda m: None)
    assert [p.name for p in paths] == ["real.png", "real_tasks.png", "real_selection.png", "real_summary.png",
                                       "real_summary.csv"]
    (curve,) = compute_curves([tmp_path])
    assert curve.label == "qmp_dnc MazeLarge-10-v0" and curve.n_seeds == 2
    assert curve.metrics == ["Evaluation/p/SuccessRate"] and len(curve.x) == 2
    (sel,) = compute_selection([tmp_path])
    assert sel.matrix.shape == (10, 10)
    np.testing.assert_allclose(sel.matrix.sum(axis=1), 1.0)


def test_fast_iqm_equals_rliable():
    from rliable import metrics

    rng = np.random.default_rng(0)
    for shape in [(1, 1), (3, 1), (4, 1), (7, 3), (10, 5)]:
        x = rng.normal(size=shape)
        assert plot.iqm(x) == pytest.approx(metrics.aggregate_iqm(x))


def test_flags_the_experiment_does_not_accept_and_provenance_do_not_split_groups(tmp_path):
    """A CTPG guide preset recorded in an mtsac run, or another command line, is not a setting of
    that run; a flag mtsac accepts (lr) still splits."""
    col = {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0.1, 0.2]}
    write_run(tmp_path / "a", col, experiment="mtsac", seed=0, argv=["x"], git_dirty=True)
    write_run(tmp_path / "b", col, experiment="mtsac", seed=1, guide_hidden_sizes=[400, 400],
              guide_batch_size=128, argv=["y"], git_dirty=False)
    write_run(tmp_path / "c", col, experiment="mtsac", seed=2, lr=0.001)
    groups = plot.group_runs(plot.load_runs([tmp_path / "a", tmp_path / "b", tmp_path / "c"]))
    assert sorted(len(g.runs) for g in groups) == [1, 2]
    assert sorted(g.label for g in groups) == ["mtsac MazeLarge-10-v0 lr=0.0003",
                                               "mtsac MazeLarge-10-v0 lr=0.001"]


def test_thresholds_first_env_step_reaching_each_level(tmp_path):
    write_run(tmp_path / "a", {"TotalEnvSteps": steps(5), "Evaluation/SuccessRate": [0.1, 0.85, 0.5, 1.0, 1.0]},
              seed=0)
    write_run(tmp_path / "b", {"TotalEnvSteps": steps(5), "Evaluation/SuccessRate": [0.0, 0.2, 0.8, 0.9, 0.95]},
              seed=1)
    table = plot.compute_thresholds([tmp_path], [0.8, 1.0]).set_index(["seed", "threshold"])
    assert table.loc[(0, 0.8), "first_steps"] == 200 and table.loc[(1, 0.8), "first_steps"] == 300
    assert table.loc[(0, 1.0), "first_steps"] == 400 and np.isnan(table.loc[(1, 1.0), "first_steps"])
    assert table.loc[(0, 0.8), "group_median_steps"] == 250 and table.loc[(0, 0.8), "seeds_reached"] == "2/2"
    assert np.isnan(table.loc[(0, 1.0), "group_median_steps"]) and table.loc[(1, 1.0), "seeds_reached"] == "1/2"
    result = CliRunner().invoke(plot.plot_command, [str(tmp_path), "--out", str(tmp_path / "p.png"),
                                                    "--thresholds", "0.8,x"])
    assert result.exit_code == 2 and "--thresholds" in result.output


def test_leaf_metric_takes_the_own_policy_column_where_a_run_logs_it(tmp_path):
    write_run(tmp_path / "qmp", {"TotalEnvSteps": steps(2), "Evaluation/StagesCompleted": [0.5, 0.6],
                                 "Evaluation/p/StagesCompleted": [0.1, 0.2]}, seed=0)
    write_run(tmp_path / "sep", {"TotalEnvSteps": steps(2), "Evaluation/StagesCompleted": [0.3, 0.4]},
              seed=0, experiment="dnc_sac")
    metrics = {r.path.name: r.metric for r in load_runs([tmp_path], "StagesCompleted")}
    assert metrics == {"qmp": "Evaluation/p/StagesCompleted", "sep": "Evaluation/StagesCompleted"}
    with pytest.raises(Exception, match="neither Evaluation/p/Nope nor Evaluation/Nope"):
        load_runs([tmp_path], "Nope")


# ------------------------------------------------------------------------------ suites (issue 20)
def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def _inside(fig, texts) -> None:
    """Every text is drawn inside the figure (not cut off at its edge)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    width, height = fig.bbox.width, fig.bbox.height
    for text in texts:
        box = text.get_window_extent(renderer)
        assert text.get_text() and box.x0 >= 0 and box.y0 >= 0 and box.x1 <= width and box.y1 <= height, \
            (text.get_text(), box, width, height)


def _two_suite_root(root: Path) -> None:
    """Maze runs (success; QMP's own-policy column beside Separated's) and HalfCheetah runs (return)."""
    for s in range(2):
        write_run(root / f"maze_qmp_{s}", {
            "TotalEnvSteps": steps(3), "Evaluation/SuccessRate": [0.5, 0.6, 0.7], "Evaluation/p/SuccessRate": [0.1, 0.2, 0.3],
            "Evaluation/p/Task0/SuccessRate": [0.0, 0.5, 1.0], "Evaluation/p/Task1/SuccessRate": [0.0, 0.0, 0.5]},
            seed=s, resolved={"num_tasks": 2, "task_names": ["alpha-room", "beta-room"]})
        write_run(root / f"maze_sep_{s}", {
            "TotalEnvSteps": steps(3), "Evaluation/SuccessRate": [0.2, 0.4, 0.9],
            "Evaluation/Task0/SuccessRate": [0.0, 0.5, 1.0], "Evaluation/Task1/SuccessRate": [0.4, 0.3, 0.8]},
            seed=s, experiment="dnc_sac", resolved={"num_tasks": 2, "task_names": ["alpha-room", "beta-room"]})
        write_run(root / f"cheetah_{s}", {
            "TotalEnvSteps": steps(3), "Evaluation/AverageReturn": [500.0, 800.0, 1200.0 + s],
            **{f"Evaluation/Task{k}/AverageReturn": [400.0 + k, 700.0, 1100.0] for k in range(5)}},
            seed=s, env="HalfCheetahMT5-v0", experiment="dnc_sac")


def test_several_suites_get_one_panel_each_and_a_task_block_each_with_task_names(tmp_path):
    _two_suite_root(tmp_path / "root")
    groups = plot.group_runs(load_runs([tmp_path / "root"], log=lambda m: None))
    figures, summary = plot.make_figures(groups, log=lambda m: None)

    panels = _visible_axes(figures[""])
    assert [ax.get_title().split("\n")[0] for ax in panels] == ["HalfCheetahMT5-v0", "MazeLarge-10-v0"]
    assert [ax.get_ylabel() for ax in panels] == ["AverageReturn", "SuccessRate"]
    cheetah, maze = panels
    assert all(min(line.get_ydata()) >= 500 for line in cheetah.get_lines())  # returns only
    assert len(maze.get_lines()) == 2 and all(max(line.get_ydata()) <= 1 for line in maze.get_lines())
    _inside(figures[""], [ax.yaxis.label for ax in panels])

    grid = figures["tasks"]
    blocks = grid.subfigs
    assert [b._suptitle.get_text() for b in blocks] == ["HalfCheetahMT5-v0", "MazeLarge-10-v0"]
    titles = [[ax.get_title() for ax in b.axes if ax.get_visible()] for b in blocks]
    assert titles == [[f"{k}: Gravity{g}" for k, g in enumerate(["1.0", "0.5", "0.75", "1.5", "1.25"])],
                      ["0: alpha-room", "1: beta-room"]]
    assert [b._supylabel.get_text() for b in blocks] == ["AverageReturn", "SuccessRate"]
    _inside(grid, [b._supylabel for b in blocks])
    for ax in blocks[1].axes:  # task k of the maze only: success values
        assert all(max(line.get_ydata()) <= 1 for line in ax.get_lines())

    assert list(summary["suite"]) == ["HalfCheetahMT5-v0", "MazeLarge-10-v0", "MazeLarge-10-v0"]
    summary_axes = _visible_axes(figures["summary"])
    assert [ax.get_xlabel() for ax in summary_axes] == ["AverageReturn"] * 2 + ["SuccessRate"] * 2


def test_bookkeeping_settings_do_not_split_groups(tmp_path):
    col = {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0.1, 0.2]}
    write_run(tmp_path / "a", col, seed=0)
    write_run(tmp_path / "b", col, seed=1, snapshot_buffer=True, snapshot_mode="all", vis_freq=10, vis_fps=20,
              wandb=True, wandb_project="x", wandb_entity="me", log_per_task="summary", progress_bar=False,
              resumes=[{"epoch": 3}])
    write_run(tmp_path / "c", col, seed=2, lr=0.001)
    groups = plot.group_runs(load_runs([tmp_path]))
    assert sorted(len(g.runs) for g in groups) == [1, 2]
    assert sorted(g.label for g in groups) == ["qmp_dnc MazeLarge-10-v0 lr=0.0003", "qmp_dnc MazeLarge-10-v0 lr=0.001"]


def _duplicates(root: Path) -> None:
    write_run(root / "s0", {"TotalEnvSteps": steps(3), "Evaluation/SuccessRate": [0.0, 0.2, 0.4]}, seed=0)
    write_run(root / "s0_copy", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [1.0, 1.0]}, seed=0)
    write_run(root / "s1", {"TotalEnvSteps": steps(3), "Evaluation/SuccessRate": [0.0, 0.4, 0.8]}, seed=1)


def test_duplicate_seeds_are_flagged_and_counted_once(tmp_path):
    _duplicates(tmp_path)
    notes = []
    (group,) = plot.group_runs(load_runs([tmp_path]), log=notes.append)
    assert sorted(r.path.name for r in group.runs) == ["s0", "s1"]  # the longer run of seed 0 is kept
    (warning,) = notes
    assert "2 runs of seed 0" in warning and str(tmp_path / "s0_copy") in warning and "counted once" in warning
    (curve,) = compute_curves([group])
    assert curve.n_seeds == 2
    np.testing.assert_allclose(curve.mean, [0.0, 0.3, 0.6])

    notes.clear()
    (each,) = plot.group_runs(load_runs([tmp_path]), "each", log=notes.append)
    assert len(each.runs) == 3 and "each counted as a seed" in notes[0]
    result = CliRunner().invoke(plot.plot_command, [str(tmp_path), "--out", str(tmp_path / "p.png"),
                                                    "--duplicate_seeds", "refuse"])
    assert result.exit_code == 2 and "seed 0" in result.output and "s0_copy" in result.output
    assert not (tmp_path / "p.png").exists()


def test_a_band_over_fewer_than_three_seeds_is_the_labelled_min_max(tmp_path):
    two = [write_run(tmp_path / f"two{s}", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": y}, seed=s)
           for s, y in enumerate([[0.0, 0.9], [0.4, 0.1]])]
    (curve,) = compute_curves(two)
    np.testing.assert_allclose(curve.low, [0.0, 0.1])
    np.testing.assert_allclose(curve.high, [0.4, 0.9])
    assert curve.band == "min-max"
    fig = plot.draw_curves([curve])
    assert "(2 seeds, min-max)" in fig.axes[0].get_legend().get_texts()[0].get_text()
    assert "min-max" in fig._suptitle.get_text() and "CI" not in fig._suptitle.get_text()
    (row,) = compute_summary(two).to_dict("records")
    assert row["interval"] == "min-max"
    assert (row["mean_ci_low"], row["mean_ci_high"], row["iqm_ci_low"], row["iqm_ci_high"]) == (0.1, 0.9, 0.1, 0.9)

    three = [*two, write_run(tmp_path / "three", {"TotalEnvSteps": steps(2), "Evaluation/SuccessRate": [0.2, 0.5]},
                             seed=2)]
    (curve,) = compute_curves(three)
    assert curve.band == "95 % bootstrap CI"
    assert "(3 seeds, 95 % CI)" in plot.draw_curves([curve]).axes[0].get_legend().get_texts()[0].get_text()
    assert compute_summary(three).loc[0, "interval"] == "95 % stratified bootstrap CI"
