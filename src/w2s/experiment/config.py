"""The experiment configuration (pydantic; unknown keys are errors) and its sources:
YAML files, command-line flags and `--set key=value` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from w2s.errors import W2SError
from w2s.models.finetune_params import FinetuneParams
from w2s.models.lm.lora import LoraParams
from w2s.models.precision import Dtype

SEED_MAX = 2**31 - 1
# settings that only one kind of task reads: setting them for the other kind is an error
MODEL_KEYS_CLASSIFICATION = ("layer", "pooling", "max_length", "batch_size", "mode")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(Strict):
    """A model, how features are read from it, and how it is trained as a classifier:
    `probe` (a head on frozen features), `lora` or `full` (fine-tuned, `finetune`)."""

    model: str
    mode: Literal["probe", "lora", "full"] = "probe"
    layer: int | None = None
    pooling: Literal["mean", "last"] = "mean"
    max_length: int = Field(256, gt=0)
    batch_size: int = Field(32, gt=0)
    # auto: bfloat16 on CUDA, float32 on CPU (models/precision.py); saved resolved
    dtype: Dtype = Field("auto", validate_default=True)


class DataConfig(Strict):
    """Split sizes; a size left unset takes its default cap, scaled down to fit the task.

    `ood_domains` (classification tasks with domains): the domains held out of every
    training and in-distribution split, scored as `ood_test` (`auto`: the smallest
    domain; see `w2s.data.domains`); `n_ood_test` its size (unset: all of it, class-balanced,
    at most the test cap)."""

    n_weak_train: int | None = None
    n_strong_train: int | None = None
    n_val: int | None = None
    n_test: int | None = None
    ood_domains: list[str] | None = None
    n_ood_test: int | None = None

    @field_validator("ood_domains", mode="before")
    @classmethod
    def _domains_shorthand(cls, v: Any) -> Any:
        from w2s.data.domains import parse_domains

        return parse_domains(v) if isinstance(v, (str, list, tuple)) else v

    @model_validator(mode="after")
    def _ood_size_needs_domains(self) -> DataConfig:
        if self.n_ood_test is not None and self.ood_domains is None:
            raise ValueError("data.n_ood_test needs data.ood_domains (the held-out domains)")
        return self

    def sizes(self) -> dict[str, int | None]:
        return {
            "weak_train": self.n_weak_train,
            "strong_train": self.n_strong_train,
            "val": self.n_val,
            "test": self.n_test,
        }


class ProbeConfig(Strict):
    hidden: int = Field(0, ge=0)
    epochs: int = Field(30, gt=0)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    batch_size: int = Field(64, gt=0)


class MethodConfig(Strict):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class BootstrapConfig(Strict):
    n_resamples: int = Field(1000, ge=100, le=100_000)
    ci: float = Field(0.95, gt=0, lt=1)


class BackendConfig(Strict):
    """Where a language model runs: in-process (transformers, or llama.cpp on the zoo's
    GGUF files) or behind an OpenAI-compatible server (`base_url`; API key read from
    `api_key_env`). `auto` (the default) is llama.cpp for a GGUF model when
    llama-cpp-python is installed, else transformers (`w2s.models.lm.auto_backend`); the
    run's config.yaml records which."""

    backend: Literal["auto", "transformers", "llamacpp", "openai"] = "auto"
    base_url: str | None = None
    served_model: str | None = None  # the server's model name; default: the model string
    api_key_env: str = "OPENAI_API_KEY"
    timeout: float = Field(120.0, gt=0)
    max_retries: int = Field(3, ge=0)
    concurrency: int = Field(4, gt=0)
    chat: bool = True
    revision: str = ""
    threads: int | None = Field(None, gt=0)  # llamacpp: CPU threads (default: all, up to 8)
    # llamacpp: the GGUF re-typed once to F16 (final GSM answers agree with transformers
    # float32 on 96/100 problems, the shipped Q4_K_M arithmetic on 76/100; ~10% slower
    # batched, 3.4x the memory) or as shipped
    weights: Literal["f16", "shipped"] = "f16"


class JudgeConfig(Strict):
    """An LLM judge: `model` is "strong", "weak", a model reference, or null (no judge)."""

    model: str | None = None
    backend: BackendConfig = Field(default_factory=BackendConfig)
    n: int = Field(3, gt=0)
    temperature: float = Field(0.7, ge=0)
    max_new_tokens: int = Field(24, gt=0)


class GenerationConfig(Strict):
    """Settings of generation runs (an error to set for classification tasks)."""

    weak_backend: BackendConfig = Field(default_factory=BackendConfig)
    strong_backend: BackendConfig = Field(default_factory=BackendConfig)
    weak_mode: Literal["auto", "prompted", "sft"] = "auto"
    ceiling: Literal["auto", "gold_sft", "prompted"] = "auto"
    k: int = Field(4, gt=0)
    max_new_tokens: int | None = Field(None, gt=0)
    batch_size: int = Field(16, gt=0)
    max_length: int = Field(2048, gt=16)
    graders: list[str] | None = None
    persona: str = "pirate"
    judge: JudgeConfig = Field(default_factory=JudgeConfig)
    lora: LoraParams = Field(default_factory=LoraParams)
    examples: int = Field(3, ge=0)

    @field_validator("graders", mode="before")
    @classmethod
    def _graders_shorthand(cls, v: Any) -> Any:
        return [g.strip() for g in v.split(",") if g.strip()] if isinstance(v, str) else v


class ExperimentConfig(Strict):
    """One weak-to-strong experiment: a task, a weak (or several) and a strong model,
    methods."""

    task: str
    # one weak model, or several (`weak: [a, b]`, `--weak a,b`: classification only); a
    # list of one is stored as the single model, so its config.yaml is the one-model form
    weak: ModelConfig | list[ModelConfig]
    strong: ModelConfig
    methods: list[MethodConfig] | None = None  # None: the task spec's default methods
    seed: int = Field(0, ge=0, le=SEED_MAX)
    data: DataConfig = Field(default_factory=DataConfig)
    probe: ProbeConfig = Field(default_factory=ProbeConfig)
    finetune: FinetuneParams = Field(default_factory=FinetuneParams)  # modes lora, full
    bootstrap: BootstrapConfig = Field(default_factory=BootstrapConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    out: str | None = None
    log: list[str] = Field(default_factory=list)  # experiment trackers: wandb, mlflow

    @field_validator("log", mode="before")
    @classmethod
    def _log_shorthand(cls, v: Any) -> Any:
        """`wandb,mlflow` or a list; every name a known tracker (the package is checked
        when the run starts)."""
        from w2s.experiment.tracking import TRACKERS

        if v is None:
            return []
        names = [s.strip() for s in v.split(",") if s.strip()] if isinstance(v, str) else v
        if isinstance(names, list):
            for name in names:
                if name not in TRACKERS.names():
                    known = ", ".join(TRACKERS.names())
                    raise ValueError(f"unknown tracker '{name}' (trackers: {known})")
        return names

    @field_validator("strong", mode="before")
    @classmethod
    def _model_shorthand(cls, v: Any) -> Any:
        return {"model": v} if isinstance(v, str) else v

    @field_validator("weak", mode="before")
    @classmethod
    def _weak_shorthand(cls, v: Any) -> Any:
        """`a`, `a,b,c`, a list of names and/or model mappings; a list of one is that one
        model; the same model twice is an error (each weak model is named by its model)."""
        if isinstance(v, str):
            v = [s.strip() for s in v.split(",") if s.strip()] if "," in v else v
        if not isinstance(v, list):
            return {"model": v} if isinstance(v, str) else v
        if not v:
            raise ValueError("no weak model given")
        models = [{"model": m} if isinstance(m, str) else m for m in v]
        names = [m.get("model") if isinstance(m, dict) else None for m in models]
        twice = sorted({n for n in names if n is not None and names.count(n) > 1})
        if twice:
            raise ValueError(f"weak model '{twice[0]}' listed twice (each weak model once)")
        return models[0] if len(models) == 1 else models

    @property
    def weak_models(self) -> list[ModelConfig]:
        """Every weak model, the primary (first listed) first."""
        return list(self.weak) if isinstance(self.weak, list) else [self.weak]

    @property
    def weak_name(self) -> str:
        """The weak model's name; several weak models' names joined by '+'."""
        return "+".join(m.model for m in self.weak_models)

    @field_validator("methods", mode="before")
    @classmethod
    def _methods_shorthand(cls, v: Any) -> Any:
        if v is None:
            return None
        if isinstance(v, str):
            v = [m for m in v.split(",") if m.strip()]
        out = []
        for m in v:
            if isinstance(m, str):
                out.append({"name": m.strip()})
            elif isinstance(m, dict) and "params" not in m:
                out.append(
                    {"name": m.get("name"), "params": {k: x for k, x in m.items() if k != "name"}}
                )
            else:
                out.append(m)
        return out

    def kind_errors(self, kind: str) -> list[str]:
        """Keys set in this config that a task of `kind` would not read."""
        bad = []
        if kind == "generation":
            bad += [k for k in ("probe", "finetune") if k in self.model_fields_set]
            for role, m in [*(("weak", w) for w in self.weak_models), ("strong", self.strong)]:
                bad += [f"{role}.{k}" for k in MODEL_KEYS_CLASSIFICATION if k in m.model_fields_set]
            ood = ("ood_domains", "n_ood_test")  # no ood_test split for generation tasks
            bad += [f"data.{k}" for k in ood if getattr(self.data, k) is not None]
        elif "generation" in self.model_fields_set:
            bad.append("generation")
        return bad


def _set_dotted(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    if not all(parts):
        raise W2SError(f"--set {key}: empty key part")
    node = tree
    several = tree.get("weak")
    listed = isinstance(several, list) or (isinstance(several, str) and "," in several)
    if parts[0] == "weak" and len(parts) > 1 and listed:
        raise W2SError(
            f"--set {key}: 'weak' lists several models; set their keys in a config file "
            "(weak: [{model: a, layer: 3}, b])"
        )
    for p in parts[:-1]:
        if isinstance(node.get(p), str) and p in {"weak", "strong"}:
            node[p] = {"model": node[p]}
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise W2SError(f"--set {key}: '{p}' is not a section")
    node[parts[-1]] = value


def parse_overrides(items: list[str]) -> list[tuple[str, Any]]:
    """`key=value` strings -> (dotted key, YAML-parsed value)."""
    out = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise W2SError(f"--set expects key=value, got '{item}'")
        try:
            value = yaml.safe_load(raw) if raw else None
        except yaml.YAMLError as err:
            reason = str(err).splitlines()[0]
            raise W2SError(f"--set {key.strip()}: '{raw}' is not valid YAML ({reason})") from None
        out.append((key.strip(), value))
    return out


def _branch_tag(part: Any) -> bool:
    """A pydantic union branch in an error location (`ModelConfig`, `list[ModelConfig]`),
    not a config key."""
    return isinstance(part, str) and (part[:1].isupper() or "[" in part)


def build_config(raw: dict[str, Any], overrides: list[str] | None = None) -> ExperimentConfig:
    """Validate a raw config dict after applying `--set` overrides; errors are one line."""
    tree = dict(raw)
    for key, value in parse_overrides(overrides or []):
        _set_dotted(tree, key, value)
    try:
        return ExperimentConfig.model_validate(tree)
    except ValidationError as err:
        errors = err.errors()
        first = errors[0]
        if any(_branch_tag(x) for x in first["loc"]):  # a union (`weak`): the deepest error
            first = max(errors, key=lambda e: len(e["loc"]))
        loc = ".".join(str(x) for x in first["loc"] if not _branch_tag(x)) or "config"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise W2SError(f"invalid config: {loc}: {msg}") from None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML experiment file into a dict."""
    p = Path(path)
    if not p.exists():
        raise W2SError(f"config file not found: {path}")
    if not p.is_file():
        raise W2SError(f"config file {path} is a folder, not a YAML file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as err:
        raise W2SError(f"config file {path} is not UTF-8 text (byte {err.start})") from None
    except OSError as err:
        raise W2SError(f"cannot read config file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise W2SError(f"could not parse {path}: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise W2SError(f"{path} must hold a mapping of config keys")
    return data
