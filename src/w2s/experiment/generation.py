"""The generation W2S protocol (Somerstep et al. 2025).

1. weak supervisor: the weak LM prompted with the task's hidden instruction (e.g. a
   persona), or LoRA-tuned on gold answers of `weak_train` (for a persona task: each
   reference fact said in the persona's voice); its answers on
   `strong_train` are the weak supervision, its answers on `test` the weak floor;
2. strong ceiling: the strong LM tuned on gold answers of `strong_train`, or told the
   instruction;
3. each W2S method sees only the prompts, the weak answers and the strong LM;
4. every predictor's test answers are graded (numeric match, contains-reference, persona
   markers, LLM judge): PGR per metric with paired bootstrap CIs, and each method's
   paired difference to the task's baseline (naive SFT).
Generations and adapters are also cached by content, so a repeated run is cheap.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2s.analysis.metrics import score_agreement
from w2s.analysis.pgr import bootstrap_difference, bootstrap_pgr_scores
from w2s.data.generation import (
    check_prompts,
    get_persona,
    gold_completions,
    has_references,
    with_persona_solutions,
)
from w2s.data.splits import split_task
from w2s.errors import DataError, W2SError
from w2s.experiment.config import (
    BackendConfig,
    ExperimentConfig,
    GenerationConfig,
    ModelConfig,
)
from w2s.experiment.outputs import (
    baseline_cell,
    baseline_lines,
    gap_note,
    gap_significant,
    markdown_table,
    missing,
    pgr_cells,
    predictor_rows,
    pyplot,
    save_figure,
    timing_line,
)
from w2s.experiment.protocol import PROTOCOLS, Protocol, add_pgr, gap_summary, split_key
from w2s.graders import GRADERS, Grader, LLMJudge, get_grader
from w2s.graders.deterministic import normalize
from w2s.methods import GenerationContext, GenerationMethod, GenerationResult, get_method
from w2s.models.lm import LanguageModel, auto_backend, make_lm
from w2s.models.lm.openai_http import OpenAILanguageModel, redact_url
from w2s.progress import note, warn


def make_model(model: ModelConfig, backend: BackendConfig, cfg: ExperimentConfig) -> LanguageModel:
    """The language model of `model` on `backend`."""
    g = cfg.generation
    if backend.backend == "openai":
        if not backend.base_url:
            raise W2SError("the openai backend needs base_url (e.g. http://127.0.0.1:8000/v1)")
        return make_lm(
            backend.served_model or model.model,
            "openai",
            base_url=backend.base_url,
            api_key_env=backend.api_key_env,
            timeout=backend.timeout,
            max_retries=backend.max_retries,
            concurrency=backend.concurrency,
            chat=backend.chat,
            revision=backend.revision,
        )
    kw = {}
    if backend.backend == "llamacpp":
        kw = {"threads": backend.threads, "weights": backend.weights}
    return make_lm(
        model.model,
        backend.backend,
        dtype=model.dtype,
        batch_size=g.batch_size,
        max_length=g.max_length,
        **kw,
    )


class GenerationProtocol(Protocol):
    kind = "generation"

    def prepare(self) -> dict[str, int]:
        g, spec, task = self.cfg.generation, self.spec, self.task
        check_prompts(task)
        refs = has_references(task.df)
        self.persona = get_persona(g.persona)
        auto_weak = "sft" if refs else "prompted"
        auto_ceiling = "gold_sft" if refs else "prompted"
        self.weak_mode = _pick(g.weak_mode, spec.weak_mode, auto_weak)
        self.ceiling_mode = _pick(g.ceiling, spec.ceiling, auto_ceiling)
        self.instruction = self.persona.instruction if spec.persona else spec.instruction
        gold_stage = self.weak_mode == "sft" or self.ceiling_mode == "gold_sft"
        if spec.persona and gold_stage and "solution" not in task.df:
            # gold persona answers: the reference fact in the persona's voice
            task = self.task = with_persona_solutions(task, self.persona)
        needy = [n for n, m in self.methods.items() if getattr(m, "uses_weak_models", False)]
        g = self._resolve_backends()
        if needy and (self.weak_mode != "sft" or g.weak_backend.backend != "transformers"):
            raise W2SError(
                f"{', '.join(needy)} need the weak model before and after alignment: use "
                "generation.weak_mode=sft (a task with gold answers) on the transformers backend"
            )
        self.max_new = g.max_new_tokens or spec.max_new_tokens
        self.splits = split_task(task, self.cfg.data.sizes(), self.cfg.seed, spec.sizes)
        self.weak_lm = make_model(self.cfg.weak, g.weak_backend, self.cfg)
        self.strong_lm = make_model(self.cfg.strong, g.strong_backend, self.cfg)
        self.judge = self._judge()
        self.graders = self._graders(refs)
        self.data_key = split_key(self.splits, ("id", "text", "target", "solution"))
        self.references = {"weak": get_method("weak", "generation", mode=self.weak_mode)}
        self.references["ceiling"] = get_method(
            "gold_sft" if self.ceiling_mode == "gold_sft" else "strong_prompted", "generation"
        )
        return {s: len(v) for s, v in self.splits.items()}

    def _resolve_backends(self) -> GenerationConfig:
        """Replace each `auto` backend by the one it picks (`auto_backend`): transformers
        for every model when a method decodes through transformers internals."""
        g, cfg = self.cfg.generation, self.cfg
        pinned = any(getattr(m, "needs_transformers", False) for m in self.methods.values())

        def pick(backend: BackendConfig, ref: str) -> BackendConfig:
            if backend.backend != "auto":
                return backend
            return backend.model_copy(update={"backend": auto_backend(ref, pinned)})

        judge = g.judge.model or "strong"  # no judge: recorded as the strong model's
        judge_ref = {"strong": cfg.strong.model, "weak": cfg.weak.model}.get(judge, judge)
        g = g.model_copy(
            update={
                "weak_backend": pick(g.weak_backend, cfg.weak.model),
                "strong_backend": pick(g.strong_backend, cfg.strong.model),
                "judge": g.judge.model_copy(update={"backend": pick(g.judge.backend, judge_ref)}),
            }
        )
        self.cfg = cfg.model_copy(update={"generation": g})
        return g

    def _judge(self) -> LLMJudge | None:
        j = self.cfg.generation.judge
        if not j.model:
            return None
        if j.model in ("strong", "weak"):
            lm = self.strong_lm if j.model == "strong" else self.weak_lm
        else:
            lm = make_model(ModelConfig(model=j.model), j.backend, self.cfg)
        return LLMJudge(
            lm,
            n=j.n,
            temperature=j.temperature,
            max_new_tokens=j.max_new_tokens,
            seed=self.seed("judge"),
        )

    def _graders(self, refs: bool) -> list[Grader]:
        names = self.cfg.generation.graders
        if names is None:  # the spec's defaults, less those this task cannot serve
            names = list(self.spec.graders)
            if self.judge:
                names += self.spec.judge_graders
                # G-Eval beside the sampled score where the judge's log-probs are exact
                if not isinstance(self.judge.lm, OpenAILanguageModel):
                    names += [f"{n}_geval" for n in self.spec.judge_graders]
            names = [
                n
                for n in names
                if (refs or not GRADERS.get(n).needs_reference)
                and (n != "style_words" or self.persona.markers)
            ]
        graders = [get_grader(n, judge=self.judge, persona=self.persona) for n in names]
        if not graders:
            raise W2SError(
                f"no grader for task '{self.task.name}': set generation.graders (e.g. "
                "[judge_quality] with generation.judge.model)"
            )
        metrics = [gr.metric for gr in graders]
        dup = {m for m in metrics if metrics.count(m) > 1}
        if dup:
            raise W2SError(f"graders {', '.join(names)} report the same metric '{dup.pop()}'")
        needy = [gr.name for gr in graders if gr.needs_reference]
        if needy and not refs:
            raise DataError(
                f"grader(s) {', '.join(needy)} need reference answers (a `target` column) and "
                f"task '{self.task.name}' has none for some prompts"
            )
        return graders

    def resolved_config(self) -> dict[str, Any]:
        resolved = super().resolved_config()
        resolved["generation"].update(
            weak_mode=self.weak_mode,
            ceiling=self.ceiling_mode,
            max_new_tokens=self.max_new,
            graders=[gr.name for gr in self.graders],
        )
        g = resolved["generation"]
        for backend in (g["weak_backend"], g["strong_backend"], g["judge"]["backend"]):
            if backend["base_url"]:
                backend["base_url"] = redact_url(backend["base_url"])
        return resolved

    # -- training ------------------------------------------------------------------------

    def context(self, reference: bool, weak_answers: dict[str, list[str]]) -> GenerationContext:
        """What a method sees: W2S methods get no gold, no instruction and no weak model."""
        splits = ("weak_train", "strong_train", "test") if reference else ("strong_train", "test")
        prompts = {s: self.splits[s]["text"].astype(str).tolist() for s in splits}
        extra: dict[str, Any] = {}
        if reference:
            gold = {s: gold_completions(self.splits[s]) for s in ("weak_train", "strong_train")}
            extra = {"weak": self.weak_lm, "gold": gold, "instruction": self.instruction}
        return GenerationContext(
            prompts=prompts,
            weak_answers=weak_answers,
            strong=self.strong_lm,
            max_new_tokens=self.max_new,
            k=self.cfg.generation.k,
            lora={**self.cfg.generation.lora.model_dump(), "seed": self.seed("generation")},
            seed=self.seed("generation"),
            **extra,
        )

    def run_stage(
        self,
        name: str,
        method: GenerationMethod,
        ctx: GenerationContext,
        key: tuple,
        reference_stage: bool = False,
    ) -> GenerationResult:
        """A saved stage of one predictor: the weak supervisor or the ceiling
        (`reference_stage`), or a configured method."""

        def fn() -> tuple[dict[str, np.ndarray], dict]:
            note(f"generation stage [bold]{name}[/bold]")
            res = method.run(ctx)
            arrays = {f"answers_{s}": np.array(a, dtype=str) for s, a in res.answers.items()}
            if res.train_targets is not None:
                arrays["train_targets"] = np.array(res.train_targets, dtype=str)
            return arrays, res.diagnostics

        if reference_stage:
            saved = self.stage(name, (method.fingerprint_parts(), key), lambda: _pack(*fn()))
            arrays, diag = _unpack(saved)
        else:
            arrays, diag = self.method_stage(name, key, fn)
        answers = {
            k[8:]: [str(x) for x in v.tolist()] for k, v in arrays.items() if "answers_" in k
        }
        targets = arrays.get("train_targets")
        return GenerationResult(answers, None if targets is None else list(map(str, targets)), diag)

    def execute(self) -> None:
        g = self.cfg.generation
        common = (self.data_key, self.max_new, g.k, g.lora.model_dump(), self.seed("generation"))
        weak_key = (self.weak_lm.key, self.instruction, common)
        refs = self.references
        self.weak_res = self.run_stage("weak", refs["weak"], self.context(True, {}), weak_key, True)
        weak_answers = self.weak_res.answers
        ref_ctx = self.context(True, weak_answers)
        ceiling_key = (self.strong_lm.key, self.instruction, common)
        self.ceil_res = self.run_stage("ceiling", refs["ceiling"], ref_ctx, ceiling_key, True)
        w2s_ctx = self.context(False, weak_answers)
        method_key = (weak_key, self.strong_lm.key, common)
        self.results = {}
        for name, m in self.methods.items():
            ctx = ref_ctx if m.reference else w2s_ctx
            if getattr(m, "uses_weak_models", False):
                ctx = self.with_weak_models(ctx)
            self.results[name] = self.run_stage(name, m, ctx, method_key)

    def with_weak_models(self, ctx: GenerationContext) -> GenerationContext:
        """`ctx` plus the weak model before and after alignment (ConG). The aligned one is
        the weak supervisor's adapter, LoRA-tuned on gold of weak_train with the same
        request, so it is loaded from the adapter cache; the method never sees gold."""
        if self.weak_mode != "sft":
            return ctx  # a prompted supervisor has no aligned weights; the method says so
        if getattr(self, "_weak_aligned", None) is None:
            pairs = zip(
                self.splits["weak_train"]["text"].astype(str).tolist(),
                gold_completions(self.splits["weak_train"]),
                strict=True,
            )
            lora = {**self.cfg.generation.lora.model_dump(), "seed": self.seed("generation")}
            self._weak_aligned = self.weak_lm.sft(list(pairs), **lora)
        return replace(ctx, weak_base=self.weak_lm, weak_aligned=self._weak_aligned)

    # -- scoring -------------------------------------------------------------------------

    def score(self) -> dict[str, Any]:
        test = self.splits["test"]
        prompts, refs = test["text"].astype(str).tolist(), test["target"].tolist()
        self.answers = {
            "weak": self.weak_res.answers["test"],
            "ceiling": self.ceil_res.answers["test"],
            **{n: r.answers["test"] for n, r in self.results.items()},
        }
        with self.timed("grading"):
            self.scores = {
                who: {gr.metric: gr.score(prompts, ans, refs) for gr in self.graders}
                for who, ans in self.answers.items()
            }
        names = [gr.metric for gr in self.graders]
        boot = self.bootstrap_args()
        base = self.baseline()
        out: dict[str, Any] = {
            "metrics": names,
            "weak_floor": _summary(self.answers["weak"], self.scores["weak"]),
            "strong_ceiling": _summary(self.answers["ceiling"], self.scores["ceiling"]),
            "methods": {},
            "bootstrap": {k: boot[k] for k in ("n_resamples", "ci", "seed")},
            "gap": {},
            "warnings": uninformative_metrics(self.scores, names),
            "judge_checks": judge_checks(self.graders, self.scores),
            "baseline": base,
            "weak_mode": self.weak_mode,
            "ceiling_mode": self.ceiling_mode,
            "backends": {
                "weak": self.cfg.generation.weak_backend.backend,
                "strong": self.cfg.generation.strong_backend.backend,
            },
            "graders": [gr.name for gr in self.graders],
            "weak_diagnostics": self.weak_res.diagnostics,
            "ceiling_diagnostics": self.ceil_res.diagnostics,
            "supervision": supervision_quality(
                self.graders,
                self.splits["strong_train"],
                self.weak_res.answers["strong_train"],
                self.results,
            ),
        }
        weak_norm = [normalize(a) for a in self.answers["weak"]]
        floor, ceiling = self.scores["weak"], self.scores["ceiling"]
        for name, result in self.results.items():
            s = self.scores[name]
            m = _summary(self.answers[name], s)
            for metric in names:
                b = bootstrap_pgr_scores(floor[metric], ceiling[metric], s[metric], **boot)
                add_pgr(m, metric, b)
                out["gap"][metric] = gap_summary(
                    out["weak_floor"][metric],
                    out["strong_ceiling"][metric],
                    b["gap_positive_rate"],
                    boot["ci"],
                )
            if base and name != base:
                for metric in names:
                    d = bootstrap_difference(s[metric], self.scores[base][metric], **boot)
                    m[f"vs_{base}_{metric}"] = d["diff"]
                    m[f"vs_{base}_{metric}_ci"] = d["ci"]
            same = [normalize(a) == w for a, w in zip(self.answers[name], weak_norm, strict=True)]
            m["same_as_weak"] = float(np.mean(same))
            m.update({f"diag_{k}": v for k, v in result.diagnostics.items()})
            out["methods"][name] = m
        if not out["gap"]:
            del out["gap"]
        for warning in out["warnings"]:
            warn(warning)
        return out

    def close(self) -> None:
        judge = [self.judge.lm] if getattr(self, "judge", None) else []
        models = [getattr(self, n, None) for n in ("weak_lm", "strong_lm")] + judge
        for lm in {id(x): x for x in models if x is not None}.values():
            lm.close()

    # -- outputs -------------------------------------------------------------------------

    def table(self, metrics: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
        """Each metric, then PGR [CI] per metric with a significant gap (the others are
        named in a note), then words and same-as-weak, then the first metric's difference
        to the baseline: narrow enough for a terminal with six metrics."""
        names = metrics["metrics"]
        with_gap = [m for m in names if gap_significant(metrics, m)]
        header = ["", *names, *(f"PGR ({m}) [95% CI]" for m in with_gap)]
        header += ["words", "same as weak"]
        base = metrics.get("baseline")
        # the first metric's difference to the baseline (every metric's: report.md)
        compared = names[:1] if base else []
        header += [f"{m} - {base} [95% CI]" for m in compared]
        rows = []
        for r in predictor_rows(metrics):
            line = [r["name"], *(_val(r.get(m)) for m in names)]
            line += [" ".join(pgr_cells(metrics, r, m)).strip() for m in with_gap]
            line += [
                f"{r.get('mean_words', 0):.0f}",
                _val(r["same_as_weak"]) if "same_as_weak" in r else "",
            ]
            line += [baseline_cell(r, base, m) for m in compared]
            rows.append(line)
        return header, rows, gap_note(metrics, names, columns_left_out=True)

    def report_lines(self, metrics: dict[str, Any]) -> list[str]:
        header, body, notes = self.table(metrics)
        n = metrics["n"]
        lines = [
            f"# W2S generation run: {metrics['task']}",
            "",
            f"Weak **{metrics['weak']}** supervises strong **{metrics['strong']}** "
            f"(seed {metrics['seed']}). Weak supervisor: {metrics['weak_mode']}; "
            f"ceiling: {metrics['ceiling_mode']}; graders: {', '.join(metrics['graders'])}.",
            f"Splits: weak_train {n['weak_train']}, strong_train {n['strong_train']}, "
            f"test {n['test']}. W2S methods see only the prompts, the weak answers and the "
            "strong model.",
            "PGR = (method - weak) / (ceiling - weak) per metric; 95% CIs from a paired "
            f"bootstrap over test examples ({metrics['bootstrap']['n_resamples']} resamples).",
            "",
            *markdown_table(header, body),
            "",
            *(f"{line}\n" for line in notes),
            *(f"**Warning:** {w}\n" for w in metrics.get("warnings", [])),
            "![results](plots/results.png)",
            "",
            *baseline_lines(metrics, metrics["metrics"]),
            *supervision_lines(metrics.get("supervision", {})),
            *judge_check_lines(metrics.get("judge_checks", {})),
        ]
        test = self.splits["test"]
        examples = min(self.cfg.generation.examples, len(test))
        if examples:
            lines += ["## Example answers", ""]
        for i in range(examples):
            row = test.iloc[i]
            lines += [f"### Example {i + 1}", "", "**Prompt:**", "", _quote(str(row["text"])), ""]
            lines += [f"**Reference:** {_ref(row['target'])[:300]}", ""]
            for who, ans in self.answers.items():
                lines += [f"**{who}:**", "", _quote(ans[i]), ""]
        return [*lines, timing_line(metrics)]

    def predictions(self) -> pd.DataFrame:
        """id, prompt, reference, each predictor's answer and its score per metric
        (`<predictor>:<metric>`)."""
        test = self.splits["test"]
        df = pd.DataFrame(
            {
                "id": test["id"].values,
                "prompt": test["text"].values,
                "reference": [_ref(t) for t in test["target"]],
            }
        )
        for who, ans in self.answers.items():
            df[who] = ans
        for who, per in self.scores.items():
            for metric, s in per.items():
                df[f"{who}:{metric}"] = np.asarray(s, dtype=float)
        return df

    def plot(self, metrics: dict[str, Any], path: Path) -> None:
        """One panel per metric: bars for floor, ceiling and methods, PGR on each."""
        plt = pyplot()
        names = metrics["metrics"]
        rs = predictor_rows(metrics)
        labels = [r["name"] for r in rs]
        fig, axes = plt.subplots(1, len(names), figsize=(5.5 * len(names), 4.2), squeeze=False)
        colors = ["#999999", "#333333"] + ["#4c72b0"] * (len(rs) - 2)
        for ax, metric in zip(axes[0], names, strict=True):
            vals = [np.nan if missing(r.get(metric)) else r[metric] for r in rs]
            ax.bar(labels, np.nan_to_num(vals), color=colors)
            for i, r in enumerate(rs):
                p = r.get(f"pgr_{metric}")
                if not missing(p):
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
        save_figure(fig, path)


def _pick(configured: str, declared: str, auto: str) -> str:
    """The config's choice, else the spec's, else the data-driven default."""
    if configured != "auto":
        return configured
    return declared if declared != "auto" else auto


def _pack(arrays: dict[str, np.ndarray], diagnostics: dict) -> dict[str, np.ndarray]:
    from w2s.experiment.stages import pack_json

    return {**arrays, "_diagnostics": pack_json(diagnostics)}


def _unpack(saved: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], dict]:
    from w2s.experiment.stages import unpack_json

    arrays = {k: v for k, v in saved.items() if k != "_diagnostics"}
    return arrays, unpack_json(saved.get("_diagnostics"), {})


def supervision_quality(
    graders: list[Grader],
    strong_train: Any,
    weak_answers: list[str],
    results: dict[str, GenerationResult],
) -> dict[str, dict[str, float]]:
    """How good each method's training targets on `strong_train` were: the weak answers
    (what naive SFT learns from) and e.g. the refined answers. A post-hoc diagnostic: gold
    references are used here only, after training; judge graders are skipped for cost."""
    cheap = [gr for gr in graders if not gr.needs_judge]
    if not cheap or not has_references(strong_train):
        return {}
    prompts = strong_train["text"].astype(str).tolist()
    refs = strong_train["target"].tolist()
    targets = {"weak": weak_answers}
    targets.update({n: r.train_targets for n, r in results.items() if r.train_targets})
    return {
        who: {gr.metric: float(np.mean(gr.score(prompts, ans, refs))) for gr in cheap}
        for who, ans in targets.items()
        if len(ans) == len(prompts)
    }


def uninformative_metrics(
    scores: dict[str, dict[str, np.ndarray]], metric_names: list[str]
) -> list[str]:
    """A warning per metric that gave every answer of every predictor the same score (a
    judge that always replies 'Score: 1' cannot separate anything; its PGRs mean nothing)."""
    out = []
    for metric in metric_names:
        values = np.concatenate([np.asarray(per[metric], dtype=float) for per in scores.values()])
        values = values[np.isfinite(values)]
        if values.size > 1 and np.all(values == values[0]):
            out.append(
                f"metric '{metric}' scored every answer {values[0]:g}: the grader separated "
                "nothing, so its PGRs are meaningless"
            )
    return out


def judge_checks(
    graders: list[Grader], scores: dict[str, dict[str, np.ndarray]]
) -> dict[str, dict[str, Any]]:
    """Each judge metric against the deterministic metric it claims to measure (style vs
    style_words, content vs correct), over every predictor's test answers pooled."""
    metrics = {gr.metric for gr in graders}
    out = {}
    for gr in graders:
        ref = gr.checked_against
        if ref in metrics:
            pooled = [np.concatenate([s[m] for s in scores.values()]) for m in (gr.metric, ref)]
            out[gr.metric] = {"against": ref, **score_agreement(*pooled)}
    return out


def _summary(answers: list[str], scores: dict[str, np.ndarray]) -> dict[str, float]:
    out = {
        m: float(np.nanmean(s)) if np.isfinite(s).any() else float("nan") for m, s in scores.items()
    }
    out["mean_words"] = float(np.mean([len(a.split()) for a in answers])) if answers else 0.0
    return out


def _val(x: Any) -> str:
    if missing(x):
        return "-"
    return f"{x:.2f}" if abs(x) >= 1.5 else f"{x:.3f}"


def _ref(value: Any) -> str:
    import json

    if isinstance(value, str):
        return value
    try:
        return json.dumps([str(v) for v in value], ensure_ascii=False)
    except TypeError:
        return str(value)


def _quote(text: str, limit: int = 500) -> str:
    text = text.strip() or "(empty)"
    text = text if len(text) <= limit else text[:limit] + " ..."
    return "\n".join("> " + ln for ln in text.splitlines())


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


def judge_check_lines(checks: dict[str, dict[str, Any]]) -> list[str]:
    """`judge_checks` as a table: does the judge track the deterministic grader?"""
    if not checks:
        return []
    body = [
        [metric, c["against"], _val(c["spearman"]), _val(c["auroc"]), str(c["n"])]
        for metric, c in checks.items()
    ]
    return [
        "## Judge checks",
        "",
        "Each judge score against the deterministic grader of the same property, over all "
        "predictors' test answers: Spearman's rho, and the AUROC of the judge score for "
        "answers the grader scores above 0.",
        "",
        *markdown_table(["judge metric", "checked against", "Spearman", "AUROC", "n"], body),
        "",
    ]


PROTOCOLS.add("generation", GenerationProtocol)
