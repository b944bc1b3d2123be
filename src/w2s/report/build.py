"""Assemble a report from finished runs and write it: `.html` (one self-contained file)
or `.md` (Markdown, figures in `<name>_files/` beside it)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from w2s.cache import atomic_path, check_out_dir
from w2s.errors import ReportError, W2SError
from w2s.experiment.outputs import GAP_MARK, fmt, signed
from w2s.report import data, figures
from w2s.report.document import (
    Document,
    Example,
    Image,
    Section,
    Table,
    Text,
    render_html,
    render_markdown,
)
from w2s.report.runs import Run, collect_runs, seed_groups

FORMATS = {".html": "html", ".htm": "html", ".md": "markdown"}
TEXT_LIMIT = 600


@dataclass
class ReportResult:
    """What was written: the file, the runs it covers, what was skipped and why."""

    path: Path
    runs: list[Run]
    skipped: list[str]
    images: int


def check_output(out: Path) -> str:
    """The format of `out` (by its suffix); `ReportError` unless it can be written."""
    fmt_ = FORMATS.get(out.suffix.lower())
    if fmt_ is None:
        raise ReportError(f"report {out}: the name must end in .html or .md")
    if out.is_dir():
        raise ReportError(f"report {out} is a folder; give a file name ending in .html or .md")
    try:
        check_out_dir(out.parent if str(out.parent) else Path("."))
    except W2SError as err:
        raise ReportError(f"cannot write the report {out}: {err}") from None
    return fmt_


def write_report(
    inputs: list[Path], out: Path, method: str | None = None, examples: int = 2
) -> ReportResult:
    """Collect the finished runs of `inputs`, build the report, write it to `out`."""
    kind = check_output(out)
    collected = collect_runs(inputs)
    doc = build_document(collected.runs, collected.skipped, method, examples)
    try:
        if kind == "html":
            with atomic_path(out) as tmp:
                tmp.write_text(render_html(doc), encoding="utf-8")
        else:
            folder = out.with_name(out.stem + "_files")
            with atomic_path(folder, directory=True) as tmp:
                for image in doc.images():
                    (tmp / f"{image.name}.png").write_bytes(image.png)
            with atomic_path(out) as tmp:
                tmp.write_text(render_markdown(doc, folder.name), encoding="utf-8")
    except OSError as err:
        raise ReportError(f"cannot write the report {out}: {err.strerror or err}") from None
    return ReportResult(out, collected.runs, collected.skipped, len(doc.images()))


def build_document(
    runs: list[Run], skipped: list[str], method: str | None = None, examples: int = 2
) -> Document:
    """The whole report: runs, scores per task, PGR heat-maps, gain vs misfit, in- vs
    out-of-distribution, and examples of corrected and copied weak mistakes."""
    tasks = list(dict.fromkeys(r.task for r in runs))
    kinds = sorted({r.kind for r in runs})
    level = 100 * float(runs[0].metrics.get("bootstrap", {}).get("ci", 0.95))
    doc = Document(
        title=f"Weak-to-strong report: {len(runs)} run{'s' * (len(runs) != 1)}, "
        f"{len(tasks)} task{'s' * (len(tasks) != 1)}",
        intro=[
            "PGR = (student − weak floor) / (strong ceiling − weak floor), on the test set. "
            f"Intervals are {level:.0f}% percentile bootstraps over test examples, paired "
            "for PGRs (floor, ceiling and student scored on the same resamples). "
            f"{GAP_MARK} marks a PGR whose floor-to-ceiling gap is not significant: there "
            "was nothing to recover, and its value means nothing.",
        ],
        warnings=list(skipped),
    )
    if "generation" in kinds:
        doc.intro.append(
            "Generation runs show every graded metric (bars and PGR); misfit, domains and "
            "class probabilities exist only for classification runs."
        )
    doc.sections = [
        runs_section(runs),
        scores_section(runs, tasks),
        pgr_section(runs),
        *([seeds_section(groups)] if (groups := seed_groups(runs, doc.warnings)) else []),
        misfit_section(runs),
        shift_section(runs),
        examples_section(runs, method, examples),
    ]
    return doc


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:60] or "x"


def runs_section(runs: list[Run]) -> Section:
    rows = []
    for r in runs:
        n = r.metrics.get("n", {})
        rows.append(
            [
                r.task,
                r.label,
                r.kind,
                str(r.metrics.get("seed", "")),
                str(n.get("test", "")),
                ", ".join(r.metrics["methods"]),
                str(r.path),
            ]
        )
    header = ["task", "run", "kind", "seed", "test n", "methods", "folder"]
    return Section("Runs", [Table(header, rows)])


def _ci_cell(value: float, lo: float, hi: float) -> str:
    if not np.isfinite(lo):
        return fmt(value)
    return f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"


def scores_section(runs: list[Run], tasks: list[str]) -> Section:
    """Per task: floor, ceiling and method bars with CIs, and the same numbers as a table."""
    scores = data.scores_frame(runs)
    section = Section("Scores per task")
    section.blocks.append(
        Text(
            "Test scores of the weak floor (weak model trained on gold), the strong ceiling "
            "(strong model trained on gold) and each W2S method, with bootstrap CIs."
        )
    )
    for task in tasks:
        sub = scores[scores["task"] == task]
        section.blocks.append(
            Image(f"scores-{_slug(task)}", figures.task_bars(task, sub), f"scores on {task}")
        )
        labels = list(dict.fromkeys(sub["label"]))
        for metric in dict.fromkeys(sub["metric"]):
            m = sub[sub["metric"] == metric]
            names = list(dict.fromkeys(m["predictor"]))
            cell = {(r.predictor, r.label): _ci_cell(r.value, r.lo, r.hi) for r in m.itertuples()}
            rows = [[n, *(cell.get((n, lab), "") for lab in labels)] for n in names]
            section.blocks.append(Table([f"{task}: {metric}", *labels], rows))
    return section


def _pgr_cell(r) -> str:
    if not r.significant:
        return f"no gap{GAP_MARK}" + (f" ({fmt(r.pgr, True)})" if np.isfinite(r.pgr) else "")
    if not np.isfinite(r.pgr):
        return "-"
    return f"{fmt(r.pgr, True)} [{fmt(r.lo, True)}, {fmt(r.hi, True)}]"


def pgr_section(runs: list[Run]) -> Section:
    """Per metric: a methods × tasks heat-map and its table; non-significant gaps marked."""
    frame = data.pgr_frame(runs)
    section = Section("PGR: methods × tasks")
    if frame.empty:
        section.blocks.append(Text("No run has a method with a PGR."))
        return section
    section.blocks.append(
        Text(
            "Each cell: a method's PGR in one run with its CI. Hatched grey cells "
            f"({GAP_MARK}) are runs where the strong ceiling does not beat the weak floor "
            "significantly; their PGR (in brackets in the table) is a ratio of noise."
        )
    )
    for metric in dict.fromkeys(frame["metric"]):
        sub = frame[frame["metric"] == metric]
        img = figures.pgr_heatmap(sub, metric)
        section.blocks.append(Image(f"pgr-{_slug(metric)}", img, f"PGR on {metric}"))
        columns = list(dict.fromkeys(zip(sub["task"], sub["label"], strict=True)))
        cell = {(r.method, r.task, r.label): _pgr_cell(r) for r in sub.itertuples()}
        rows = [
            [m, *(cell.get((m, t, lab), "") for t, lab in columns)]
            for m in dict.fromkeys(sub["method"])
        ]
        header = [f"PGR ({metric})", *(f"{t}: {lab}" for t, lab in columns)]
        section.blocks.append(Table(header, rows))
        flat = sub[~sub["significant"]].drop_duplicates("run")
        for r in flat.itertuples():
            rate = (
                "?" if not np.isfinite(r.gap_positive_rate) else f"{100 * r.gap_positive_rate:.0f}%"
            )
            section.blocks.append(
                Text(
                    f"{GAP_MARK} {r.task}, {r.label}: the ceiling beats the floor on {metric} in "
                    f"only {rate} of bootstrap resamples."
                )
            )
    return section


def _pair_cell(value: float, ci: list[float], form=fmt) -> str:
    """`value [lo, hi]` in `form` (fmt, a percentage, signed); '-' when undefined."""
    if not np.isfinite(value):
        return "-"
    return f"{form(value)} [{form(ci[0])}, {form(ci[1])}]"


def seeds_section(groups: list[list[Run]]) -> Section:
    """Per experiment run over several seeds: every seed's test examples pooled."""
    section = Section("Seeds pooled")
    section.blocks.append(
        Text(
            "Runs that differ only in their seed, taken as one experiment: each score is a "
            "mean over all the seeds' test examples, and each interval a paired bootstrap "
            "that resamples every seed's test set on its own. Metrics without per-example "
            "scores (AUROC) are not pooled."
        )
    )
    for group in groups:
        first = group[0]
        seeds = ", ".join(str(r.metrics.get("seed")) for r in group)
        n = sum(int(r.metrics.get("n", {}).get("test", 0)) for r in group)
        frame = data.pooled_frame(group)
        base = first.metrics.get("baseline")
        for metric in dict.fromkeys(frame.get("metric", [])):
            header = [f"{first.task}, {first.pair}, seeds {seeds} ({n} test): {metric}"]
            header += ["mean [CI]", "PGR [CI]", f"− {base} [CI]", "better / worse"]
            rows = []
            for r in frame[frame["metric"] == metric].to_dict("records"):
                pgr = ""
                if "pgr" in r and isinstance(r.get("pgr_ci"), list):
                    pgr = _pair_cell(r["pgr"], r["pgr_ci"], lambda x: fmt(x, True))
                    pgr = pgr if r["significant"] else f"no gap{GAP_MARK}"
                vs, counts = "", ""
                if isinstance(r.get("vs_baseline_ci"), list):
                    vs = _pair_cell(r["vs_baseline"], r["vs_baseline_ci"], signed)
                    counts = f"{int(r['better'])} / {int(r['worse'])}"
                rows.append([r["predictor"], _pair_cell(r["mean"], r["ci"]), pgr, vs, counts])
            section.blocks.append(Table(header, rows))
    return section


def misfit_section(runs: list[Run]) -> Section:
    frame = data.misfit_frame(runs)
    section = Section("Gain vs misfit")
    if frame.empty:
        section.blocks.append(
            Text("Misfit needs class probabilities: no classification run here has them.")
        )
        return section
    holds = int((frame["gain_cross_entropy"] >= frame["misfit_kl"]).sum())
    section.blocks += [
        Text(
            "Misfit = mean KL(student ‖ weak) on the test inputs (needs no labels); gain = "
            "weak minus student cross-entropy on gold test labels. Charikar et al. predict "
            "gain ≥ misfit, near equality, when the student is the projection of the weak "
            f"model onto the strong model's class. Here gain ≥ misfit in {holds} of "
            f"{len(frame)} (run, method) points."
        ),
        Image("gain-vs-misfit", figures.misfit_scatter(frame), "gain vs misfit"),
        Table(
            ["task", "run", "method", "misfit (KL)", "gain (CE)", "gain (acc)", "gain ≥ misfit"],
            [
                [
                    r.task,
                    r.label,
                    r.method,
                    fmt(r.misfit_kl),
                    fmt(r.gain_cross_entropy),
                    f"{r.gain_accuracy:+.3f}" if np.isfinite(r.gain_accuracy) else "-",
                    "yes" if r.gain_cross_entropy >= r.misfit_kl else "no",
                ]
                for r in frame.itertuples()
            ],
        ),
    ]
    return section


def shift_section(runs: list[Run]) -> Section:
    """In- vs out-of-distribution where runs have it (metrics.json `ood`); otherwise test
    accuracy by domain where predictions have domains; otherwise a sentence saying so."""
    section = Section("In- vs out-of-distribution")
    ood = data.ood_frame(runs)
    if not ood.empty:
        section.blocks.append(
            Text(
                "Each predictor on the in-distribution test split and on the "
                "out-of-distribution split (held-out domains)."
            )
        )
        for (task, label), sub in ood.groupby(["task", "label"], sort=False):
            sub = sub[sub["metric"] == sub["metric"].iloc[0]]
            metric = sub["metric"].iloc[0]
            long = pd.concat(
                [
                    sub.assign(split="in-distribution", value=sub["in_distribution"]),
                    sub.assign(split="out-of-distribution", value=sub["out_of_distribution"]),
                ]
            )
            img = figures.grouped_bars(
                long, "predictor", "split", "value", f"{task}: {label}", metric
            )
            section.blocks.append(Image(f"ood-{_slug(task)}-{_slug(label)}", img, f"OOD {task}"))
        section.blocks.append(
            Table(
                ["task", "run", "predictor", "metric", "in", "out", "PGR in", "PGR out"],
                [
                    [
                        r.task,
                        r.label,
                        r.predictor,
                        r.metric,
                        fmt(r.in_distribution),
                        fmt(r.out_of_distribution),
                        fmt(r.pgr_in, True) if np.isfinite(r.pgr_in) else "",
                        fmt(r.pgr_out, True) if np.isfinite(r.pgr_out) else "",
                    ]
                    for r in ood.itertuples()
                ],
            )
        )
        return section
    domains = data.domain_frame(runs)
    if domains.empty:
        section.blocks.append(
            Text(
                "No run has an out-of-distribution split (metrics.json `ood`) or test examples "
                "with domains, so there is nothing to compare."
            )
        )
        return section
    section.blocks.append(
        Text(
            "No run has an out-of-distribution split (metrics.json `ood`). These runs trained "
            "on every domain, so accuracy by domain below shows how results vary across the "
            "task's domains, not a distribution shift. The figure shows each task's first run."
        )
    )
    for task, sub in domains.groupby("task", sort=False):
        first = sub[sub["run"] == sub["run"].iloc[0]]
        img = figures.grouped_bars(
            first,
            "predictor",
            "domain",
            "accuracy",
            f"{task}: {first['label'].iloc[0]}",
            "test accuracy",
        )
        section.blocks.append(Image(f"domains-{_slug(task)}", img, f"accuracy by domain, {task}"))
        names = list(dict.fromkeys(sub["domain"]))
        sizes = sub.groupby("domain")["n"].unique()  # test examples per domain, per run
        header = ["run", "predictor"]
        header += [f"{d} (n={sizes[d][0]})" if len(sizes[d]) == 1 else d for d in names]
        rows = []
        for (label, pred), g in sub.groupby(["label", "predictor"], sort=False):
            acc = g.set_index("domain")["accuracy"]
            rows.append([label, pred, *(fmt(acc.get(d)) for d in names)])
        section.blocks.append(Table([f"{task}: {header[0]}", *header[1:]], rows))
    return section


def _clip(text: str) -> str:
    text = str(text).strip()
    return text if len(text) <= TEXT_LIMIT else text[:TEXT_LIMIT] + " …"


def examples_section(runs: list[Run], method: str | None, n: int) -> Section:
    """Per run: how often the student fixed or repeated the weak supervisor's test
    mistakes, and a few of each (the weak model's most confident mistakes first)."""
    section = Section("Corrected and copied weak mistakes")
    if n <= 0:
        section.blocks.append(Text("Examples were turned off (--examples 0)."))
        return section
    for run in runs:
        student = data.student_method(run, method)
        if student is None:
            continue
        if run.kind == "classification":
            ex = data.classification_examples(run, student, n)
        else:
            ex = data.generation_examples(run, student, n)
        where = f"{run.task}, {run.label}"
        if ex is None:
            section.blocks.append(Text(f"{where}: predictions.parquet lacks what examples need."))
            continue
        on = f" on {ex['metric']}" if "metric" in ex else ""
        section.blocks.append(
            Text(
                f"{where} — student {student}{on}: of {ex['weak_mistakes']} weak mistakes in "
                f"{ex['n_test']} test examples, it corrected {ex['corrected']} and copied "
                f"{ex['copied']}."
            )
        )
        for what in ("corrected", "copied"):
            for i, fields in enumerate(ex[f"{what}_examples"], 1):
                title = f"{where}: {what} ({i})"
                section.blocks.append(Example(title, [(k, _clip(v)) for k, v in fields.items()]))
    if not section.blocks:
        section.blocks.append(Text("No run has a method to show examples of."))
    return section
