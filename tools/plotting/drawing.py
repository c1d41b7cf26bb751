"""Figures, drawn with matplotlib's ``Figure`` API (no pyplot, no display needed): one panel (or
one block of panels) per suite, so that success and return never share an axis and task k of one
suite is never drawn beside task k of another. Each function returns the Figure; the caller saves it."""

from __future__ import annotations

import dataclasses
import math
import textwrap
from typing import Sequence

import numpy as np

from tools.plotting.curves import CI_BAND, MIN_MAX_BAND, MIN_SEEDS_FOR_CI, Curve
from tools.plotting.tables import SUMMARY_CI, Selection


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(layout="constrained", **kwargs)


def _colors(labels: Sequence[str]) -> dict[str, object]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {label: cmap(i % cmap.N) for i, label in enumerate(labels)}


def _by_suite(items, suite_of) -> dict[str, list]:
    out: dict[str, list] = {}
    for item in items:
        out.setdefault(suite_of(item), []).append(item)
    return dict(sorted(out.items()))


def leaf_label(metrics: Sequence[str]) -> str:
    """The y-axis label of one suite's panel: the metrics' leaf (``SuccessRate``); the full columns
    (``Evaluation/p/SuccessRate`` for QMP's own policies) are in the legend when they differ."""
    return " | ".join(sorted({m.rpartition("/")[2] for m in metrics}))


def _short_labels(labels: Sequence[str]) -> tuple[dict[str, str], str]:
    """Labels without the words every label shares (returned as a title line), so that a legend of
    long group labels stays readable; a label left empty keeps its full text."""
    words = [label.split(" ") for label in labels]
    common = set(words[0]).intersection(*words[1:]) if len(words) > 1 else set()
    short = {label: " ".join(x for x in w if x not in common) or label for label, w in zip(labels, words)}
    shared = " ".join(x for x in words[0] if x in common) if words else ""
    return short, shared


def _legend_label(curve: Curve, show_metric: bool) -> str:
    seeds = f"{curve.n_seeds} seed{'s' if curve.n_seeds != 1 else ''}"
    band = {CI_BAND: ", 95 % CI", MIN_MAX_BAND: ", min-max"}.get(curve.band, "")
    metric = f" [{' | '.join(curve.metrics)}]" if show_metric else ""
    return f"{curve.label}{metric} ({seeds}{band})"


def band_note(curves: Sequence[Curve]) -> str:
    """What the bands are: the bootstrap CI for groups of >= 3 seeds, min-max below."""
    kinds = {c.band for c in curves if c.band}
    if kinds == {MIN_MAX_BAND}:
        return f"mean over seeds, band: min-max (fewer than {MIN_SEEDS_FOR_CI} seeds)"
    if kinds == {CI_BAND}:
        return "mean over seeds, band: 95 % bootstrap CI of the mean"
    if kinds:
        return (f"mean over seeds, band: 95 % bootstrap CI of the mean; min-max for groups of fewer than "
                f"{MIN_SEEDS_FOR_CI} seeds")
    return "one seed per group: no band"


def _draw_curve(ax, curve: Curve, color, label: str | None) -> None:
    ax.plot(curve.x, curve.mean, color=color, label=label, marker="." if len(curve.x) < 30 else None)
    if curve.low is not None:
        ax.fill_between(curve.x, curve.low, curve.high, color=color, alpha=0.2, linewidth=0)


def draw_curves(curves: Sequence[Curve]):
    """One panel per suite: its groups' mean curves and bands against TotalEnvSteps."""
    suites = _by_suite(curves, lambda c: c.suite)
    colors = _colors(sorted({c.label for c in curves}))
    ncols = min(3, len(suites))
    nrows = math.ceil(len(suites) / ncols)
    most = max(len(cs) for cs in suites.values())
    fig = _figure(figsize=(6.4 * ncols, (4.2 + 0.2 * most) * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, (suite, members) in zip(axes, suites.items()):
        show_metric = len({tuple(c.metrics) for c in members}) > 1
        short, shared = _short_labels([c.label for c in members])
        for curve in members:
            label = _legend_label(dataclasses.replace(curve, label=short[curve.label]), show_metric)
            _draw_curve(ax, curve, colors[curve.label], label)
        ax.set_xlabel("TotalEnvSteps")
        ax.set_ylabel(leaf_label([m for c in members for m in c.metrics]))
        extra = " ".join(w for w in shared.split(" ") if w != suite)
        ax.set_title(suite + (f"\n{extra}" if extra else ""), fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1, frameon=False)
    for ax in axes[len(suites):]:
        ax.set_visible(False)
    fig.suptitle(band_note(curves), fontsize=9)
    return fig


def _task_title(k: int, names: Sequence[str] | None) -> str:
    name = names[k] if names is not None and k < len(names) else None
    return textwrap.shorten(f"{k}: {name}", 34, placeholder="...") if name else f"task {k}"


def draw_task_grid(task_curves: dict[str, dict[int, list[Curve]]], names: dict[str, Sequence[str] | None]):
    """One block of panels per suite (a subfigure titled with the suite id), one panel per task
    titled with its name, the suite's metric leaf as the block's y label."""
    labels = sorted({c.label for tasks in task_curves.values() for cs in tasks.values() for c in cs})
    colors = _colors(labels)
    ncols = min(5, max(len(tasks) for tasks in task_curves.values()))
    rows = [math.ceil(len(tasks) / ncols) for tasks in task_curves.values()]
    heights = [2.5 * r + 0.7 for r in rows]
    fig = _figure(figsize=(3.2 * ncols + 0.5, sum(heights) + 0.4 + 0.18 * len(labels)))
    subfigs = np.atleast_1d(fig.subfigures(len(task_curves), 1, height_ratios=heights, squeeze=False)).ravel()
    handles = []
    for sub, n_rows, (suite, tasks) in zip(subfigs, rows, task_curves.items()):
        axes = sub.subplots(n_rows, ncols, sharex=True, squeeze=False).ravel()
        for ax, (k, members) in zip(axes, tasks.items()):
            for curve in members:
                _draw_curve(ax, curve, colors[curve.label], curve.label)
            ax.set_title(_task_title(k, names.get(suite)), fontsize=7)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
        for ax in axes[len(tasks):]:
            ax.set_visible(False)
        sub.suptitle(suite, fontsize=10)
        sub.supxlabel("TotalEnvSteps", fontsize=8)
        sub.supylabel(leaf_label([m for cs in tasks.values() for c in cs for m in c.metrics]), fontsize=8)
        handles = handles or [axes[0].plot([], [], color=colors[label])[0] for label in labels]
    fig.legend(handles, labels, loc="outside upper center", fontsize=7, ncols=min(3, len(labels)))
    return fig


def draw_selection(selections: Sequence[Selection]):
    """Per QMP/CTPG group, the last selection matrix as a heat map."""
    n = len(selections)
    ncols = min(3, n)
    nrows = math.ceil(n / ncols)
    fig = _figure(figsize=(4.8 * ncols, 4.4 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    for ax, sel in zip(axes, selections):
        rows, cols = sel.matrix.shape
        image = ax.imshow(sel.matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="equal")
        if rows <= 12 and cols <= 12:
            for i in range(rows):
                for j in range(cols):
                    value = sel.matrix[i, j]
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                            color="black" if value > 0.6 else "white")
        if rows <= 20:
            ax.set_yticks(range(rows))
        if cols <= 20:
            ax.set_xticks(range(cols))
        ax.tick_params(labelsize=7)
        ax.set_ylabel("task i (collecting)", fontsize=8)
        ax.set_xlabel(f"{'policy' if sel.kind == 'Policy' else 'CTPG guide'} j (acting)", fontsize=8)
        epochs = sorted(set(sel.epochs))
        at = f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
        ax.set_title(f"{sel.label}\n{sel.kind}{{j}}Prob, {at}, mean of {sel.n_seeds} "
                     f"seed{'s' if sel.n_seeds != 1 else ''}", fontsize=8)
        fig.colorbar(image, ax=ax, shrink=0.8)
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig


def draw_summary(summary):
    """IQM and mean of the final scores with their intervals, one row of panels per suite."""
    suites = _by_suite([row for _, row in summary.iterrows()], lambda row: row["suite"])
    colors = _colors(list(summary["group"]))
    heights = [0.8 + 0.45 * len(rows) for rows in suites.values()]
    fig = _figure(figsize=(9.5, sum(heights) + 0.5))
    axes = fig.subplots(len(suites), 2, squeeze=False, gridspec_kw={"height_ratios": heights})
    for (left, right), (suite, rows) in zip(axes, suites.items()):
        for ax, (name, key) in zip((left, right), (("IQM", "iqm"), ("Mean", "mean"))):
            for y, row in enumerate(rows):
                low, high = row[f"{key}_ci_low"], row[f"{key}_ci_high"]
                ax.barh(y, high - low, left=low, height=0.6, color=colors[row["group"]], alpha=0.45)
                ax.plot([row[key]] * 2, [y - 0.3, y + 0.3], color="black", linewidth=1.5)
            ax.set_title(f"{suite}: {name}", fontsize=9)
            ax.set_xlabel(leaf_label(" | ".join(r["metric"] for r in rows).split(" | ")), fontsize=8)
            ax.grid(axis="x", alpha=0.3)
            ax.tick_params(labelsize=7)
        left.set_yticks(range(len(rows)))
        left.set_yticklabels([f"{r['group']} (n={r['n_seeds']}{', min-max' if r['interval'] == MIN_MAX_BAND else ''})"
                              for r in rows])
        right.set_yticks([])
        left.invert_yaxis()
        right.invert_yaxis()
    fig.suptitle(f"final performance: {SUMMARY_CI}s (rliable); min-max for fewer than {MIN_SEEDS_FOR_CI} seeds",
                 fontsize=9)
    return fig
