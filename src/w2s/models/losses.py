"""Losses for training a student on (soft) weak labels, in one place.

Each loss maps (logits (n, K), target probabilities (n, K), training progress in [0, 1])
to per-example losses (n,). Registered by name for configs: `xent`, `xent_hard`,
`logconf`, `product`, `entropy`, and from the noisy-label literature `gce`, `sce` and
EleutherAI's confidence `window`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import Field

from w2s.registry import Params, Registry, validate_params

if TYPE_CHECKING:
    import torch


class Loss(Protocol):
    def __call__(
        self, logits: torch.Tensor, target: torch.Tensor, progress: float
    ) -> torch.Tensor: ...


def soft_xent(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy to a probability target."""
    import torch.nn.functional as F

    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)


def harden(probs: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """One-hot labels from `probs` whose class balance matches `prior` (K,).

    Binary: threshold p(class 1) at the batch quantile that makes the fraction of 1s
    equal `prior[1]` (Burns et al.). K > 2: argmax after rescaling each class by
    prior / mean prediction, the K-class analogue of that threshold.
    """
    import torch
    import torch.nn.functional as F

    n, k = probs.shape
    if k == 2:
        p1 = probs[:, 1]
        thresh = torch.quantile(p1, float(1 - prior[1].clamp(0, 1)))
        hard1 = (p1 > thresh).float()
        return torch.stack([1 - hard1, hard1], dim=-1)
    scaled = probs * (prior / probs.mean(0).clamp(min=1e-8))
    return F.one_hot(scaled.argmax(-1), k).float()


def xent(logits, target, progress):
    return soft_xent(logits, target)


def xent_hard(logits, target, progress):
    import torch.nn.functional as F

    return F.cross_entropy(logits, target.argmax(-1), reduction="none")


class AuxParams(Params):
    """The auxiliary-confidence losses' schedule: weight `a` warms up linearly from 0 to
    `aux_max` over the first `warmup` fraction of training."""

    aux_max: float = Field(0.5, ge=0, le=1)
    warmup: float = Field(0.2, ge=0, le=1)


class ProductParams(Params):
    """Exponents of the product loss's target weak^alpha * student^beta."""

    alpha: float = Field(1.0, ge=0)
    beta: float = Field(1.0, ge=0)


def make_logconf(params: AuxParams, soft: bool = False) -> Loss:
    """Auxiliary confidence loss: target (1-a)·weak + a·harden(student), a warmed up
    linearly from 0 to `aux_max` over the first `warmup` fraction of training.
    `soft=True` uses the student's own probabilities instead of hardened ones."""
    aux_max, warmup = params.aux_max, params.warmup

    def logconf(logits, target, progress):
        probs = logits.detach().softmax(-1)
        a = aux_max * min(1.0, progress / warmup) if warmup > 0 else aux_max
        own = probs if soft else harden(probs, target.mean(0))
        return soft_xent(logits, (1 - a) * target + a * own)

    return logconf


def make_product(params: ProductParams) -> Loss:
    """Product loss: target proportional to weak^alpha · student^beta (student detached)."""
    import torch
    import torch.nn.functional as F

    alpha, beta = params.alpha, params.beta

    def product(logits, target, progress):
        logp = F.log_softmax(logits.detach(), -1)
        mixed = alpha * torch.log(target.clamp(min=1e-8)) + beta * logp
        return soft_xent(logits, mixed.softmax(-1))

    return product


class GCEParams(Params):
    """Generalized cross-entropy's exponent: q -> 0 is cross-entropy, q = 1 is MAE."""

    q: float = Field(0.7, gt=0, le=1)


class SCEParams(Params):
    """Symmetric cross-entropy: alpha·CE + beta·reverse CE, log 0 clipped to `log_floor`."""

    alpha: float = Field(0.1, ge=0)
    beta: float = Field(1.0, ge=0)
    log_floor: float = Field(-4.0, lt=0)


class WindowParams(Params):
    """Confidence window radius: train where the student's top probability is below
    1/K + radius (0.5 + radius for two classes)."""

    radius: float = Field(0.15, gt=0, le=1)


def make_gce(params: GCEParams) -> Loss:
    """Generalized cross-entropy (Zhang & Sabuncu 2018), sum_k w_k (1 - p_k^q) / q for a
    soft target w; computed as -expm1(q log p) / q, so small q matches cross-entropy."""
    import torch
    import torch.nn.functional as F

    q = params.q

    def gce(logits, target, progress):
        return -(target * torch.expm1(q * F.log_softmax(logits, -1))).sum(-1) / q

    return gce


def make_sce(params: SCEParams) -> Loss:
    """Symmetric cross-entropy (Wang et al. 2019): alpha·CE(w, p) + beta·CE(p, w), the
    reverse term with log w clipped below at `log_floor` (their A = -4)."""
    import torch

    alpha, beta, floor = params.alpha, params.beta, params.log_floor

    def sce(logits, target, progress):
        log_w = torch.log(target.clamp(min=1e-30)).clamp(min=floor)
        reverse = -(logits.softmax(-1) * log_w).sum(-1)
        return alpha * soft_xent(logits, target) + beta * reverse

    return sce


def make_window(params: WindowParams) -> Loss:
    """EleutherAI's confidence window: cross-entropy to the weak labels only on examples
    where the student is uncertain (top probability < 1/K + radius), zero elsewhere."""
    radius = params.radius

    def window(logits, target, progress):
        top = logits.detach().softmax(-1).max(-1).values
        inside = top < 1.0 / logits.shape[-1] + radius
        return soft_xent(logits, target) * inside

    return window


@dataclass(frozen=True)
class LossSpec:
    """A registered loss: its parameters (declared once, here) and how to build it.
    Bump `version` when the loss's computation changes: saved stages depend on it."""

    name: str
    description: str
    build: Callable[[Any], Loss]
    Params: type[Params] = Params
    version: int = 1


LOSSES: Registry[LossSpec] = Registry("loss")
for _spec in (
    LossSpec("xent", "cross-entropy to soft labels", lambda p: xent),
    LossSpec("xent_hard", "cross-entropy to argmax labels", lambda p: xent_hard),
    LossSpec("logconf", "auxiliary confidence loss, hardened student", make_logconf, AuxParams),
    LossSpec(
        "entropy",
        "auxiliary confidence loss, soft student",
        lambda p: make_logconf(p, soft=True),
        AuxParams,
    ),
    LossSpec("product", "target ∝ weak^alpha · student^beta", make_product, ProductParams),
    LossSpec("gce", "generalized cross-entropy (1 - p^q) / q", make_gce, GCEParams),
    LossSpec("sce", "symmetric cross-entropy alpha·CE + beta·reverse CE", make_sce, SCEParams),
    LossSpec("window", "cross-entropy where the student is uncertain", make_window, WindowParams),
):
    LOSSES.add(_spec.name, _spec)


def get_loss(name: str, **params: Any) -> Loss:
    """A loss by name with its parameters (validated against its declared `Params`)."""
    spec = LOSSES.get(name)
    return spec.build(validate_params(spec.Params, params, f"loss '{name}'"))
