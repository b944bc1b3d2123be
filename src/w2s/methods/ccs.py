"""Contrast-consistent search (CCS; Burns, Ye, Klein & Steinhardt 2022), a label-free
reference: how much does the strong model know without any supervision at all?

Each strong_train text becomes a contrast pair, the text completed with each of the two
class names (`template`), embedded by the strong model. After normalising each half of
the pairs (mean and standard deviation over strong_train), a linear probe p is trained
without labels so that p(x+) ≈ 1 - p(x-) (consistency) while avoiding p(x+) = p(x-) = 0.5
(confidence: min(p+, p-)^2); the lowest-loss of `tries` random starts is kept.
P(class 1) = (p(x+) + 1 - p(x-)) / 2. CCS cannot tell a direction from its negation:
the sign is chosen to agree with the weak labels on strong_train (the only labels it
sees, and only for that bit); never with gold. Binary tasks only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, field_validator

from w2s.errors import W2SError
from w2s.methods.base import ClassificationMethod, MethodContext, MethodResult, register
from w2s.models.grad import no_grad
from w2s.models.heads import one_thread
from w2s.registry import Params

if TYPE_CHECKING:
    import torch


class CCSParams(Params):
    """Prompt template (with {text} and {answer}) and the unsupervised probe's training."""

    template: str = "{text}\nAnswer: {answer}"
    tries: int = Field(10, ge=1, le=100)
    epochs: int = Field(1000, ge=1, le=100_000)
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)

    @field_validator("template")
    @classmethod
    def _fields(cls, v: str) -> str:
        if "{text}" not in v or "{answer}" not in v:
            raise ValueError("must contain {text} and {answer}")
        try:
            v.format(text="", answer="")
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(f"is not a format string of {{text}} and {{answer}} ({err})") from None
        return v


def ccs_loss(p_pos: torch.Tensor, p_neg: torch.Tensor) -> torch.Tensor:
    """Consistency (p+ - (1 - p-))^2 plus confidence min(p+, p-)^2, batch means."""
    import torch

    consistency = (p_pos - (1 - p_neg)) ** 2
    confidence = torch.minimum(p_pos, p_neg) ** 2
    return consistency.mean() + confidence.mean()


class CCSProbe:
    """The unsupervised linear probe on normalised contrast-pair features."""

    def __init__(self, tries: int, epochs: int, lr: float, weight_decay: float, seed: int):
        self.tries, self.epochs, self.lr, self.wd, self.seed = tries, epochs, lr, weight_decay, seed

    def _norm(self, pos: np.ndarray, neg: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        return (
            torch.from_numpy(((pos - self.stats_[0]) / self.stats_[1]).astype(np.float32)),
            torch.from_numpy(((neg - self.stats_[2]) / self.stats_[3]).astype(np.float32)),
        )

    def fit(self, pos: np.ndarray, neg: np.ndarray) -> CCSProbe:
        import torch

        self.stats_ = (pos.mean(0), pos.std(0) + 1e-6, neg.mean(0), neg.std(0) + 1e-6)
        xp, xn = self._norm(pos, neg)
        torch.manual_seed(self.seed)
        self.loss_ = np.inf
        for _ in range(self.tries):
            net = torch.nn.Linear(xp.shape[1], 1)
            opt = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.wd)
            for _ in range(self.epochs):
                loss = ccs_loss(torch.sigmoid(net(xp)), torch.sigmoid(net(xn)))
                opt.zero_grad()
                loss.backward()
                opt.step()
            with torch.no_grad():
                final = float(ccs_loss(torch.sigmoid(net(xp)), torch.sigmoid(net(xn))))
            if final < self.loss_:
                self.loss_, self.net_ = final, net
        return self

    @no_grad
    def halves(self, pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The probe's p(x+) and p(x-) per pair."""
        import torch

        xp, xn = self._norm(pos, neg)
        p_pos, p_neg = torch.sigmoid(self.net_(xp)), torch.sigmoid(self.net_(xn))
        return p_pos.squeeze(1).double().numpy(), p_neg.squeeze(1).double().numpy()

    def predict(self, pos: np.ndarray, neg: np.ndarray) -> np.ndarray:
        """P(the positive completion is true) per pair: (p+ + 1 - p-) / 2."""
        p_pos, p_neg = self.halves(pos, neg)
        return 0.5 * (p_pos + 1 - p_neg)


@register
class CCS(ClassificationMethod):
    name = "ccs"
    description = "label-free contrast-consistent search on the strong model (Burns et al. 2022)"
    Params = CCSParams

    def pairs(self, ctx: MethodContext, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Strong features of each text completed with class 1 and with class 0."""
        texts = ctx.texts[split]
        fill = self.params.template.format
        neg = [fill(text=t, answer=ctx.class_names[0]) for t in texts]
        pos = [fill(text=t, answer=ctx.class_names[1]) for t in texts]
        return ctx.strong_features(pos), ctx.strong_features(neg)

    def check(self, n_classes: int, n_train: int) -> None:
        if n_classes != 2:
            raise W2SError(f"method 'ccs': binary tasks only (this one has {n_classes} classes)")

    def run(self, ctx: MethodContext) -> MethodResult:
        self.check(ctx.n_classes, len(ctx.x_train))
        if ctx.strong_features is None or not {"strong_train", "test"} <= set(ctx.texts):
            raise W2SError("method 'ccs': needs the texts and the strong model's encoder")
        p = self.params
        train = self.pairs(ctx, "strong_train")
        with one_thread():
            probe = CCSProbe(p.tries, p.epochs, p.lr, p.weight_decay, ctx.seed).fit(*train)
        p_pos, p_neg = probe.halves(*train)
        p_train, p_test = 0.5 * (p_pos + 1 - p_neg), probe.predict(*self.pairs(ctx, "test"))
        weak_hard = ctx.weak_train.argmax(1)
        agree = float(((p_train > 0.5) == weak_hard).mean())
        flipped = agree < 0.5
        if flipped:
            p_train, p_test, agree = 1 - p_train, 1 - p_test, 1 - agree
        two = lambda q: np.column_stack([1 - q, q])  # noqa: E731
        return MethodResult(
            test_proba=two(p_test),
            train_proba=two(p_train),
            diagnostics={
                "ccs_loss": probe.loss_,
                "consistency_train": float(np.abs(p_pos - (1 - p_neg)).mean()),
                "sign_flipped_by_weak_labels": bool(flipped),
                "agreement_with_weak_train": agree,
            },
        )
