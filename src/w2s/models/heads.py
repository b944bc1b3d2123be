"""`Probe`: a linear (or MLP) head on frozen features, trained on soft labels.

scikit-learn style: parameters in `__init__`, `fit` / `predict_proba`. Model selection
uses only the validation data it is given (weak labels in W2S), never gold.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from w2s.models.grad import inference_mode
from w2s.models.losses import get_loss

if TYPE_CHECKING:
    import torch


PROBE_VERSION = 1  # bump when what `Probe` computes changes (saved stages depend on it)


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run small torch ops on one thread: a probe's tiny matmuls are 20x slower with two
    threads when another process competes for the cores (OpenMP spin-waits)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def to_soft(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Class indices (n,) -> one-hot (n, K); probabilities (n, K) pass through."""
    y = np.asarray(y)
    if y.ndim == 1:
        return np.eye(n_classes, dtype=np.float32)[y.astype(int)]
    return y.astype(np.float32)


def selection_score(val_target: np.ndarray, proba: np.ndarray) -> float:
    """Agreement with the validation labels: AUROC against their argmax (macro OvR for
    K > 2), falling back to accuracy when a class is missing."""
    from sklearn.metrics import roc_auc_score

    hard = val_target.argmax(1)
    try:
        if proba.shape[1] == 2:
            return float(roc_auc_score(hard, proba[:, 1]))
        return float(roc_auc_score(hard, proba, multi_class="ovr", labels=range(proba.shape[1])))
    except ValueError:
        return float((proba.argmax(1) == hard).mean())


class Probe:
    """Linear or one-hidden-layer MLP probe over standardised features."""

    def __init__(
        self,
        n_classes: int = 2,
        loss: str = "xent",
        loss_params: dict | None = None,
        hidden: int = 0,
        epochs: int = 30,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self.n_classes = n_classes
        self.loss = loss
        self.loss_params = loss_params or {}
        self.hidden = hidden
        self.epochs = epochs
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.seed = seed

    def _net(self, d: int) -> torch.nn.Module:
        import torch

        if self.hidden:
            return torch.nn.Sequential(
                torch.nn.Linear(d, self.hidden),
                torch.nn.GELU(),
                torch.nn.Linear(self.hidden, self.n_classes),
            )
        return torch.nn.Linear(d, self.n_classes)

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
    ) -> Probe:
        """Train on labels `y` (indices or probabilities); keep the epoch that best agrees
        with `y_val` on `X_val` when given, else the last epoch."""
        with one_thread():
            return self._fit(X, y, sample_weight, X_val, y_val)

    def _fit(self, X, y, sample_weight, X_val, y_val) -> Probe:
        import torch

        X = np.asarray(X, dtype=np.float32)
        target = torch.from_numpy(to_soft(y, self.n_classes))
        w = (
            torch.ones(len(X))
            if sample_weight is None
            else torch.as_tensor(sample_weight, dtype=torch.float32)
        )
        self.mean_ = X.mean(0)
        self.scale_ = X.std(0) + 1e-6
        Xt = torch.from_numpy((X - self.mean_) / self.scale_)
        gen = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        self.net_ = self._net(X.shape[1])
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        loss_fn = get_loss(self.loss, **self.loss_params)
        steps_per_epoch = max(1, int(np.ceil(len(X) / self.batch_size)))
        total = steps_per_epoch * self.epochs
        val_t = None if y_val is None else to_soft(y_val, self.n_classes)
        best, best_state, self.history_ = -np.inf, None, []
        step = 0
        for epoch in range(self.epochs):
            self.net_.train()
            perm = torch.randperm(len(X), generator=gen)
            for start in range(0, len(X), self.batch_size):
                idx = perm[start : start + self.batch_size]
                losses = loss_fn(self.net_(Xt[idx]), target[idx], step / total)
                loss = (losses * w[idx]).sum() / w[idx].sum()
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
            if X_val is not None:
                score = selection_score(val_t, self._predict(X_val))
                self.history_.append(score)
                if score > best:
                    best, best_state, self.best_epoch_ = (
                        score,
                        copy.deepcopy(self.net_.state_dict()),
                        epoch,
                    )
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Class probabilities (n, K)."""
        with one_thread():
            return self._predict(X)

    @inference_mode
    def _predict(self, X: np.ndarray) -> np.ndarray:
        import torch

        self.net_.eval()
        Xt = torch.from_numpy((np.asarray(X, dtype=np.float32) - self.mean_) / self.scale_)
        return self.net_(Xt).softmax(-1).numpy()
