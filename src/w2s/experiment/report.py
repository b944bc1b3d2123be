"""Run-directory outputs: metrics.json, predictions.parquet, report.md, plots/*.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2s.cache import atomic_path, write_json_atomic


def results_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per predictor: weak floor, strong ceiling, then each method."""
    rows = [
        {"name": "weak floor", **metrics["weak_floor"]},
        {"name": "strong ceiling", **metrics["strong_ceiling"]},
    ]
    rows += [{"name": n, **m} for n, m in metrics["methods"].items()]
    return rows


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{100 * x:.1f}%" if pct else f"{x:.3f}"


def table_lines(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the results table (shared by the terminal and report.md)."""
    header = [
        "",
        "accuracy",
        "AUROC",
        "ECE",
        "PGR (acc)",
        "95% CI",
        "PGR (AUROC)",
        "95% CI",
        "agree w/ weak",
    ]
    rows = []
    for r in results_rows(metrics):
        ci = r.get("pgr_accuracy_ci")
        ci_a = r.get("pgr_auroc_ci")
        rows.append(
            [
                r["name"],
                _fmt(r["accuracy"]),
                _fmt(r["auroc"]),
                _fmt(r.get("ece")),
                _fmt(r.get("pgr_accuracy"), True),
                f"[{_fmt(ci[0], True)}, {_fmt(ci[1], True)}]" if ci else "",
                _fmt(r.get("pgr_auroc"), True),
                f"[{_fmt(ci_a[0], True)}, {_fmt(ci_a[1], True)}]" if ci_a else "",
                _fmt(r.get("agreement_with_weak")) if "agreement_with_weak" in r else "",
            ]
        )
    return header, rows


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def plot_results(metrics: dict[str, Any], path: Path) -> None:
    """Bar plots: accuracy of floor / ceiling / methods, and each method's PGR with its CI."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results_rows(metrics)
    names = [r["name"] for r in rows]
    acc = [r["accuracy"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    colors = ["#999999", "#333333"] + ["#4c72b0"] * (len(rows) - 2)
    ax1.bar(names, acc, color=colors)
    lo = min(acc) - 0.05
    ax1.set_ylim(max(0.0, lo), min(1.0, max(acc) + 0.03))
    ax1.set_ylabel("test accuracy")
    ax1.set_title(f"{metrics['task']}: {metrics['weak']} -> {metrics['strong']}")
    ax1.tick_params(axis="x", rotation=30)
    methods = metrics["methods"]
    if methods:
        m_names = list(methods)
        vals = np.array([methods[n]["pgr_accuracy"] for n in m_names])
        cis = np.array([methods[n]["pgr_accuracy_ci"] for n in m_names])
        err = np.abs(np.vstack([vals - cis[:, 0], cis[:, 1] - vals]))
        ax2.bar(m_names, vals, yerr=err, capsize=5, color="#4c72b0")
        ax2.axhline(0, color="#999999", lw=1)
        ax2.axhline(1, color="#333333", lw=1, ls="--")
        ax2.set_ylabel("PGR on accuracy (95% CI)")
        ax2.set_title("performance gap recovered")
        ax2.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def write_predictions(
    path: Path,
    test: pd.DataFrame,
    weak: np.ndarray,
    ceiling: np.ndarray,
    students: dict[str, np.ndarray],
) -> None:
    """One row per test example: id, gold, weak, ceiling and each method's predicted class,
    plus `p_<name>` probability vectors."""
    df = pd.DataFrame(
        {
            "id": test["id"].values,
            "gold": test["label"].values,
            "weak": weak.argmax(1),
            "ceiling": ceiling.argmax(1),
        }
    )
    for name, p in students.items():
        df[name] = p.argmax(1)
    for name, p in {"weak": weak, "ceiling": ceiling, **students}.items():
        df[f"p_{name}"] = list(p.astype(float))
    if "domain" in test:
        df["domain"] = test["domain"].values
    df["text"] = test["text"].values
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def analysis_lines(metrics: dict[str, Any]) -> list[str]:
    """Misfit vs gain and coverage / pseudolabel correction, one row per method."""
    methods = {n: m for n, m in metrics["methods"].items() if "misfit" in m and "coverage" in m}
    if not methods:
        return []
    lines = [
        "## Why the student differs from its teacher",
        "",
        "Misfit = KL(student || weak) on test (label-free); gain = weak minus student "
        "cross-entropy on gold (Charikar et al.: gain >= misfit for a projection). Covered = "
        "the half of test where the weak model is most confident (Lang et al.).",
        "",
        "| method | misfit (KL) | gain (CE) | gain (acc) | corrected weak mistakes (covered) "
        "| student acc covered | student acc uncovered | weak acc uncovered |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, m in methods.items():
        mf, cv = m["misfit"], m["coverage"]
        lines.append(
            f"| {name} | {_fmt(mf['misfit_kl'])} | {_fmt(mf['gain_cross_entropy'])} | "
            f"{_fmt(mf['gain_accuracy'])} | {_fmt(cv.get('correction_rate'))} | "
            f"{_fmt(cv.get('student_accuracy_covered'))} | "
            f"{_fmt(cv.get('student_accuracy_uncovered'))} | "
            f"{_fmt(cv.get('weak_accuracy_uncovered'))} |"
        )
    exp = metrics.get("expansion")
    if exp:
        lines += [
            "",
            f"Expansion in the strong model's feature space (10-NN): covered weak mistakes whose "
            f"neighbours include a correctly labelled covered point: {_fmt(exp.get('bad_reach'))}; "
            f"uncovered points reaching one: {_fmt(exp.get('uncovered_reach'))}.",
        ]
    return [*lines, ""]


def write_report(path: Path, cfg: Any, metrics: dict[str, Any]) -> None:
    header, rows = table_lines(metrics)
    n = metrics["n"]
    lines = [
        f"# W2S run: {metrics['task']}",
        "",
        f"Weak **{metrics['weak']}** supervises strong **{metrics['strong']}** "
        f"(seed {metrics['seed']}).",
        f"Splits: weak_train {n['weak_train']}, strong_train {n['strong_train']}, "
        f"val {n['val']}, test {n['test']}. Validation uses weak labels only.",
        f"PGR = (student - weak) / (ceiling - weak); 95% CIs from a paired bootstrap over test "
        f"examples ({metrics['bootstrap']['n_resamples']} resamples).",
        "",
        *markdown_table(header, rows),
        "",
        "![results](plots/results.png)",
        "",
        *analysis_lines(metrics),
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in metrics.get("timing_s", {}).items()),
        "",
    ]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines))


def write_outputs(
    out: Path,
    cfg: Any,
    metrics: dict[str, Any],
    test: pd.DataFrame,
    classes: list[str],
    weak: np.ndarray,
    ceiling: np.ndarray,
    students: dict[str, np.ndarray],
) -> None:
    """Write the run-directory contract (config.yaml is written at the start of the run)."""
    write_predictions(out / "predictions.parquet", test, weak, ceiling, students)
    plot_results(metrics, out / "plots" / "results.png")
    write_report(out / "report.md", cfg, metrics)
    write_json_atomic(out / "metrics.json", metrics)
