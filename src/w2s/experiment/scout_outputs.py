"""What `w2s scout` writes: the ranked table (terminal), scout.csv, scout.json, scout.png."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2s.cache import atomic_path, make_out_dir, write_json_atomic
from w2s.experiment.outputs import fmt, pyplot, save_figure, signed
from w2s.experiment.scout import EARLY, GAP, SKIPPED, SMALL, ScoutSettings

COLUMNS = [
    "rank",
    "task",
    "status",
    "gap",
    "gap_lo",
    "gap_hi",
    "floor_accuracy",
    "ceiling_accuracy",
    "floor_auroc",
    "ceiling_auroc",
    "n_classes",
    "n_weak_train",
    "n_strong_train",
    "n_val",
    "n_test",
    "stage",
    "seconds",
    "cached",
    "reason",
]
COLORS = {GAP: "#1f4e8c", SMALL: "#7fa7d9", EARLY: "#d9d9d9"}  # others (no gap): grey
PLOT_MAX = 40  # tasks drawn in scout.png


def default_out(settings: ScoutSettings) -> Path:
    """runs/scout/<weak>__<strong>__s<seed>."""
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{settings.weak}__{settings.strong}")
    return Path("runs") / "scout" / f"{slug.strip('_')}__s{settings.seed}"


def frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a table with the CSV's columns (missing values empty)."""
    return pd.DataFrame(rows).reindex(columns=COLUMNS)


def table(
    rows: list[dict[str, Any]], settings: ScoutSettings
) -> tuple[str, list[str], list[str], list[str]]:
    """Title, header, rows and footnotes of the terminal table (the `top` scored tasks)."""
    scored = [r for r in rows if r["status"] != SKIPPED]
    shown = scored[: settings.top] if settings.top else scored
    header = ["task (by gap)", "classes", "weak floor", "strong ceiling", "gap [95% CI]", "status"]
    body = [
        [
            r["task"],
            str(r.get("n_classes", "")),
            fmt(r["floor_accuracy"]),
            fmt(r["ceiling_accuracy"]),
            f"{signed(r['gap'])} [{signed(r['gap_lo'])}, {signed(r['gap_hi'])}]",
            r["status"] + (" *" if r.get("cached") else ""),
        ]
        for r in shown
    ]
    n_gap = sum(r["status"] == GAP for r in scored)
    skipped = len(rows) - len(scored)
    notes = [
        f"{n_gap} of {len(scored)} tasks have a gap: the 95% CI of ceiling - floor accuracy "
        f"lies above {settings.min_gap}; 'no gap (early stop)': on the first half of each "
        f"split the CI lay wholly below {settings.min_gap}; * from the cache."
    ]
    if len(shown) < len(scored):
        notes.append(f"showing the top {len(shown)} of {len(scored)}; all are in scout.csv")
    if skipped:
        notes.append(f"{skipped} task(s) skipped (too small after dedup and balancing, ...)")
    title = (
        f"scout: {settings.weak} -> {settings.strong} (seed {settings.seed}; splits "
        f"{settings.n_train}/{settings.n_train}/{settings.n_val}/{settings.n_test})"
    )
    return title, header, body, notes


def write_outputs(
    rows: list[dict[str, Any]], settings: ScoutSettings, out: Path, seconds: float
) -> None:
    """scout.csv (every task), scout.json (settings, rows, wall time), scout.png."""
    make_out_dir(out)
    with atomic_path(out / "scout.csv") as tmp:
        frame(rows).to_csv(tmp, index=False)
    write_json_atomic(
        out / "scout.json",
        {"settings": settings.model_dump(mode="json"), "seconds": seconds, "rows": rows},
    )
    plot(rows, settings, out / "scout.png")


def plot(rows: list[dict[str, Any]], settings: ScoutSettings, path: Path) -> None:
    """Gap (ceiling - floor accuracy) with its 95% CI per task, largest first."""
    plt = pyplot()
    scored = [r for r in rows if r["status"] != SKIPPED][:PLOT_MAX]
    fig, ax = plt.subplots(figsize=(8, 1.5 + 0.28 * max(len(scored), 1)))
    if scored:
        y = np.arange(len(scored))[::-1]
        gap = np.array([r["gap"] for r in scored])
        err = np.abs(np.array([[r["gap"] - r["gap_lo"], r["gap_hi"] - r["gap"]] for r in scored]).T)
        colors = [COLORS.get(r["status"], "#999999") for r in scored]
        ax.barh(y, gap, xerr=err, color=colors, capsize=2)
        ax.set_yticks(y, [r["task"].removeprefix("bigbench:") for r in scored], fontsize=7)
    ax.axvline(0, color="#333333", lw=1)
    ax.axvline(settings.min_gap, color="#333333", lw=1, ls="--")
    ax.set_xlabel("strong ceiling - weak floor, test accuracy (95% CI)")
    ax.set_title(f"{settings.weak} -> {settings.strong}: dark = gap CI above {settings.min_gap}")
    fig.tight_layout()
    save_figure(fig, path)
