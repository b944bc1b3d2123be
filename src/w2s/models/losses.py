"""Losses for training a student on (soft) weak labels, in one place.

Each loss maps (logits (n, K), target probabilities (n, K), training progress in [0, 1])
to per-example losses (n,). Registered by name for configs: `xent`, `xent_hard`,
`logconf`, `product`, `entropy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
import torch.nn.functional as F

from w2s.errors import UnknownNameError


class Loss(Protocol):
    def __call__(
        self, logits: torch.Tensor, target: torch.Tensor, progress: float
    ) -> torch.Tensor: ...


def soft_xent(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-example cross-entropy to a probability target."""
    return -(target * F.log_softmax(logits, dim=-1)).sum(-1)


def harden(probs: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """One-hot labels from `probs` whose class balance matches `prior` (K,).

    Binary: threshold p(class 1) at the batch quantile that makes the fraction of 1s
    equal `prior[1]` (Burns et al.). K > 2: argmax after rescaling each class by
    prior / mean prediction, the K-class analogue of that threshold.
    """
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
    return F.cross_entropy(logits, target.argmax(-1), reduction="none")


def make_logconf(aux_max: float = 0.5, warmup: float = 0.2, soft: bool = False) -> Loss:
    """Auxiliary confidence loss: target (1-a)·weak + a·harden(student), a warmed up
    linearly from 0 to `aux_max` over the first `warmup` fraction of training.
    `soft=True` uses the student's own probabilities instead of hardened ones."""

    def logconf(logits, target, progress):
        probs = logits.detach().softmax(-1)
        a = aux_max * min(1.0, progress / warmup) if warmup > 0 else aux_max
        own = probs if soft else harden(probs, target.mean(0))
        return soft_xent(logits, (1 - a) * target + a * own)

    return logconf


def make_product(alpha: float = 1.0, beta: float = 1.0) -> Loss:
    """Product loss: target proportional to weak^alpha · student^beta (student detached)."""

    def product(logits, target, progress):
        logp = F.log_softmax(logits.detach(), -1)
        mixed = alpha * torch.log(target.clamp(min=1e-8)) + beta * logp
        return soft_xent(logits, mixed.softmax(-1))

    return product


LOSSES: dict[str, Callable[..., Loss]] = {
    "xent": lambda: xent,
    "xent_hard": lambda: xent_hard,
    "logconf": make_logconf,
    "entropy": lambda **kw: make_logconf(soft=True, **kw),
    "product": make_product,
}


def get_loss(name: str, **params) -> Loss:
    """A loss by name with its parameters."""
    if name not in LOSSES:
        raise UnknownNameError(f"unknown loss '{name}' (losses: {', '.join(LOSSES)})")
    return LOSSES[name](**params)
