"""The report's figures, drawn with matplotlib (no pyplot: no display, no global state)
and returned as PNG bytes for embedding."""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from w2s.analysis.misfit import fit_gain_vs_misfit
from w2s.experiment.outputs import GAP_MARK

ROLE_COLORS = {"weak": "#999999", "ceiling": "#333333", "method": "#4c72b0"}
DPI = 100


def png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _wrap(text: str, width: int = 18) -> str:
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) or text


def _ordered(values: pd.Series) -> list[str]:
    return list(dict.fromkeys(values.tolist()))


def task_bars(task: str, scores: pd.DataFrame) -> bytes:
    """One panel per metric: floor, ceiling and each method as bars with their bootstrap
    CIs; one bar per run in each group when the task has several runs."""
    metrics = _ordered(scores["metric"])
    labels = _ordered(scores["label"])
    names = _ordered(scores["predictor"])
    width = max(5.0, 0.55 * len(names) * max(1, len(labels)) ** 0.6 + 2)
    fig = Figure(figsize=(width * len(metrics), 4.2))
    axes = fig.subplots(1, len(metrics), squeeze=False)[0]
    step = 0.8 / len(labels)
    for ax, metric in zip(axes, metrics, strict=True):
        sub = scores[scores["metric"] == metric]
        for j, label in enumerate(labels):
            rows = sub[sub["label"] == label].set_index("predictor")
            xs = np.array([i for i, n in enumerate(names) if n in rows.index], dtype=float)
            if not len(xs):
                continue
            r = rows.loc[[n for n in names if n in rows.index]]
            vals = r["value"].to_numpy(dtype=float)
            err = np.vstack([vals - r["lo"].to_numpy(float), r["hi"].to_numpy(float) - vals])
            one = len(labels) == 1
            color = [ROLE_COLORS[role] for role in r["role"]] if one else f"C{j % 10}"
            ax.bar(
                xs - 0.4 + step * (j + 0.5),
                np.nan_to_num(vals),
                width=step * 0.92,
                yerr=np.nan_to_num(np.abs(err)),
                capsize=3,
                color=color,
                label=label if len(labels) > 1 else None,
            )
        finite = sub[["value", "lo", "hi"]].to_numpy(float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            lo, hi = finite.min(), finite.max()
            pad = max(0.02, 0.1 * (hi - lo))
            ax.set_ylim(max(0.0, lo - pad) if lo >= 0 else lo - pad, hi + pad)
        ax.set_xticks(range(len(names)), [_wrap(n, 14) for n in names], rotation=30, ha="right")
        ax.set_ylabel(f"test {metric} (95% CI)")
        ax.set_title(metric)
        if len(labels) > 1:
            ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(task)
    fig.tight_layout()
    return png(fig)


def pgr_heatmap(frame: pd.DataFrame, metric: str) -> bytes:
    """Methods (rows) × runs grouped by task (columns): PGR on `metric` in each cell with
    its CI; a cell whose floor-to-ceiling gap is not significant is hatched grey and says
    `no gap†` instead of a number."""
    columns = list(dict.fromkeys(zip(frame["task"], frame["label"], strict=True)))
    per_task = pd.Series([t for t, _ in columns]).value_counts()
    titles = [
        _wrap(t, 22) + (f"\n{_wrap(lab, 22)}" if per_task[t] > 1 else "") for t, lab in columns
    ]
    methods = _ordered(frame["method"])
    grid = np.full((len(methods), len(columns)), np.nan)
    fig = Figure(figsize=(2.0 + 1.7 * len(columns), 1.3 + 0.62 * len(methods)))
    ax = fig.subplots()
    cells = {}
    for r in frame.itertuples():
        i, j = methods.index(r.method), columns.index((r.task, r.label))
        cells[i, j] = r
        if r.significant:
            grid[i, j] = r.pgr
    norm = TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=1.5)
    image = ax.imshow(np.ma.masked_invalid(grid), cmap="RdBu", norm=norm, aspect="auto")
    for (i, j), r in cells.items():
        if not r.significant:
            ax.add_patch(
                Rectangle(
                    (j - 0.5, i - 0.5), 1, 1, facecolor="#e6e6e6", hatch="///", edgecolor="#bbbbbb"
                )
            )
            text, color = f"no gap{GAP_MARK}", "#444444"
        elif np.isfinite(r.pgr):
            ci = f"\n[{_pct(r.lo)}, {_pct(r.hi)}]" if np.isfinite(r.lo) else ""
            text = f"{_pct(r.pgr)}{ci}"
            color = "white" if abs(np.clip(r.pgr, -1, 1.5)) > 0.9 else "black"
        else:
            text, color = "-", "black"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color=color)
    ax.set_xticks(range(len(columns)), titles, fontsize=8)
    ax.set_yticks(range(len(methods)), methods)
    ax.set_title(f"PGR on {metric} (95% CI); {GAP_MARK} no significant gap to recover")
    fig.colorbar(image, ax=ax, label="PGR", shrink=0.8)
    fig.tight_layout()
    return png(fig)


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def misfit_scatter(frame: pd.DataFrame) -> bytes:
    """Realised gain (cross-entropy) against misfit KL(student || weak), one point per
    (run, method), with the line gain = misfit (Charikar et al.'s bound) and a fit."""
    fig = Figure(figsize=(6.2, 4.8))
    ax = fig.subplots()
    m = frame["misfit_kl"].to_numpy(float)
    g = frame["gain_cross_entropy"].to_numpy(float)
    markers = dict(zip(_ordered(frame["task"]), "osD^vP*X<>", strict=False))
    methods = _ordered(frame["method"])
    for r in frame.itertuples():  # colour: method; marker: task
        color = f"C{methods.index(r.method) % 10}"
        marker = markers.get(r.task, "o")
        ax.scatter(r.misfit_kl, r.gain_cross_entropy, s=34, color=color, marker=marker, zorder=3)
    for k, method in enumerate(methods):
        ax.scatter([], [], color=f"C{k % 10}", marker="o", label=method)
    if len(markers) > 1:
        for task, marker in markers.items():
            ax.scatter([], [], color="#777777", marker=marker, label=_wrap(task, 30))
    ok = np.isfinite(m) & np.isfinite(g)
    if ok.any():
        lo, hi = min(0.0, m[ok].min(), g[ok].min()), max(m[ok].max(), g[ok].max(), 1e-3)
        xs = np.linspace(lo, hi, 50)
        ax.plot(xs, xs, "k--", lw=1, label="gain = misfit")
        fit = fit_gain_vs_misfit(g[ok], m[ok])
        if np.isfinite(fit.slope):
            ax.plot(
                xs,
                fit.slope * xs + fit.intercept,
                color="#dd8452",
                lw=1.2,
                label=f"fit (r = {fit.r:.2f})",
            )
    ax.axhline(0, color="#bbbbbb", lw=0.8)
    ax.set_xlabel("misfit: KL(student || weak) on test (no labels)")
    ax.set_ylabel("gain: CE(weak) - CE(student) on gold test")
    ax.set_title("gain vs misfit")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)


def grouped_bars(
    frame: pd.DataFrame, group: str, hue: str, value: str, title: str, ylabel: str
) -> bytes:
    """Bars of `value`: x groups by `group`, one bar per `hue` (e.g. predictors by
    domain, or in- vs out-of-distribution)."""
    groups, hues = _ordered(frame[group]), _ordered(frame[hue])
    fig = Figure(figsize=(max(5.0, 0.5 * len(groups) * len(hues) + 2), 3.8))
    ax = fig.subplots()
    step = 0.8 / len(hues)
    for j, h in enumerate(hues):
        sub = frame[frame[hue] == h].set_index(group)
        xs = [i for i, gname in enumerate(groups) if gname in sub.index]
        vals = [float(sub.loc[groups[i], value]) for i in xs]
        ax.bar(
            np.array(xs) - 0.4 + step * (j + 0.5),
            np.nan_to_num(vals),
            width=step * 0.92,
            color=f"C{j % 10}",
            label=h,
        )
    vals = frame[value].to_numpy(float)
    vals = vals[np.isfinite(vals)]
    if vals.size:
        ax.set_ylim(
            max(0.0, vals.min() - 0.05),
            min(1.0, vals.max() + 0.05) if vals.max() <= 1 else vals.max() * 1.05,
        )
    ax.set_xticks(
        range(len(groups)), [_wrap(gname, 14) for gname in groups], rotation=30, ha="right"
    )
    ax.set_ylabel(ylabel)
    ax.set_title(_wrap(title, 80))
    ax.legend(fontsize=7)
    fig.tight_layout()
    return png(fig)
