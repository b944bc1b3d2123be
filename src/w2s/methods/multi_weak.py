"""Methods for several weak supervisors (`weak: [a, b, ...]`): a probe on the strong
model's features trained on a combination of every supervisor's soft labels.

- `ensemble`: their plain average (RAVEN's "ensemble" baseline).
- `raven` (Jeon et al., NeurIPS 2025): a convex combination whose weights (a softmax of
  learnable logits) are trained jointly with the student on the same loss, so they rise
  for the supervisors the student can fit, in practice the more accurate ones; it starts
  "easy": for the first epochs only examples on which every supervisor agrees train the
  student, with the weights held uniform.

Validation (epoch selection) uses weak labels only: the combination of the supervisors'
validation labels under the same weights.
"""

from __future__ import annotations

import copy
from typing import ClassVar

import numpy as np
from pydantic import Field

from w2s.errors import W2SError
from w2s.methods.base import ClassificationMethod, MethodContext, MethodResult, register
from w2s.models.heads import Probe, one_thread, selection_score
from w2s.models.losses import soft_xent
from w2s.registry import Params


@register
class Ensemble(ClassificationMethod):
    name = "ensemble"
    description = "cross-entropy to the average of every weak supervisor's soft labels"

    def run(self, ctx: MethodContext) -> MethodResult:
        names, train, val = ctx.supervisors()
        probe = Probe(n_classes=ctx.n_classes, loss="xent", seed=ctx.seed, **ctx.probe)
        probe.fit(ctx.x_train, train.mean(1), X_val=ctx.x_val, y_val=val.mean(1))
        return MethodResult(
            test_proba=probe.predict_proba(ctx.x_test),
            train_proba=probe.predict_proba(ctx.x_train),
            diagnostics={
                "best_epoch": int(getattr(probe, "best_epoch_", -1)),
                "supervisors_agree": agreeing(train).mean().item(),
            },
        )


def agreeing(labels: np.ndarray) -> np.ndarray:
    """(n,) bool: examples on which every supervisor's hard label is the same, from
    soft labels (n, M, K)."""
    hard = labels.argmax(-1)
    return (hard == hard[:, :1]).all(1)


class RavenParams(Params):
    easy_epochs: int = Field(
        5, ge=0, description="first epochs on agreeing examples only, weights held uniform"
    )
    weight_lr: float = Field(0.05, gt=0, description="Adam step size of the weight logits")


@register
class Raven(ClassificationMethod):
    name = "raven"
    description = "learned convex weights over several weak supervisors, easy-sample start"
    Params = RavenParams
    min_weak_models: ClassVar[int] = 2

    def run(self, ctx: MethodContext) -> MethodResult:
        names, train, val = ctx.supervisors()
        if len(names) < 2:
            raise W2SError(
                f"raven needs at least 2 weak supervisors, got {len(names)}: "
                "list several (--weak a,b)"
            )
        with one_thread():
            student, weights, best_epoch, easy = self.fit(ctx, train, val)
        return MethodResult(
            test_proba=student.predict_proba(ctx.x_test),
            train_proba=student.predict_proba(ctx.x_train),
            diagnostics={
                "weights": {n: float(w) for n, w in zip(names, weights, strict=True)},
                "best_epoch": best_epoch,
                "easy_fraction": float(easy.mean()),
            },
        )

    def fit(
        self, ctx: MethodContext, train: np.ndarray, val: np.ndarray
    ) -> tuple[Probe, np.ndarray, int, np.ndarray]:
        """Train the student and the weight logits jointly; keep the epoch whose student
        best agrees with the weighted weak validation labels. Returns the student, the
        weights of that epoch, the epoch and the easy-start mask."""
        import torch

        p = self.params
        student = Probe(n_classes=ctx.n_classes, seed=ctx.seed, **ctx.probe)
        X = np.asarray(ctx.x_train, dtype=np.float32)
        student.mean_, student.scale_ = X.mean(0), X.std(0) + 1e-6
        Xt = torch.from_numpy((X - student.mean_) / student.scale_)
        labels = torch.from_numpy(train.astype(np.float32))  # (n, M, K)
        easy = agreeing(train)
        if not easy.any():  # no example all agree on: no easy start
            easy = np.ones(len(X), dtype=bool)
        easy_t = torch.from_numpy(easy)
        gen = torch.Generator().manual_seed(student.seed)
        torch.manual_seed(student.seed)
        student.net_ = student._net(X.shape[1])
        logits_w = torch.zeros(train.shape[1], requires_grad=True)
        opt = torch.optim.AdamW(
            student.net_.parameters(), lr=student.lr, weight_decay=student.weight_decay
        )
        opt_w = torch.optim.Adam([logits_w], lr=p.weight_lr)
        best = (-np.inf, None, None, -1)
        for epoch in range(student.epochs):
            warm = epoch < p.easy_epochs
            student.net_.train()
            perm = torch.randperm(len(X), generator=gen)
            if warm:
                perm = perm[easy_t[perm]]
            for start in range(0, len(perm), student.batch_size):
                idx = perm[start : start + student.batch_size]
                w = torch.softmax(logits_w, 0)
                target = (labels[idx] * w[None, :, None]).sum(1)
                loss = soft_xent(student.net_(Xt[idx]), target).mean()
                opt.zero_grad()
                opt_w.zero_grad()
                loss.backward()
                opt.step()
                if not warm:
                    opt_w.step()
            with torch.no_grad():
                w = torch.softmax(logits_w, 0).numpy()
            score = selection_score((val * w[None, :, None]).sum(1), student._predict(ctx.x_val))
            if score > best[0]:
                best = (score, copy.deepcopy(student.net_.state_dict()), w.copy(), epoch)
        student.net_.load_state_dict(best[1])
        return student, best[2], best[3], easy
