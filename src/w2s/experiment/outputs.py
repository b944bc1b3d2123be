"""Run-directory outputs for every kind of run: a folder that is either a complete,
consistent run or marked incomplete, and the formatting shared by tables and reports.

Contract: `config.yaml`, `metrics.json`, `predictions.parquet`, `report.md`,
`plots/results.png`, `.stages/`. While a run works, `.incomplete` sits in the folder and
results of any earlier run are gone; `metrics.json` is written last, then the marker is
removed. Readers take a folder as a finished run only when `is_finished_run` says so.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from w2s.cache import atomic_path, check_out_dir, write_json_atomic
from w2s.errors import W2SError

INCOMPLETE = ".incomplete"
__all__ = ["RunDir", "check_out_dir", "is_finished_run"]
RESULTS = ("metrics.json", "predictions.parquet", "report.md", "plots", "tracking.json")
GAP_MARK = "†"


def is_finished_run(folder: Path) -> bool:
    """True for a folder holding a complete run (metrics written, no `.incomplete`)."""
    return (folder / "metrics.json").is_file() and not (folder / INCOMPLETE).exists()


class RunDir:
    """One run's folder: `begin` marks it incomplete and clears stale results, `finish`
    writes every result and metrics.json last, then drops the marker."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.stages = path / ".stages"

    def begin(self, config: dict[str, Any]) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / INCOMPLETE).write_text("a run is writing this folder, or died\n")
            for name in RESULTS:
                stale = self.path / name
                if stale.is_dir():
                    shutil.rmtree(stale)
                else:
                    stale.unlink(missing_ok=True)
            with atomic_path(self.path / "config.yaml") as tmp:
                tmp.write_text(yaml.safe_dump(config, sort_keys=False))
        except OSError as err:
            raise W2SError(f"cannot write the run directory {self.path}: {err.strerror}") from None

    def finish(
        self,
        metrics: dict[str, Any],
        predictions: pd.DataFrame,
        report_lines: list[str],
        plot: Callable[[Path], None],
    ) -> None:
        with atomic_path(self.path / "predictions.parquet") as tmp:
            predictions.to_parquet(tmp, index=False)
        (self.path / "plots").mkdir(exist_ok=True)
        plot(self.path / "plots" / "results.png")
        with atomic_path(self.path / "report.md") as tmp:
            tmp.write_text("\n".join(report_lines) + "\n")
        write_json_atomic(self.path / "metrics.json", metrics)
        with contextlib.suppress(FileNotFoundError):
            (self.path / INCOMPLETE).unlink()


def in_distribution_rows(pred: pd.DataFrame) -> pd.DataFrame:
    """The in-distribution test rows of predictions.parquet: a run with held-out domains
    also has ood_test rows, marked in its `split` column (without one, every row)."""
    if "split" not in pred:
        return pred
    return pred[pred["split"] == "test"].reset_index(drop=True)


# -- formatting ------------------------------------------------------------------------------


def predictor_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per predictor: weak floor (one per weak model when there are several,
    PGR's marked), strong ceiling, then each method."""
    floors = metrics.get("weak_floors") or {}
    pgr = metrics.get("weak_floor_model")
    weak_rows = (
        [
            {"name": f"weak floor: {n}" + (" (PGR)" if n == pgr else ""), **m}
            for n, m in floors.items()
        ]
        if len(floors) > 1
        else [{"name": "weak floor", **metrics["weak_floor"]}]
    )
    return [
        *weak_rows,
        {"name": "strong ceiling", **metrics["strong_ceiling"]},
        *({"name": n, **m} for n, m in metrics["methods"].items()),
    ]


def missing(x: Any) -> bool:
    return x is None or (isinstance(x, float) and not np.isfinite(x))


def fmt(x: Any, pct: bool = False) -> str:
    """A metric (3 decimals) or a percentage; '-' when undefined."""
    if missing(x):
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def signed(x: Any) -> str:
    return "-" if missing(x) else f"{x:+.3f}"


def gap_significant(metrics: dict[str, Any], metric: str) -> bool:
    """Whether the ceiling beats the floor on `metric` in enough bootstrap resamples."""
    return bool(metrics.get("gap", {}).get(metric, {}).get("significant", True))


def pgr_cells(metrics: dict[str, Any], row: dict[str, Any], metric: str) -> list[str]:
    """The PGR and CI cells of a row; a PGR without a significant gap is marked, not shown
    as a result."""
    if f"pgr_{metric}" not in row:
        return ["", ""]
    if not gap_significant(metrics, metric):
        return [f"no gap{GAP_MARK}", ""]
    lo, hi = row.get(f"pgr_{metric}_ci") or [None, None]
    return [fmt(row[f"pgr_{metric}"], True), f"[{fmt(lo, True)}, {fmt(hi, True)}]"]


def gap_note(
    metrics: dict[str, Any], metric_names: list[str], columns_left_out: bool = False
) -> list[str]:
    """A footnote for metrics whose floor-to-ceiling gap is not significantly positive
    (marked `no gap†` in the table, or with `columns_left_out` not shown in it)."""
    flat = [m for m in metric_names if not gap_significant(metrics, m)]
    if not flat:
        return []
    level = 100 * (1 - (1 - metrics["bootstrap"]["ci"]) / 2)
    rates = ", ".join(f"{100 * metrics['gap'][m]['positive_rate']:.0f}% ({m})" for m in flat)
    mark, shown = f"{GAP_MARK} ", " (its value stays in metrics.json)"
    if columns_left_out:
        mark, shown = "", " and the table leaves it out (it stays in metrics.json)"
    return [
        f"{mark}No significant gap to recover: the ceiling beats the floor in only "
        f"{rates} of bootstrap resamples (needs {level:.1f}%), so PGR there means "
        f"nothing{shown}."
    ]


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def timing_line(metrics: dict[str, Any]) -> str:
    return "Timings (s): " + ", ".join(
        f"{k} {v:.1f}" for k, v in metrics.get("timing_s", {}).items()
    )


def save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def pyplot():
    """matplotlib.pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def baseline_cell(row: dict[str, Any], base: str | None, metric: str) -> str:
    """`+0.012 [-0.010, +0.030]`: a method minus the baseline on `metric`, with its CI."""
    if not base or f"vs_{base}_{metric}" not in row:
        return ""
    lo, hi = row[f"vs_{base}_{metric}_ci"]
    return f"{signed(row[f'vs_{base}_{metric}'])} [{signed(lo)}, {signed(hi)}]"


def baseline_lines(metrics: dict[str, Any], metric_names: list[str]) -> list[str]:
    """Each method minus the run's baseline, paired over test examples, with CIs."""
    base = metrics.get("baseline")
    body = [
        [who, *(baseline_cell(m, base, metric) for metric in metric_names)]
        for who, m in metrics["methods"].items()
        if base and f"vs_{base}_{metric_names[0]}" in m
    ]
    if not body:
        return []
    return [
        f"## Compared with {base}",
        "",
        f"Method minus {base} per metric, paired over test examples (the same bootstrap "
        f"resamples), with {100 * metrics['bootstrap']['ci']:.0f}% CIs.",
        "",
        *markdown_table(["", *metric_names], body),
        "",
    ]
