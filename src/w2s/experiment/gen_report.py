"""Run-directory outputs of generation runs: the same contract as classification
(metrics.json, predictions.parquet, report.md, plots/results.png) with per-metric PGRs
and example answers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2s.cache import atomic_path, write_json_atomic
from w2s.experiment.report import _fmt, markdown_table


def rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per predictor: weak floor, strong ceiling, then each method."""
    return [
        {"name": "weak floor", **metrics["weak_floor"]},
        {"name": "strong ceiling", **metrics["strong_ceiling"]},
        *({"name": n, **m} for n, m in metrics["methods"].items()),
    ]


def _val(x: Any) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "-"
    return f"{x:.2f}" if abs(x) >= 1.5 else f"{x:.3f}"


def table_lines(metrics: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: each metric, then PGR and its CI per metric, then words."""
    names = metrics["metrics"]
    header = ["", *names]
    for m in names:
        header += [f"PGR ({m})", "95% CI"]
    header += ["words", "same as weak"]
    out = []
    for r in rows(metrics):
        line = [r["name"], *(_val(r.get(m)) for m in names)]
        for m in names:
            ci = r.get(f"pgr_{m}_ci")
            line += [
                _fmt(r.get(f"pgr_{m}"), True) if f"pgr_{m}" in r else "",
                f"[{_fmt(ci[0], True)}, {_fmt(ci[1], True)}]" if ci else "",
            ]
        line += [
            f"{r.get('mean_words', 0):.0f}",
            _val(r["same_as_weak"]) if "same_as_weak" in r else "",
        ]
        out.append(line)
    return header, out


def plot_generation(metrics: dict[str, Any], path: Path) -> None:
    """One panel per metric: bars for floor, ceiling and methods, PGR written on each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = metrics["metrics"]
    rs = rows(metrics)
    labels = [r["name"] for r in rs]
    fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
    colors = ["#999999", "#333333"] + ["#4c72b0"] * (len(rs) - 2)
    for ax, metric in zip(axes[0], names, strict=True):
        vals = [r.get(metric, np.nan) for r in rs]
        ax.bar(labels, np.nan_to_num(vals), color=colors)
        for i, r in enumerate(rs):
            p = r.get(f"pgr_{metric}")
            if p is not None and np.isfinite(p):
                ax.annotate(
                    f"PGR {100 * p:.0f}%",
                    (i, np.nan_to_num(vals[i])),
                    ha="center",
                    va="bottom",
                    fontsize=8,
                )
        ax.set_title(metric)
        ax.tick_params(axis="x", rotation=35)
    title = f"{metrics['task']}: {metrics['weak']} -> {metrics['strong']}"
    fig.suptitle(f"{title} (test n={metrics['n']['test']})")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _ref(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    except TypeError:
        return str(value)


def write_predictions(
    path: Path,
    test: pd.DataFrame,
    answers: dict[str, list[str]],
    scores: dict[str, dict[str, np.ndarray]],
) -> None:
    """One row per test example: id, prompt, reference, each predictor's answer and its
    score per metric (`<predictor>:<metric>`)."""
    df = pd.DataFrame(
        {
            "id": test["id"].values,
            "prompt": test["text"].values,
            "reference": [_ref(t) for t in test["target"]],
        }
    )
    for who, ans in answers.items():
        df[who] = ans
    for who, per in scores.items():
        for metric, s in per.items():
            df[f"{who}:{metric}"] = np.asarray(s, dtype=float)
    with atomic_path(path) as tmp:
        df.to_parquet(tmp, index=False)


def _quote(text: str, limit: int = 500) -> str:
    text = text.strip() or "(empty)"
    text = text if len(text) <= limit else text[:limit] + " ..."
    return "\n".join("> " + ln for ln in text.splitlines())


def _signed(x: float) -> str:
    return "-" if x is None or not np.isfinite(x) else f"{x:+.3f}"


def baseline_lines(metrics: dict[str, Any]) -> list[str]:
    """Each method minus the baseline (naive SFT), paired per test example, with CIs."""
    base = metrics.get("baseline")
    if not base:
        return []
    names = metrics["metrics"]
    body = []
    for who, m in metrics["methods"].items():
        if f"vs_{base}_{names[0]}" in m:
            cells = []
            for metric in names:
                lo, hi = m[f"vs_{base}_{metric}_ci"]
                cells.append(f"{_signed(m[f'vs_{base}_{metric}'])} [{_signed(lo)}, {_signed(hi)}]")
            body.append([who, *cells])
    if not body:
        return []
    return [
        f"## Compared with {base}",
        "",
        f"Method minus {base} per metric, paired over test examples, with "
        f"{100 * metrics['bootstrap']['ci']:.0f}% bootstrap CIs.",
        "",
        *markdown_table(["", *names], body),
        "",
    ]


def supervision_lines(supervision: dict[str, dict[str, float]]) -> list[str]:
    """The training targets' quality on strong_train (post hoc, against gold) as a table."""
    if not supervision:
        return []
    metrics = sorted({m for per in supervision.values() for m in per})
    body = [[who, *(_val(per.get(m)) for m in metrics)] for who, per in supervision.items()]
    return [
        "## Training targets",
        "",
        "What each method trained on, graded on strong_train against gold after the run "
        "(the methods never see gold); `weak` is what naive SFT imitates.",
        "",
        *markdown_table(["targets", *metrics], body),
        "",
    ]


def write_report(
    path: Path,
    metrics: dict[str, Any],
    test: pd.DataFrame,
    answers: dict[str, list[str]],
    examples: int,
) -> None:
    header, body = table_lines(metrics)
    n = metrics["n"]
    graders = ", ".join(metrics.get("graders", []))
    lines = [
        f"# W2S generation run: {metrics['task']}",
        "",
        f"Weak **{metrics['weak']}** supervises strong **{metrics['strong']}** "
        f"(seed {metrics['seed']}). Weak supervisor: {metrics.get('weak_mode')}; "
        f"ceiling: {metrics.get('ceiling_mode')}; graders: {graders}.",
        f"Splits: weak_train {n['weak_train']}, strong_train {n['strong_train']}, "
        f"test {n['test']}. W2S methods see only the prompts, the weak answers and the strong "
        "model.",
        "PGR = (method - weak) / (ceiling - weak) per metric; 95% CIs from a paired bootstrap "
        f"over test examples ({metrics['bootstrap']['n_resamples']} resamples).",
        "",
        *markdown_table(header, body),
        "",
        *(f"**Warning:** {w}" + "\n" for w in metrics.get("warnings", [])),
        "![results](plots/results.png)",
        "",
        *baseline_lines(metrics),
        *supervision_lines(metrics.get("supervision", {})),
    ]
    if examples:
        lines += ["## Example answers", ""]
        for i in range(min(examples, len(test))):
            row = test.iloc[i]
            lines += [f"### Example {i + 1}", "", "**Prompt:**", "", _quote(str(row["text"])), ""]
            lines += [f"**Reference:** {_ref(row['target'])[:300]}", ""]
            for who, ans in answers.items():
                lines += [f"**{who}:**", "", _quote(ans[i]), ""]
    lines.append(
        "Timings (s): " + ", ".join(f"{k} {v:.1f}" for k, v in metrics.get("timing_s", {}).items())
    )
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n")


def write_generation_outputs(
    out: Path,
    metrics: dict[str, Any],
    test: pd.DataFrame,
    answers: dict[str, list[str]],
    scores: dict[str, dict[str, np.ndarray]],
    examples: int = 3,
) -> None:
    """Write the run-directory contract (config.yaml is written at the start)."""
    write_predictions(out / "predictions.parquet", test, answers, scores)
    plot_generation(metrics, out / "plots" / "results.png")
    write_report(out / "report.md", metrics, test, answers, examples)
    write_json_atomic(out / "metrics.json", metrics)
