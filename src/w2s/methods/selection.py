"""Methods that choose which weak labels the student learns from.

- `window` (EleutherAI w2s): cross-entropy only where the *student* is still uncertain,
  top probability below 1/K + radius (0.5 + radius for two classes); EleutherAI's default
  radius is 0.15, and "midweak" sets it to the median weak confidence |w - 0.5| (K
  classes: max_k w_k - 1/K) on strong_train. Examples leave the loss as soon as the
  student is confident about them, whatever their weak label says.
- `filter`: drop the `fraction` most disputed examples of strong_train and of val, train
  on the rest. Disputed = the total-variation distance 0.5·sum_k |f_k - w_k| between the
  weak soft label w and an out-of-sample fit f of the weak labels on the strong features
  (cross-validated logistic regression, or a k-NN vote leaving the point out); for two
  classes |f_1 - w_1|, EleutherAI's probe-filter score.
- `co_teaching` (Han et al. 2018): two students from different initialisations see the
  same mini-batches; each picks its own small-loss fraction 1 - r(epoch) of the batch and
  the *other* student is updated on it. The forget rate r ramps linearly from 0 to
  `forget_rate` over `ramp_epochs` epochs. The first student is the result.
"""

from __future__ import annotations

import copy
from typing import Annotated, Literal

import numpy as np
from pydantic import Field

from w2s.errors import W2SError
from w2s.methods.base import ClassificationMethod, MethodContext, MethodResult, register
from w2s.methods.relabel import knn_vote, logreg_relabel, raise_small, train_probe
from w2s.models.heads import Probe, one_thread, selection_score
from w2s.models.losses import LOSSES, soft_xent
from w2s.registry import Params


def window_radius(weak: np.ndarray) -> float:
    """EleutherAI's "midweak" radius: the median of max_k w_k - 1/K (|w - 0.5| for K=2)."""
    return float(np.median(weak.max(1) - 1 / weak.shape[1]))


class WindowMethodParams(Params):
    """Radius of the confidence window: a number in (0, 1] or "midweak"."""

    radius: Annotated[float, Field(gt=0, le=1)] | Literal["midweak"] = 0.15


@register
class Window(ClassificationMethod):
    name = "window"
    description = "cross-entropy only where the student's confidence is inside a window"
    Params = WindowMethodParams

    def fingerprint_parts(self) -> tuple:
        return (*super().fingerprint_parts(), LOSSES.get("window").version)

    def run(self, ctx: MethodContext) -> MethodResult:
        radius = self.params.radius
        if radius == "midweak":
            radius = window_radius(ctx.weak_train)
            if radius <= 0:
                raise W2SError("method 'window': radius 'midweak' is 0 (weak labels uniform)")
        probe = Probe(
            n_classes=ctx.n_classes,
            loss="window",
            loss_params={"radius": radius},
            seed=ctx.seed,
            **ctx.probe,
        )
        probe.fit(ctx.x_train, ctx.weak_train, X_val=ctx.x_val, y_val=ctx.weak_val)
        train = probe.predict_proba(ctx.x_train)
        return MethodResult(
            test_proba=probe.predict_proba(ctx.x_test),
            train_proba=train,
            diagnostics={
                "best_epoch": int(getattr(probe, "best_epoch_", -1)),
                "radius": float(radius),
                "in_window_final": float((train.max(1) < 1 / ctx.n_classes + radius).mean()),
            },
        )


def dispute(fit: np.ndarray, weak: np.ndarray) -> np.ndarray:
    """Total-variation distance between each fitted and weak label distribution."""
    return 0.5 * np.abs(fit - weak).sum(1)


def least_disputed(scores: np.ndarray, fraction: float) -> np.ndarray:
    """Indices (sorted) of all but the floor(fraction·n) highest `scores`."""
    n_drop = int(fraction * len(scores))
    order = np.argsort(-scores, kind="stable")
    return np.sort(order[n_drop:])


class FilterParams(Params):
    """Fraction dropped (EleutherAI's contamination, 0.1) and the fit that scores dispute."""

    fraction: float = Field(0.1, ge=0, lt=1)
    fit: Literal["logreg", "knn"] = "logreg"
    k: int = Field(50, ge=1, le=1000)
    C: float = Field(1.0, gt=0)
    folds: int = Field(5, ge=2, le=20)


@register
class Filter(ClassificationMethod):
    name = "filter"
    description = "drop the fraction of examples where a strong-feature fit disputes the weak label"
    Params = FilterParams

    def check(self, n_classes: int, n_train: int) -> None:
        p = self.params
        if p.fit == "knn" and p.k >= n_train:
            raise_small(self.name, p.k, n_train)
        if p.fit == "logreg" and p.folds > n_train:
            raise_small(self.name, p.folds, n_train, "folds")

    def run(self, ctx: MethodContext) -> MethodResult:
        p = self.params
        n = len(ctx.x_train)
        self.check(ctx.n_classes, n)
        if p.fit == "knn":
            fit_train = knn_vote(ctx.x_train, ctx.weak_train, p.k)
            fit_val = knn_vote(ctx.x_train, ctx.weak_train, p.k, query=ctx.x_val)
        else:
            fit_train, fit_val = logreg_relabel(
                ctx.x_train, ctx.weak_train, p.C, p.folds, ctx.seed, query=ctx.x_val
            )
        d_train, d_val = dispute(fit_train, ctx.weak_train), dispute(fit_val, ctx.weak_val)
        keep, keep_val = least_disputed(d_train, p.fraction), least_disputed(d_val, p.fraction)
        dropped = np.setdiff1d(np.arange(n), keep)
        _, res = train_probe(ctx, ctx.weak_train, ctx.weak_val, keep=keep, keep_val=keep_val)
        res.diagnostics.update(
            {
                "dropped_fraction": len(dropped) / n,
                "dropped_fraction_val": (len(ctx.x_val) - len(keep_val)) / len(ctx.x_val),
                "dispute_dropped": float(d_train[dropped].mean()) if len(dropped) else 0.0,
                "dispute_kept": float(d_train[keep].mean()),
            }
        )
        return res


class CoTeachingParams(Params):
    """Final forget rate (the fraction of each batch a student withholds from its peer)
    and the epochs over which it ramps up from 0 (Han et al.: T_k = 10)."""

    forget_rate: float = Field(0.2, ge=0, lt=1)
    ramp_epochs: int = Field(10, ge=0)


def forget_schedule(epoch: int, forget_rate: float, ramp_epochs: int) -> float:
    """r(epoch): linear from 0 at epoch 0 to `forget_rate` at `ramp_epochs`, then flat."""
    return forget_rate * min(1.0, epoch / ramp_epochs) if ramp_epochs else forget_rate


@register
class CoTeaching(ClassificationMethod):
    name = "co_teaching"
    description = "two students, each trained on the other's small-loss fraction (Han et al.)"
    Params = CoTeachingParams

    def run(self, ctx: MethodContext) -> MethodResult:
        with one_thread():
            return self._run(ctx)

    def _run(self, ctx: MethodContext) -> MethodResult:
        """Mirrors `Probe.fit` (same initialisation, batches and selection for the first
        student), so with forget_rate 0 the first student is exactly `naive`."""
        import torch

        p = self.params
        first = Probe(n_classes=ctx.n_classes, seed=ctx.seed, **ctx.probe)
        X = np.asarray(ctx.x_train, dtype=np.float32)
        first.mean_, first.scale_ = X.mean(0), X.std(0) + 1e-6
        xt = torch.from_numpy((X - first.mean_) / first.scale_)
        target = torch.from_numpy(ctx.weak_train.astype(np.float32))
        gen = torch.Generator().manual_seed(first.seed)
        torch.manual_seed(first.seed)
        nets = [first._net(X.shape[1]), first._net(X.shape[1])]
        opts = [
            torch.optim.AdamW(net.parameters(), lr=first.lr, weight_decay=first.weight_decay)
            for net in nets
        ]
        best, best_state, best_epoch = -np.inf, None, -1
        exchanged, overlap = [], []
        for epoch in range(first.epochs):
            rate = forget_schedule(epoch, p.forget_rate, p.ramp_epochs)
            kept = shared = 0
            for net in nets:
                net.train()
            perm = torch.randperm(len(X), generator=gen)
            for start in range(0, len(X), first.batch_size):
                idx = perm[start : start + first.batch_size]
                losses = [soft_xent(net(xt[idx]), target[idx]) for net in nets]
                n_keep = max(1, len(idx) - int(round(rate * len(idx))))
                small = [torch.sort(torch.argsort(ls.detach())[:n_keep]).values for ls in losses]
                for i, opt in enumerate(opts):
                    peer = small[1 - i]  # each student learns from the other's choice
                    loss = losses[i][peer].sum() / n_keep
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                kept += n_keep
                shared += len(np.intersect1d(small[0].numpy(), small[1].numpy()))
            exchanged.append(kept / len(X))
            overlap.append(shared / kept)
            first.net_ = nets[0]
            score = selection_score(ctx.weak_val, first._predict(ctx.x_val))
            if score > best:
                best, best_state, best_epoch = score, copy.deepcopy(nets[0].state_dict()), epoch
        nets[0].load_state_dict(best_state)
        first.net_ = nets[0]
        return MethodResult(
            test_proba=first._predict(ctx.x_test),
            train_proba=first._predict(ctx.x_train),
            diagnostics={
                "best_epoch": best_epoch,
                "exchanged_fraction": exchanged[-1],
                "exchanged_fraction_by_epoch": exchanged,
                "selection_overlap": overlap[-1],
                "forget_rate_final": forget_schedule(
                    first.epochs - 1, p.forget_rate, p.ramp_epochs
                ),
            },
        )
