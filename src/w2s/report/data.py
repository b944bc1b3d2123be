"""The numbers of a report as plain pandas tables, computed from finished runs: scores
with bootstrap CIs, PGRs, misfit and gain, in- vs out-of-distribution (or by domain), and
test examples where the student corrected or copied its weak supervisor."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from w2s.analysis.misfit import misfit_report
from w2s.analysis.pgr import bootstrap_difference, bootstrap_mean, bootstrap_pgr_scores
from w2s.experiment.protocol import gap_summary
from w2s.report.runs import Run

CLASSIFICATION_METRICS = ("accuracy", "auroc")
REFERENCES = (("weak", "weak floor", "weak_floor"), ("ceiling", "strong ceiling", "strong_ceiling"))
REF_NAMES = tuple(name for _, name, _ in REFERENCES)


def metric_names(run: Run) -> list[str]:
    """The metrics a run's PGRs are on: accuracy and AUROC, or its graders' metrics."""
    if run.kind == "classification":
        return list(CLASSIFICATION_METRICS)
    return list(run.metrics.get("metrics") or [])


def bar_metrics(run: Run) -> list[str]:
    """The metrics shown as bars: accuracy for classification, every graded metric for
    generation."""
    return ["accuracy"] if run.kind == "classification" else metric_names(run)


def predictors(run: Run) -> list[tuple[str, str, dict[str, Any]]]:
    """(column in predictions.parquet, display name, metrics row) of the floor, the
    ceiling and each method."""
    refs = [(col, name, run.metrics[key]) for col, name, key in REFERENCES]
    return refs + [(m, m, row) for m, row in run.metrics["methods"].items()]


def per_example(run: Run, column: str, metric: str) -> np.ndarray | None:
    """A predictor's per-example scores on the test set (correct 0/1 for classification
    accuracy, the grader's score for generation), or None if predictions lack them."""
    pred = run.predictions
    if pred is None:
        return None
    if run.kind == "classification":
        if metric != "accuracy" or column not in pred or "gold" not in pred:
            return None
        return (pred[column].to_numpy() == pred["gold"].to_numpy()).astype(float)
    key = f"{column}:{metric}"
    return pred[key].to_numpy(dtype=float) if key in pred else None


def scores_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per (run, predictor, bar metric): the value from metrics.json and a
    percentile bootstrap CI over test examples (the run's own resample count and level)."""
    rows = []
    for i, run in enumerate(runs):
        boot = run.metrics.get("bootstrap", {})
        args = {
            "n_resamples": int(boot.get("n_resamples", 1000)),
            "ci": float(boot.get("ci", 0.95)),
            "seed": int(boot.get("seed", 0)),
        }
        for column, name, row in predictors(run):
            for metric in bar_metrics(run):
                value, lo, hi = _num(row.get(metric)), np.nan, np.nan
                scores = per_example(run, column, metric)
                if scores is not None and np.isfinite(scores).any():
                    b = bootstrap_mean(scores, **args)
                    lo, hi = b["ci"]
                    if not np.isfinite(value):
                        value = b["mean"]
                rows.append(
                    {
                        "run": i,
                        "task": run.task,
                        "label": run.label,
                        "predictor": name,
                        "role": column if column in ("weak", "ceiling") else "method",
                        "metric": metric,
                        "value": value,
                        "lo": lo,
                        "hi": hi,
                    }
                )
    return pd.DataFrame(rows)


def pgr_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per (run, method, metric): PGR, its CI, and whether the floor-to-ceiling
    gap is significant (where it is not, the PGR means nothing)."""
    rows = []
    for i, run in enumerate(runs):
        gap = run.metrics.get("gap", {})
        for method, row in run.metrics["methods"].items():
            for metric in metric_names(run):
                if f"pgr_{metric}" not in row:
                    continue
                lo, hi = row.get(f"pgr_{metric}_ci") or (None, None)
                rows.append(
                    {
                        "run": i,
                        "task": run.task,
                        "label": run.label,
                        "method": method,
                        "metric": metric,
                        "pgr": _num(row[f"pgr_{metric}"]),
                        "lo": _num(lo),
                        "hi": _num(hi),
                        "significant": bool(gap.get(metric, {}).get("significant", True)),
                        "gap_positive_rate": _num(gap.get(metric, {}).get("positive_rate")),
                    }
                )
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    order = {t: i for i, t in enumerate(dict.fromkeys(frame["task"]))}  # runs grouped by task
    return frame.sort_values("task", key=lambda t: t.map(order), kind="stable")


def pooled_frame(group: list[Run]) -> pd.DataFrame:
    """One experiment's seeds pooled (`seed_groups`): per per-example metric and predictor,
    the mean over every seed's test examples; per method, its PGR and its difference to
    the baseline. CIs are paired bootstraps that resample each seed's test set on its own
    (stratified), with the first run's resample count, level and seed."""
    first = group[0]
    boot = first.metrics.get("bootstrap", {})
    args = {
        "n_resamples": int(boot.get("n_resamples", 1000)),
        "ci": float(boot.get("ci", 0.95)),
        "seed": int(boot.get("seed", 0)),
    }
    base = first.metrics.get("baseline")
    rows = []
    for metric in metric_names(first):
        scores: dict[str, np.ndarray] = {}
        sizes: dict[str, list[int]] = {}  # each seed's test size, per predictor
        for column, name, _ in predictors(first):
            per_run = [per_example(r, column, metric) for r in group]
            if all(p is not None for p in per_run):
                scores[name] = np.concatenate(per_run)
                sizes[name] = [len(p) for p in per_run]
        if not set(REF_NAMES) <= set(scores):
            continue  # AUROC and other metrics without per-example scores
        strata = sizes["weak floor"]
        floor, ceiling = (float(np.nanmean(scores[k])) for k in REF_NAMES)
        for name, a in scores.items():
            mean = bootstrap_mean(a, **args, strata=strata)
            row = {"metric": metric, "predictor": name, "mean": mean["mean"], "ci": mean["ci"]}
            if name not in REF_NAMES:
                p = bootstrap_pgr_scores(
                    scores["weak floor"], scores["strong ceiling"], a, **args, strata=strata
                )
                gap = gap_summary(floor, ceiling, p["gap_positive_rate"], args["ci"])
                row |= {"pgr": p["pgr"], "pgr_ci": p["ci"], "significant": gap["significant"]}
                if base in scores and name != base:
                    d = bootstrap_difference(a, scores[base], **args, strata=strata)
                    row |= {"vs_baseline": d["diff"], "vs_baseline_ci": d["ci"]}
                    row |= {"better": d["better"], "worse": d["worse"]}
            rows.append(row)
    return pd.DataFrame(rows)


def misfit_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per (classification run, method): misfit KL(student || weak) and the
    realised gains, from metrics.json, else recomputed from predictions.parquet."""
    rows = []
    for i, run in enumerate(runs):
        if run.kind != "classification":
            continue
        for method, row in run.metrics["methods"].items():
            rep = row.get("misfit") or _misfit_from_predictions(run, method)
            if not rep:
                continue
            rows.append(
                {
                    "run": i,
                    "task": run.task,
                    "label": run.label,
                    "method": method,
                    "misfit_kl": _num(rep.get("misfit_kl")),
                    "gain_cross_entropy": _num(rep.get("gain_cross_entropy")),
                    "gain_accuracy": _num(rep.get("gain_accuracy")),
                }
            )
    return pd.DataFrame(rows)


def _misfit_from_predictions(run: Run, method: str) -> dict[str, float] | None:
    pred = run.predictions
    if pred is None or not {"gold", "p_weak", f"p_{method}"} <= set(pred.columns):
        return None
    weak = np.stack(pred["p_weak"].to_numpy())
    student = np.stack(pred[f"p_{method}"].to_numpy())
    return misfit_report(pred["gold"].to_numpy(), weak, student)


def ood_frame(runs: list[Run]) -> pd.DataFrame:
    """In- vs out-of-distribution, for runs whose metrics.json has an `ood` section (the
    same shape as the in-distribution one: `weak_floor`, `strong_ceiling`, `methods`):
    one row per (run, predictor, metric) with both values and both PGRs."""
    rows = []
    for i, run in enumerate(runs):
        ood = run.metrics.get("ood")
        if not isinstance(ood, dict):
            continue
        shifted = {"weak_floor": "weak floor", "strong_ceiling": "strong ceiling"}
        pairs = [(name, run.metrics.get(key), ood.get(key)) for key, name in shifted.items()]
        pairs += [
            (m, row, (ood.get("methods") or {}).get(m)) for m, row in run.metrics["methods"].items()
        ]
        for name, ind, out in pairs:
            if not isinstance(ind, dict) or not isinstance(out, dict):
                continue
            for metric in (m for m in metric_names(run) if m in out):
                rows.append(
                    {
                        "run": i,
                        "task": run.task,
                        "label": run.label,
                        "predictor": name,
                        "metric": metric,
                        "in_distribution": _num(ind.get(metric)),
                        "out_of_distribution": _num(out.get(metric)),
                        "pgr_in": _num(ind.get(f"pgr_{metric}")),
                        "pgr_out": _num(out.get(f"pgr_{metric}")),
                    }
                )
    return pd.DataFrame(rows)


def domain_frame(runs: list[Run]) -> pd.DataFrame:
    """Test accuracy per domain (classification runs whose predictions have a `domain`
    column with two or more domains): one row per (run, predictor, domain)."""
    rows = []
    for i, run in enumerate(runs):
        pred = run.predictions
        if run.kind != "classification" or pred is None or "domain" not in pred:
            continue
        if pred["domain"].nunique() < 2:
            continue
        for column, name, _ in predictors(run):
            if column not in pred:
                continue
            hit = pred[column].to_numpy() == pred["gold"].to_numpy()
            for domain, idx in pred.groupby("domain", sort=True).indices.items():
                rows.append(
                    {
                        "run": i,
                        "task": run.task,
                        "label": run.label,
                        "predictor": name,
                        "domain": str(domain),
                        "n": len(idx),
                        "accuracy": float(hit[idx].mean()),
                    }
                )
    return pd.DataFrame(rows)


def student_method(run: Run, wanted: str | None = None) -> str | None:
    """The method whose examples are shown: `wanted` if the run has it, else the run's
    baseline (naive), else its first method."""
    methods = list(run.metrics["methods"])
    if wanted in methods:
        return wanted
    base = run.metrics.get("baseline")
    return base if base in methods else (methods[0] if methods else None)


def classification_examples(run: Run, method: str, n: int) -> dict[str, Any] | None:
    """Test examples where the weak supervisor was wrong and the student `method` fixed
    it (`corrected`) or made the same mistake (`copied`), the weak model's most confident
    mistakes first, with counts over the whole test set."""
    pred = run.predictions
    if pred is None or not {"gold", "weak", method, "text"} <= set(pred.columns):
        return None
    gold, weak, student = (pred[c].to_numpy() for c in ("gold", "weak", method))
    wrong = weak != gold
    corrected = wrong & (student == gold)
    copied = wrong & (student == weak)
    confidence = _confidence(pred, "p_weak", weak)
    student_conf = _confidence(pred, f"p_{method}", student)
    classes = [str(c) for c in run.metrics.get("classes") or []]

    def name(k: Any) -> str:
        return classes[int(k)] if 0 <= int(k) < len(classes) else str(k)

    def pick(mask: np.ndarray) -> list[dict[str, str]]:
        idx = np.flatnonzero(mask)
        idx = idx[np.argsort(-confidence[idx], kind="stable")][:n]
        return [
            {
                "text": str(pred["text"].iloc[j]),
                "gold": name(gold[j]),
                "weak": f"{name(weak[j])} (p={confidence[j]:.2f})",
                method: f"{name(student[j])} (p={student_conf[j]:.2f})",
            }
            for j in idx
        ]

    return {
        "method": method,
        "n_test": len(pred),
        "weak_mistakes": int(wrong.sum()),
        "corrected": int(corrected.sum()),
        "copied": int(copied.sum()),
        "corrected_examples": pick(corrected),
        "copied_examples": pick(copied),
    }


def generation_examples(run: Run, method: str, n: int) -> dict[str, Any] | None:
    """Generation: on the first graded metric, test prompts where the student `method`
    scored above the weak supervisor (`corrected`), and where it gave the weak answer
    again (same text after normalising) while that answer scored below the best score."""
    from w2s.graders.deterministic import normalize

    pred, names = run.predictions, metric_names(run)
    if pred is None or not names:
        return None
    metric = names[0]
    need = {"prompt", "weak", method, f"weak:{metric}", f"{method}:{metric}"}
    if not need <= set(pred.columns):
        return None
    weak_s = pred[f"weak:{metric}"].to_numpy(dtype=float)
    stud_s = pred[f"{method}:{metric}"].to_numpy(dtype=float)
    top = np.nanmax(np.concatenate([weak_s, stud_s])) if len(pred) else np.nan
    same = np.array(
        [
            normalize(str(a)) == normalize(str(b))
            for a, b in zip(pred["weak"], pred[method], strict=True)
        ]
    )
    corrected = stud_s > weak_s
    copied = same & (weak_s < top)

    def pick(mask: np.ndarray) -> list[dict[str, str]]:
        out = []
        for j in np.flatnonzero(mask)[:n]:
            row = {"prompt": str(pred["prompt"].iloc[j])}
            if "reference" in pred:
                row["reference"] = str(pred["reference"].iloc[j])
            row["weak"] = f"{pred['weak'].iloc[j]} ({metric} {weak_s[j]:g})"
            row[method] = f"{pred[method].iloc[j]} ({metric} {stud_s[j]:g})"
            out.append(row)
        return out

    return {
        "method": method,
        "metric": metric,
        "n_test": len(pred),
        "weak_mistakes": int((weak_s < top).sum()),
        "corrected": int(corrected.sum()),
        "copied": int(copied.sum()),
        "corrected_examples": pick(corrected),
        "copied_examples": pick(copied),
    }


def _confidence(pred: pd.DataFrame, column: str, chosen: np.ndarray) -> np.ndarray:
    """The probability a predictor gave the class it chose (NaN without probabilities)."""
    if column not in pred:
        return np.full(len(pred), np.nan)
    p = np.stack(pred[column].to_numpy())
    return p[np.arange(len(p)), chosen.astype(int)]


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)
