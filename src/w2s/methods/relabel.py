"""Relabelling methods (EleutherAI w2s): replace the weak labels with what a simple fit on
the strong model's features predicts from them, then train the student on the new labels;
and strong-to-strong, where each round's student labels the next round's.

The fits are out-of-sample on `strong_train` (a k-NN vote that leaves the point itself
out; a cross-validated logistic regression), so a label is never its own evidence. The
validation split is relabelled the same way (neighbours / a fit from `strong_train`),
so model selection still uses nothing but weak labels.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from w2s.errors import W2SError
from w2s.methods.base import ClassificationMethod, MethodContext, MethodResult, register
from w2s.models.heads import Probe
from w2s.registry import Params


def knn_vote(
    x: np.ndarray,
    labels: np.ndarray,
    k: int,
    query: np.ndarray | None = None,
    vote: Literal["soft", "hard"] = "soft",
) -> np.ndarray:
    """Mean label (n, K) of each point's `k` nearest neighbours (cosine) among `x`.

    Without `query`, the neighbours of each point of `x` other than itself; `vote="hard"`
    averages the neighbours' one-hot argmax labels instead of their soft labels.
    """
    if k >= len(x):
        raise ValueError(f"k={k} needs more than {len(x)} points")
    votes = (
        np.eye(labels.shape[1], dtype=np.float32)[labels.argmax(1)] if vote == "hard" else labels
    )
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric="cosine").fit(x)
    idx = nn.kneighbors(query, return_distance=False)  # None: each point excludes itself
    return votes[idx].mean(1).astype(np.float32)


def _soft_logreg(x: np.ndarray, labels: np.ndarray, c: float, seed: int):
    """Logistic regression on soft labels: each example once per class, weighted by its
    label's probability of that class (the soft cross-entropy, exactly)."""
    n, k = labels.shape
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=c, max_iter=2000, random_state=seed)
    )
    model.fit(
        np.tile(x, (k, 1)),
        np.repeat(np.arange(k), n),
        logisticregression__sample_weight=labels.T.ravel(),
    )
    return model


def logreg_relabel(
    x: np.ndarray,
    labels: np.ndarray,
    c: float,
    folds: int,
    seed: int,
    query: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Out-of-fold probabilities (n, K) of a logistic regression fitted to the soft
    `labels` on `x` (`folds`-fold, shuffled by `seed`), and a full fit's on `query`."""
    n, k = labels.shape
    oof = np.zeros((n, k), np.float32)
    from sklearn.model_selection import KFold

    for fit_idx, held in KFold(folds, shuffle=True, random_state=seed).split(x):
        model = _soft_logreg(x[fit_idx], labels[fit_idx], c, seed)
        oof[held] = _proba(model, x[held], k)
    if query is None:
        return oof, None
    return oof, _proba(_soft_logreg(x, labels, c, seed), query, k)


def _proba(model, x: np.ndarray, k: int) -> np.ndarray:
    """predict_proba over all K classes (a fold may have seen fewer)."""
    out = np.zeros((len(x), k), np.float32)
    out[:, model.classes_] = model.predict_proba(x)
    return out


def train_probe(
    ctx: MethodContext,
    y_train: np.ndarray,
    y_val: np.ndarray,
    seed: int | None = None,
    keep: np.ndarray | None = None,
    keep_val: np.ndarray | None = None,
) -> tuple[Probe, MethodResult]:
    """A `Probe` trained on `y_train` (rows `keep` of strong_train only, if given) with
    selection on `y_val` (rows `keep_val` of val), and its result on all of test and
    strong_train."""
    keep = slice(None) if keep is None else keep
    keep_val = slice(None) if keep_val is None else keep_val
    probe = Probe(n_classes=ctx.n_classes, seed=ctx.seed if seed is None else seed, **ctx.probe)
    probe.fit(ctx.x_train[keep], y_train[keep], X_val=ctx.x_val[keep_val], y_val=y_val[keep_val])
    result = MethodResult(
        test_proba=probe.predict_proba(ctx.x_test),
        train_proba=probe.predict_proba(ctx.x_train),
        diagnostics={"best_epoch": int(getattr(probe, "best_epoch_", -1))},
    )
    return probe, result


def relabel_diagnostics(weak: np.ndarray, new: np.ndarray) -> dict[str, float]:
    """How much relabelling changed the training labels."""
    return {
        "changed_fraction": float((weak.argmax(1) != new.argmax(1)).mean()),
        "mean_abs_change": float(np.abs(weak - new).sum(1).mean() / 2),
    }


class KnnParams(Params):
    """k neighbours (EleutherAI's default 50) and whether they vote soft or hard labels."""

    k: int = Field(50, ge=1, le=1000)
    vote: Literal["soft", "hard"] = "soft"


class LogregParams(Params):
    """Inverse L2 strength of the logistic regression and its cross-validation folds."""

    C: float = Field(1.0, gt=0)
    folds: int = Field(5, ge=2, le=20)


@register
class RelabelKnn(ClassificationMethod):
    name = "relabel_knn"
    description = "labels replaced by the k-NN vote of the weak labels in strong feature space"
    Params = KnnParams

    def check(self, n_classes: int, n_train: int) -> None:
        if self.params.k >= n_train:
            raise_small(self.name, self.params.k, n_train)

    def run(self, ctx: MethodContext) -> MethodResult:
        k, vote = self.params.k, self.params.vote
        self.check(ctx.n_classes, len(ctx.x_train))
        new_train = knn_vote(ctx.x_train, ctx.weak_train, k, vote=vote)
        new_val = knn_vote(ctx.x_train, ctx.weak_train, k, query=ctx.x_val, vote=vote)
        _, res = train_probe(ctx, new_train, new_val)
        res.diagnostics.update(relabel_diagnostics(ctx.weak_train, new_train))
        return res


@register
class RelabelLogreg(ClassificationMethod):
    name = "relabel_logreg"
    description = "labels replaced by a cross-validated logistic regression on strong features"
    Params = LogregParams

    def check(self, n_classes: int, n_train: int) -> None:
        if self.params.folds > n_train:
            raise_small(self.name, self.params.folds, n_train, "folds")

    def run(self, ctx: MethodContext) -> MethodResult:
        p = self.params
        self.check(ctx.n_classes, len(ctx.x_train))
        new_train, new_val = logreg_relabel(
            ctx.x_train, ctx.weak_train, p.C, p.folds, ctx.seed, query=ctx.x_val
        )
        _, res = train_probe(ctx, new_train, new_val)
        res.diagnostics.update(relabel_diagnostics(ctx.weak_train, new_train))
        return res


def raise_small(method: str, value: int, n: int, what: str = "k") -> None:
    """One line: `what`=`value` is too large for strong_train's `n` examples."""
    need = f"more than {value}" if what == "k" else f"at least {value}"
    raise W2SError(
        f"method '{method}': {what}={value} needs {need} strong_train examples, there are {n}"
    )


class StrongToStrongParams(Params):
    """Rounds after the first W2S student (EleutherAI's s2s_iters); 0 is `naive`."""

    rounds: int = Field(2, ge=0, le=20)


@register
class StrongToStrong(ClassificationMethod):
    name = "strong_to_strong"
    description = "n rounds, each student trained on the previous student's soft labels"
    Params = StrongToStrongParams

    def run(self, ctx: MethodContext) -> MethodResult:
        y_train, y_val = ctx.weak_train, ctx.weak_val
        agreement = []
        for r in range(self.params.rounds + 1):
            probe, res = train_probe(ctx, y_train, y_val, seed=ctx.seed + r)
            agreement.append(float((res.train_proba.argmax(1) == ctx.weak_train.argmax(1)).mean()))
            y_train, y_val = res.train_proba, probe.predict_proba(ctx.x_val)
        res.diagnostics.update(
            {"rounds": self.params.rounds, "agreement_with_weak_train_by_round": agreement}
        )
        return res
