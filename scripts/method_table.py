"""Turn a classification sweep folder into the Markdown method table (docs/results.md).

    python scripts/method_table.py runs/method_table [--metric accuracy] > table.md

Reads every finished run's metrics.json (folders with one and without `.incomplete`) and
prints, per weak -> strong pair: floor and ceiling per run, each method's PGR with its 95%
CI, each method's difference to naive with its CI, a count of significant differences
per method, and RAVEN's learned weights per run. Rows with held-out domains come twice:
test and ood_test. Nothing is computed here beyond formatting what the runs wrote.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

from w2s.errors import ReportError
from w2s.report.runs import collect_runs


def load_runs(sweep: Path) -> list[dict]:
    """Each finished run's metrics (as `w2s report` finds them), with `strong_mode` from
    its config.yaml: metrics.json does not record whether the student was fine-tuned."""
    try:
        found = collect_runs([sweep]).runs
    except ReportError as err:
        raise SystemExit(f"error: {err}") from None
    runs = []
    for run in found:
        strong = run.config.get("strong")
        mode = strong.get("mode", "probe") if isinstance(strong, dict) else "probe"
        runs.append({**run.metrics, "strong_mode": mode})
    return runs


def weak_name(run: dict) -> str:
    w = run["weak"]
    return "+".join(w) if isinstance(w, list) else str(w)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.0f}"


def pgr_cell(m: dict, metric: str, gap_significant: bool) -> str:
    """PGR [CI], bold where the CI excludes 0; where the floor-to-ceiling gap is not
    significant, `no gap† (value)` as `w2s report` writes it: a ratio of noise."""
    v, ci = m.get(f"pgr_{metric}"), m.get(f"pgr_{metric}_ci")
    if v is None:
        return "—"
    if not gap_significant:
        return f"no gap† ({pct(v)}%)"
    if not ci or ci[0] is None:
        return f"{pct(v)}%"
    sig = ci[0] > 0 or ci[1] < 0
    s = f"{pct(v)}% [{pct(ci[0])}, {pct(ci[1])}]"
    return f"**{s}**" if sig else s


def diff_cell(m: dict, metric: str) -> tuple[str, int]:
    """The cell and its sign: +1 / -1 where the CI excludes 0, else 0."""
    v, ci = m.get(f"vs_naive_{metric}"), m.get(f"vs_naive_{metric}_ci")
    if v is None or not ci or ci[0] is None:
        return "—", 0
    sign = 1 if ci[0] > 0 else -1 if ci[1] < 0 else 0
    s = f"{v:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"
    return (f"**{s}**" if sign else s), sign


def splits(run: dict) -> list[tuple[str, dict]]:
    """(label, section) for test and, where domains were held out, ood_test."""
    out = [("test", run)]
    if run.get("ood"):
        out.append((f"ood ({','.join(run['ood'].get('domains', []))})", run["ood"]))
    return out


def short_task(task: str) -> str:
    return task.removeprefix("bigbench:")


def table(runs: list[dict], metric: str) -> str:
    lines: list[str] = []
    by_pair: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        mode = "" if r["strong_mode"] == "probe" else f" ({r['strong_mode']} student)"
        by_pair[f"{weak_name(r)} -> {r['strong']}{mode}"].append(r)
    for pair, rs in by_pair.items():
        rs.sort(key=lambda r: (r["task"], r["seed"]))
        methods = [m for m in rs[0]["methods"]]
        others = [m for m in methods if m != rs[0].get("baseline", "naive")]
        lines += [f"#### {pair} ({metric})", ""]
        head = "| task | seed | split | floor | ceiling | gap sig. | " + " | ".join(methods) + " |"
        lines += [
            "PGR on " + metric + " with its 95% CI (bold: CI excludes 0; no gap†: the"
            " ceiling does not beat the floor significantly, so the ratio means nothing):",
            "",
            head,
            "|" + "---|" * (6 + len(methods)),
        ]
        counts = {m: [0, 0, 0] for m in others}  # better, worse, total
        diffs: dict[str, list[float]] = defaultdict(list)
        pgr_signs = {m: [0, 0] for m in methods}  # PGR CI above / below 0, gap rows only
        gap_rows = 0
        diff_rows = []
        for r in rs:
            for label, sec in splits(r):
                floor = sec["weak_floor"][metric]
                ceil = sec["strong_ceiling"][metric]
                sig = sec.get("gap", {}).get(metric, {}).get("significant")
                cells = [pgr_cell(sec["methods"][m], metric, bool(sig)) for m in methods]
                row = [short_task(r["task"]), str(r["seed"]), label, f"{floor:.3f}", f"{ceil:.3f}"]
                row += ["yes" if sig else "no"] + cells
                lines.append("| " + " | ".join(row) + " |")
                if sig:
                    gap_rows += 1
                    for m in methods:
                        ci = sec["methods"][m].get(f"pgr_{metric}_ci")
                        if ci and ci[0] is not None:
                            pgr_signs[m][0] += ci[0] > 0
                            pgr_signs[m][1] += ci[1] < 0
                dcells = []
                for m in others:
                    c, s = diff_cell(sec["methods"][m], metric)
                    dcells.append(f"{sec['methods'][m][metric]:.3f}: {c}")
                    counts[m][2] += 1
                    if sec["methods"][m].get(f"vs_naive_{metric}") is not None:
                        diffs[m].append(sec["methods"][m][f"vs_naive_{metric}"])
                    if s > 0:
                        counts[m][0] += 1
                    elif s < 0:
                        counts[m][1] += 1
                naive_acc = sec["methods"]["naive"][metric]
                drow = [short_task(r["task"]), str(r["seed"]), label, f"{naive_acc:.3f}"]
                diff_rows.append("| " + " | ".join(drow + dcells) + " |")
        lines += [
            "",
            f"{metric} of each method and its difference to naive [95% CI] (bold: CI excludes 0):",
            "",
            "| task | seed | split | naive | " + " | ".join(others) + " |",
            "|" + "---|" * (4 + len(others)),
            *diff_rows,
            "",
            f"Per method over the runs x splits: the mean difference to naive, how many are"
            f" significantly better / worse than naive, and among the {gap_rows} rows with a"
            " significant gap how many PGRs have a CI above / below 0:",
            "",
            "| method | mean − naive | better than naive | worse than naive | runs x splits "
            "| PGR > 0 | PGR < 0 |",
            "|---|---|---|---|---|---|---|",
        ]
        for m in methods:
            pos, neg = pgr_signs[m]
            if m not in counts:
                lines.append(f"| {m} | | | | | {pos} | {neg} |")
                continue
            b, w, n = counts[m]
            mean = f"{sum(diffs[m]) / len(diffs[m]):+.3f}" if diffs[m] else "—"
            lines.append(f"| {m} | {mean} | {b} | {w} | {n} | {pos} | {neg} |")
        lines.append("")
        raven = [r for r in rs if "raven" in r["methods"]]
        if raven:
            lines += [
                "RAVEN's learned weights (`diag_weights`) against each supervisor's floor "
                f"({metric} on test):",
                "",
                "| task | seed | weights | easy-start fraction | floors |",
                "|---|---|---|---|---|",
            ]
            for r in raven:
                w = r["methods"]["raven"].get("diag_weights")
                names = r["weak"] if isinstance(r["weak"], list) else [r["weak"]]
                if isinstance(w, dict):
                    ws = ", ".join(f"{k} {v:.2f}" for k, v in w.items())
                elif isinstance(w, list):
                    ws = ", ".join(f"{n} {v:.2f}" for n, v in zip(names, w, strict=False))
                else:
                    ws = "—"
                floors = r.get("weak_floors", {})
                fs = ", ".join(f"{k} {v[metric]:.3f}" for k, v in floors.items())
                easy = r["methods"]["raven"].get("diag_easy_fraction")
                es = "—" if easy is None else f"{easy:.2f}"
                lines.append(f"| {short_task(r['task'])} | {r['seed']} | {ws} | {es} | {fs} |")
            lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sweep", type=Path)
    ap.add_argument("--metric", default="accuracy", choices=["accuracy", "auroc"])
    a = ap.parse_args()
    runs = [r for r in load_runs(a.sweep) if r.get("kind") == "classification"]
    if not runs:
        raise SystemExit(f"error: no finished classification run under {a.sweep}")
    print(table(runs, a.metric))


if __name__ == "__main__":
    main()
