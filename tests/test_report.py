"""`w2s report` on real tiny runs: a sweep folder (two tasks, two seeds) and a run folder
go into one self-contained HTML file, which headless Chromium renders with every image
and no network request; Markdown with its figures; the numbers agree with the runs;
unfinished runs are skipped with a warning; bad input is one error line."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.browser import Browser, ensure_chromium
from tests.conftest import error_lines
from w2s.errors import ReportError
from w2s.experiment import build_config, run_experiment
from w2s.experiment.outputs import INCOMPLETE
from w2s.report import data, write_report
from w2s.report.build import build_document
from w2s.report.document import Example, Image, Table
from w2s.report.runs import collect_runs

# a weak supervisor that sees only a sentence's first 6 tokens and 60 gold labels; the
# strong model reads whole sentences: a real gap at tiny sizes, in seconds on a CPU
WEAK = {"model": "minilm-l6", "dtype": "float32", "max_length": 6}
STRONG = {"model": "minilm-l6", "dtype": "float32"}
SIZES = {"n_weak_train": 60, "n_strong_train": 200, "n_val": 40, "n_test": 200}
BASE = {
    "weak": WEAK,
    "strong": STRONG,
    "methods": ["naive", "logconf"],
    "data": SIZES,
    "probe": {"epochs": 10},
    "bootstrap": {"n_resamples": 300},
}
SINGLE = {
    **BASE,
    "task": "sentiment",
    "seed": 2,
    "methods": ["naive"],
    "weak": STRONG,
    "data": {**SIZES, "n_weak_train": 200},
}
TASKS = ["sentiment", "bigbench:multiemo/hotels_sentence_en?classes=negative,positive"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A sweep-like folder of three real runs (two tasks; two seeds of one) with an
    index, and one separate run folder."""
    root = tmp_path_factory.mktemp("report")
    sweep = root / "sweep"
    plan = [(TASKS[0], 0), (TASKS[0], 1), (TASKS[1], 0)]
    for i, (task, seed) in enumerate(plan):
        out = sweep / f"run{i}"
        run_experiment(build_config({**BASE, "task": task, "seed": seed, "out": str(out)}))
    index = pd.DataFrame({"run": [f"run{i}" for i in range(3)], "status": ["done"] * 3})
    index.to_parquet(sweep / "index.parquet")
    # and one where the weak model is the strong one, on as many labels: no gap to recover
    single = root / "single"
    run_experiment(build_config({**SINGLE, "out": str(single)}))
    return root, sweep, single


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_html_report_is_one_self_contained_file(runs, w2s_cli, tmp_path):
    root, sweep, single = runs
    out = tmp_path / "report.html"
    proc = w2s_cli("report", str(sweep), str(single), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"report: {out} (4 runs" in proc.stdout
    html = out.read_text(encoding="utf-8")
    parser = Tags()
    parser.feed(html)
    images = [a for t, a in parser.tags if t == "img"]
    # scores per task (2), PGR heat-maps (accuracy, AUROC), gain vs misfit, domains
    assert len(images) == 6
    for attrs in images:
        assert attrs["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(attrs["src"].split(",", 1)[1], validate=True)
        import matplotlib.image

        pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
        assert pixels.shape[0] > 100 and pixels.shape[1] > 100 and pixels.std() > 0
    for _, attrs in parser.tags:  # nothing to fetch: data URIs and in-page anchors only
        for key in ("src", "href"):
            if key in attrs:
                assert attrs[key].startswith(("data:", "#")), attrs
    csp = [a for t, a in parser.tags if t == "meta" and a.get("http-equiv")]
    assert csp and "default-src 'none'" in csp[0]["content"]
    for heading in ("Scores per task", "PGR: methods × tasks", "Gain vs misfit"):
        assert heading in html
    assert "In- vs out-of-distribution" in html and "Corrected and copied" in html


def _cells(doc, title_start: str) -> Table:
    return next(
        b
        for s in doc.sections
        for b in s.blocks
        if isinstance(b, Table) and b.header[0].startswith(title_start)
    )


def test_report_numbers_agree_with_the_runs(runs):
    root, sweep, single = runs
    got = collect_runs([sweep, single])
    assert [r.path for r in got.runs] == [sweep / "run0", sweep / "run1", sweep / "run2", single]
    assert not got.skipped
    scores = data.scores_frame(got.runs)
    for run in got.runs:
        pred = run.predictions
        for col, name, row in data.predictors(run):
            s = scores[(scores["label"] == run.label) & (scores["predictor"] == name)]
            s = s[s["task"] == run.task].iloc[0]
            assert s["value"] == pytest.approx(row["accuracy"])
            assert s["value"] == pytest.approx((pred[col] == pred["gold"]).mean())
            assert 0 <= s["lo"] < s["hi"] <= 1 and s["hi"] - s["lo"] < 0.3
    # PGR cells: a number with its CI where the gap is significant, `no gap†` elsewhere
    doc = build_document(got.runs, got.skipped)
    table = _cells(doc, "PGR (accuracy)")
    frame = data.pgr_frame(got.runs)
    acc = frame[frame["metric"] == "accuracy"]
    assert acc["significant"].any() and not acc["significant"].all()
    columns = table.header[1:]
    for r in acc.itertuples():
        cell = table.rows[[row[0] for row in table.rows].index(r.method)][
            1 + columns.index(f"{r.task}: {r.label}")
        ]
        run = got.runs[r.run]
        assert r.significant == run.metrics["gap"]["accuracy"]["significant"]
        assert r.pgr == pytest.approx(run.metrics["methods"][r.method]["pgr_accuracy"])
        assert cell.startswith("no gap†") != r.significant
        if r.significant:
            assert cell.startswith(f"{100 * r.pgr:.1f}%")
    only_naive = 1 + columns.index(f"sentiment: {got.runs[3].label}")
    assert table.rows[[row[0] for row in table.rows].index("logconf")][only_naive] == ""
    assert table.rows[0][only_naive].startswith("no gap†")  # weak = strong: nothing to recover
    assert columns.index(f"{got.runs[2].task}: {got.runs[2].label}") == 3  # grouped by task
    # gain vs misfit comes from each method's misfit in metrics.json
    mf = data.misfit_frame(got.runs)
    assert len(mf) == 3 * 2 + 1
    first = got.runs[0].metrics["methods"]["naive"]["misfit"]
    assert mf.iloc[0]["misfit_kl"] == first["misfit_kl"]


def test_seeds_of_one_experiment_are_pooled(runs):
    """The sweep's two sentiment seeds (same config) are one experiment: pooled scores are
    means over both test sets, and logconf − naive is the mean of the paired differences;
    the other task and the separate run (another config) are not pooled."""
    from w2s.report.runs import seed_groups

    root, sweep, single = runs
    got = collect_runs([sweep, single])
    groups = seed_groups(got.runs)
    assert [[r.path.name for r in g] for g in groups] == [["run0", "run1"]]
    frame = data.pooled_frame(groups[0]).set_index("predictor")
    assert set(frame["metric"]) == {"accuracy"}  # AUROC has no per-example score
    preds = [r.predictions for r in groups[0]]
    hits = {c: np.concatenate([p[c] == p["gold"] for p in preds]) for c in ("naive", "logconf")}
    assert frame.loc["naive", "mean"] == pytest.approx(hits["naive"].mean())
    diff = frame.loc["logconf", "vs_baseline"]
    assert diff == pytest.approx((hits["logconf"].astype(float) - hits["naive"]).mean())
    lo, hi = frame.loc["logconf", "vs_baseline_ci"]
    assert lo <= diff <= hi
    table = _cells(build_document(got.runs, []), "sentiment, ")
    assert "seeds 0, 1 (400 test)" in table.header[0]
    assert [row[0] for row in table.rows] == ["weak floor", "strong ceiling", "naive", "logconf"]
    assert table.rows[3][3].startswith(f"{diff:+.3f} [")


def test_a_second_run_of_the_same_seed_is_left_out_of_the_pool_with_a_warning(runs, tmp_path):
    """A copy of seed 0's run would count seed 0 twice: the pool keeps the first, and the
    document says which folder it left out."""
    from w2s.report.runs import seed_groups

    root, sweep, single = runs
    again = tmp_path / "again"
    shutil.copytree(sweep / "run0", again)
    got = collect_runs([sweep, again])
    skipped: list[str] = []
    groups = seed_groups(got.runs, skipped)
    assert [[r.path.name for r in g] for g in groups] == [["run0", "run1"]]
    assert len(skipped) == 1 and str(again) in skipped[0] and "seed 0" in skipped[0]
    doc = build_document(got.runs, list(got.skipped))
    assert any(str(again) in w for w in doc.warnings)


def test_examples_are_real_corrections_and_copies(runs):
    root, sweep, single = runs
    got = collect_runs([sweep / "run0"])
    run = got.runs[0]
    ex = data.classification_examples(run, "naive", n=3)
    pred = run.predictions
    wrong = pred["weak"] != pred["gold"]
    assert ex["weak_mistakes"] == wrong.sum()
    assert ex["corrected"] == (wrong & (pred["naive"] == pred["gold"])).sum()
    assert ex["copied"] == (wrong & (pred["naive"] == pred["weak"])).sum()
    assert ex["corrected"] > 0 and ex["copied"] > 0
    classes = run.metrics["classes"]
    by_text = pred.set_index("text")
    for kind in ("corrected", "copied"):
        shown = ex[f"{kind}_examples"]
        assert 0 < len(shown) <= 3
        for e in shown:
            row = by_text.loc[e["text"]]
            assert e["gold"] == classes[row["gold"]]
            assert row["weak"] != row["gold"]
            assert e["weak"].startswith(classes[row["weak"]] + " (p=")
            student = row["gold"] if kind == "corrected" else row["weak"]
            assert row["naive"] == student
    # the weak model's most confident mistakes come first
    conf = [float(e["weak"].split("p=")[1].rstrip(")")) for e in ex["corrected_examples"]]
    assert conf == sorted(conf, reverse=True)
    doc = build_document(got.runs, [])
    shown = [b for s in doc.sections for b in s.blocks if isinstance(b, Example)]
    assert len(shown) == 4  # two of each kind by default


def test_markdown_report_writes_its_figures_beside_it(runs, w2s_cli, tmp_path):
    root, sweep, single = runs
    out = tmp_path / "sub" / "report.md"
    proc = w2s_cli("report", str(sweep), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text(encoding="utf-8")
    refs = [line.split("](")[1].rstrip(")") for line in text.splitlines() if line.startswith("![")]
    assert len(refs) == 6
    for ref in refs:
        assert ref.startswith("report_files/") and (out.parent / ref).stat().st_size > 1000
    assert "| PGR (accuracy) |" in text and "no gap†" in text or "%" in text


def test_unfinished_runs_are_skipped_with_a_warning(runs, w2s_cli, tmp_path):
    root, sweep, single = runs
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    (copy / "run1" / INCOMPLETE).write_text("died\n")
    out = tmp_path / "r.html"
    proc = w2s_cli("report", str(copy), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    warnings = [ln for ln in error_lines(proc) if ln.startswith("warning:")]
    assert len(warnings) == 1 and "run1" in warnings[0] and "not finished" in warnings[0]
    assert "(2 runs" in proc.stdout
    html = out.read_text(encoding="utf-8")
    assert str(copy / "run0") in html and str(copy / "run1") + "<" not in html


@pytest.mark.parametrize(
    "case, message",
    [
        ("missing", "no such run or sweep folder"),
        ("unfinished", "no finished run in"),
        ("not_runs", "is not a run folder and holds none"),
        ("suffix", "must end in .html or .md"),
        ("unwritable", "cannot write the report"),
        ("folder", "is a folder"),
    ],
)
def test_bad_input_is_a_one_line_report_error(runs, tmp_path, case, message):
    root, sweep, single = runs
    inputs, out = [single], tmp_path / "r.html"
    if case == "missing":
        inputs = [tmp_path / "nope"]
    elif case == "unfinished":
        shutil.copytree(single, tmp_path / "u")
        (tmp_path / "u" / INCOMPLETE).write_text("")
        inputs = [tmp_path / "u"]
    elif case == "not_runs":
        (tmp_path / "empty").mkdir()
        inputs = [tmp_path / "empty"]
    elif case == "suffix":
        out = tmp_path / "r.pdf"
    elif case == "unwritable":
        out = Path("/proc/w2s-report.html")  # no one may create files in /proc
    elif case == "folder":
        out = tmp_path / "d.html"
        out.mkdir()
    with pytest.raises(ReportError) as err:
        write_report(inputs, out)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not out.is_file()


def test_cli_bad_input_is_one_error_line_and_exit_2(w2s_cli, tmp_path):
    proc = w2s_cli("report", str(tmp_path / "nope"), "-o", str(tmp_path / "r.html"))
    assert proc.returncode == 2
    lines = error_lines(proc)
    assert lines == [f"error: no such run or sweep folder: {tmp_path / 'nope'}"]


def test_out_of_distribution_results_are_shown_when_present(runs, tmp_path):
    """metrics.json has no `ood` section yet (issue 11 adds the split); its shape is the
    in-distribution one. A copy of a real run gets one, made from its own numbers."""
    root, sweep, single = runs
    copy = tmp_path / "ood"
    shutil.copytree(single, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    shifted = {k: {"accuracy": metrics[k]["accuracy"] - 0.1} for k in ("weak_floor",)}
    shifted["strong_ceiling"] = {"accuracy": metrics["strong_ceiling"]["accuracy"] - 0.05}
    shifted["methods"] = {"naive": {"accuracy": 0.61, "pgr_accuracy": 0.25}}
    metrics["ood"] = shifted
    (copy / "metrics.json").write_text(json.dumps(metrics))
    got = collect_runs([copy])
    frame = data.ood_frame(got.runs)
    naive = frame[(frame["predictor"] == "naive") & (frame["metric"] == "accuracy")].iloc[0]
    assert naive["out_of_distribution"] == 0.61 and naive["pgr_out"] == 0.25
    assert naive["in_distribution"] == metrics["methods"]["naive"]["accuracy"]
    doc = build_document(got.runs, [])
    section = next(s for s in doc.sections if s.title.startswith("In- vs out"))
    assert any(isinstance(b, Image) for b in section.blocks)
    table = next(b for b in section.blocks if isinstance(b, Table))
    assert [table.rows[2][i] for i in (2, 3, 5, 7)] == ["naive", "accuracy", "0.610", "25.0%"]


def test_report_renders_in_headless_chromium(runs, w2s_cli, tmp_path):
    """Chromium opens the report from disk: every image decoded (naturalWidth > 0), no
    request other than the file itself and its data: images, nothing logged as an error;
    a screenshot is saved (also to $W2S_TEST_ARTIFACTS if set). The same harness sees a
    broken image and a network request on a control page, so its checks can fail."""
    root, sweep, single = runs
    out = tmp_path / "report.html"
    proc = w2s_cli("report", str(sweep), str(single), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    control = tmp_path / "control.html"
    control.write_text(
        '<html><body><img src="data:image/png;base64,AAAA">'
        '<img src="http://127.0.0.1:9/x.png"></body></html>'
    )
    browser = Browser(ensure_chromium(), tmp_path / "profile")
    try:
        page = browser.page()
        page.open(control.as_uri())
        widths = page.evaluate("Array.from(document.images).map(i => i.naturalWidth)")
        assert widths == [0, 0]
        assert any(u.startswith("http://127.0.0.1:9/") for u in page.requests)

        page = browser.page()
        page.open(out.as_uri())
        images = page.evaluate(
            "Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(images) == 6
        assert all(done and w > 100 and h > 100 for done, w, h in images), images
        assert page.requests[0] == out.as_uri()
        assert all(u.startswith(("file:", "data:")) for u in page.requests), page.requests
        assert [e for e in page.log if e.get("level") == "error"] == []
        title = page.evaluate("document.querySelector('h1').textContent")
        assert title.startswith("Weak-to-strong report: 4 runs, 2 tasks")
        shot = page.screenshot(tmp_path / "report.png")
    finally:
        browser.close()
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 2000 and pixels.shape[1] == 1280
    assert pixels.std() > 0.05  # not a blank page
    if os.environ.get("W2S_TEST_ARTIFACTS"):
        artifacts = Path(os.environ["W2S_TEST_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, artifacts / "report.png")


def test_runs_that_differ_only_in_settings_get_telling_labels(runs, tmp_path):
    root, sweep, single = runs
    other = tmp_path / "epochs12"
    run_experiment(build_config({**SINGLE, "probe": {"epochs": 12}, "out": str(other)}))
    got = collect_runs([single, other])
    assert [r.label.rsplit("[", 1)[1] for r in got.runs] == ["epochs=10]", "epochs=12]"]
    assert np.unique([r.label for r in got.runs]).size == 2


def test_report_of_a_generation_run_shows_its_graded_metrics(runs, tmp_path):
    """A real tiny generation run (SmolLM2 prompted as weak, ceiling and student) beside a
    classification run: bars and PGRs per graded metric, examples from its answers; misfit
    and domains only from the classification run."""
    root, sweep, single = runs
    gen = tmp_path / "persona"
    raw = {
        "task": "persona",
        "weak": "smollm2-135m",
        "strong": "smollm2-135m",
        "methods": ["unaltered"],
        "data": {"n_weak_train": 3, "n_strong_train": 3, "n_val": 1, "n_test": 4},
        "generation": {"max_new_tokens": 16, "k": 2},
        "bootstrap": {"n_resamples": 200},
        "out": str(gen),
    }
    metrics = run_experiment(build_config(raw))
    got = collect_runs([gen, single])
    scores = data.scores_frame(got.runs)
    g = scores[scores["task"] == "persona"]
    assert sorted(set(g["metric"])) == sorted(metrics["metrics"])
    pred = pd.read_parquet(gen / "predictions.parquet")
    for r in g.itertuples():
        column = {"weak floor": "weak", "strong ceiling": "ceiling"}.get(r.predictor, r.predictor)
        assert r.value == pytest.approx(pred[f"{column}:{r.metric}"].mean())
    doc = build_document(got.runs, [])
    titles = [b.alt for b in doc.images()]
    assert "scores on persona" in titles
    assert {f"PGR on {m}" for m in metrics["metrics"]} <= set(titles)
    misfit = data.misfit_frame(got.runs)
    assert set(misfit["task"]) == {"sentiment"}
    ex = data.generation_examples(got.runs[0], "unaltered", n=2)
    assert ex["metric"] == metrics["metrics"][0] and ex["n_test"] == 4
    first = metrics["metrics"][0]
    better = (pred[f"unaltered:{first}"] > pred[f"weak:{first}"]).sum()
    assert ex["corrected"] == better
