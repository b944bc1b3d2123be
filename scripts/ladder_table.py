"""Turn the ladder sweep folder into the Markdown table of docs/results.md ("Misfit vs
realised gain over the zoo ladder").

    python scripts/ladder_table.py runs/ladder > runs/ladder/table.md

One row per finished run and method: floor, ceiling and student accuracy on test, PGR with
its 95% CI (bold where the CI excludes 0; `no gap†` in its place where the floor-to-ceiling
gap is not significant), whether that gap is significant, the misfit and the realised
gain, and the pseudolabel-correction figures.
Nothing is computed here beyond formatting what the runs wrote to metrics.json.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from w2s.errors import ReportError
from w2s.report.runs import collect_runs

HEADER = (
    "| task | weak -> strong | method | weak | ceiling | student | PGR (acc) [95% CI] "
    "| gap significant | misfit KL | gain CE | gain acc | corrected | "
    "student acc uncovered (weak) |"
)


def pgr(m: dict, gap_significant: bool) -> str:
    """PGR with its CI; `no gap†` (as `w2s sweep` prints it) where the floor-to-ceiling
    gap is not significant, since a ratio over a gap that may be zero means nothing."""
    v, ci = m.get("pgr_accuracy"), m.get("pgr_accuracy_ci")
    if not gap_significant:
        return "no gap†"
    if v is None:
        return "—"
    if not ci or ci[0] is None:
        return f"{100 * v:.0f}%"
    s = f"{100 * v:.0f}% [{100 * ci[0]:.0f}, {100 * ci[1]:.0f}]"
    return f"**{s}**" if ci[0] > 0 or ci[1] < 0 else s


def rows(sweep: Path) -> list[str]:
    try:
        found = collect_runs([sweep]).runs  # finished runs, by folder name, as w2s report
    except ReportError as err:
        raise SystemExit(f"error: {err}") from None
    out = []
    for run in (r.metrics for r in found):
        floor, ceiling = run["weak_floor"]["accuracy"], run["strong_ceiling"]["accuracy"]
        significant = bool(run["gap"]["accuracy"]["significant"])
        gap = "yes" if significant else "no"
        for name, m in run["methods"].items():
            mis, cov = m["misfit"], m["coverage"]
            out.append(
                f"| {run['task']} | {run['weak']} -> {run['strong']} | {name} | {floor:.3f} "
                f"| {ceiling:.3f} | {m['accuracy']:.3f} | {pgr(m, significant)} | {gap} "
                f"| {mis['misfit_kl']:.3f} | {mis['gain_cross_entropy']:+.3f} "
                f"| {mis['gain_accuracy']:+.3f} | {cov['correction_rate']:.2f} "
                f"| {cov['student_accuracy_uncovered']:.3f} "
                f"({cov['weak_accuracy_uncovered']:.3f}) |"
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path)
    args = parser.parse_args()
    body = rows(args.sweep)
    if not body:
        raise SystemExit(f"error: no finished runs in {args.sweep}")
    print(HEADER)
    print("|" + "---|" * HEADER.count(" | ") + "---|")
    print("\n".join(body))


if __name__ == "__main__":
    main()
