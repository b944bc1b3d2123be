"""Linear CNN teacher, two-layer ReLU CNN student (after Oh, Song & Yun, NeurIPS 2025).

Data: three patches ``[x1, x2, xi]`` in ``R^d``, label ``y = +-1``. The signal patches carry
an *easy* signal ``mu_y = y a e1`` or a *hard* signal ``nu_+ = a e2``, ``nu_- = a e3``:
easy-only examples are ``(mu_y, mu_y)``, hard-only ``(nu_y, -nu_y)`` and mixed
``(mu_y, nu_y)``. The noise patch is ``N(0, sigma^2 I)`` off the signal coordinates.
(Our construction of "hard": a linear CNN sums its patches, so ``nu_y - nu_y`` cancels and
it guesses on hard-only data; a ReLU CNN sees ``|w . nu_y|``.)

- Weak: linear CNN ``f(x) = w . (x1 + x2 + xi)``, gradient descent on gold labels. On
  hard-only data its output is ``w . xi``: a guess fixed by its noise weights.
- Strong: ``f(x) = F_+(x) - F_-(x)``, ``F_j = (1/m) sum_r sum_p ReLU(w_jr . x_p)``, full-batch
  gradient descent on the logistic loss to the weak model's hard labels.

(a) Data-scarce (``d >> n``): the student is trained until it fits every weak label. Few
examples: it memorises noise and generalises worse than the teacher (harmful
overfitting); more examples: it learns the signals from the correctly labelled examples
and, though it still fits the wrong labels, beats the teacher (benign overfitting).
(b) Data-abundant (``n >> d``): early in training the student learns ``nu`` from the mixed
examples and corrects the teacher on hard-only data; trained on, it learns the teacher's
noise direction (the only way to fit its hard-only labels when memorisation is
impossible; ``noise_response_corr_with_teacher`` tracks it) and drifts back to imitating
the teacher.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

P_EASY, P_HARD = 0.35, 0.3  # the rest are mixed examples


def make_data(
    rng: np.random.Generator, n: int, d: int, a: float, sigma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X (n, 3, d)``, ``y`` in {-1, +1} and the kind (0 easy-only, 1 hard-only, 2 mixed)."""
    y = rng.choice([-1.0, 1.0], size=n)
    u = rng.random(n)
    kind = np.where(u < P_EASY, 0, np.where(u < P_EASY + P_HARD, 1, 2))
    mu = np.zeros((n, d))
    mu[:, 0] = a * y
    nu = np.zeros((n, d))
    nu[y > 0, 1] = a
    nu[y < 0, 2] = a
    hard, easy = (kind == 1)[:, None], (kind == 0)[:, None]
    x = np.zeros((n, 3, d))
    x[:, 0] = np.where(hard, nu, mu)
    x[:, 1] = np.where(easy, mu, np.where(hard, -nu, nu))
    x[:, 2] = sigma * rng.standard_normal((n, d))
    x[:, 2, :3] = 0.0
    return x, y, kind


def train_linear_cnn(x: np.ndarray, y: np.ndarray, steps: int, lr: float) -> np.ndarray:
    """Gradient descent on the logistic loss of ``w . sum_p x_p``; returns ``w``."""
    s = x.sum(axis=1)
    w = np.zeros(x.shape[2])
    for _ in range(steps):
        margin = np.clip(y * (s @ w), -50, 50)
        w += lr * ((y / (1 + np.exp(margin)))[:, None] * s).mean(axis=0)
    return w


def relu_cnn(x: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outputs ``F_+ - F_-`` and the pre-activations ``(n * 3, 2m)``."""
    n, n_patches, d = x.shape
    pre = x.reshape(n * n_patches, d) @ weights.reshape(-1, d).T
    act = np.maximum(pre, 0.0).reshape(n, n_patches, 2, -1).sum(axis=1).mean(axis=2)
    return act[:, 0] - act[:, 1], pre


def train_relu_cnn(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    steps: int,
    lr: float,
    every: list[int] | None = None,
    callback=None,
) -> np.ndarray:
    """Full-batch GD on the logistic loss; calls ``callback(t, weights)`` at steps ``every``."""
    n, n_patches, d = x.shape
    m = weights.shape[1]
    sign = np.repeat([1.0, -1.0], m) / m
    flat = x.reshape(n * n_patches, d)
    for t in range(steps + 1):
        if callback is not None and every is not None and t in every:
            callback(t, weights)
        if t == steps:
            break
        f, pre = relu_cnn(x, weights)
        g = -y / (1 + np.exp(np.clip(y * f, -50, 50))) / n
        grad = ((pre > 0) * np.repeat(g, n_patches)[:, None] * sign).T @ flat
        weights -= lr * grad.reshape(weights.shape)
    return weights


def _err(f: np.ndarray, y: np.ndarray) -> float:
    return float((np.sign(f) != y).mean())


def _teacher(rng, d, a, sigma, n_weak, steps, lr):
    xw, yw, _ = make_data(rng, n_weak, d, a, sigma)
    return train_linear_cnn(xw, yw, steps, lr)


def scarce_regime(seed: int, quick: bool) -> dict:
    """Student trained to fit all weak labels, for several sample sizes n << d."""
    d, a, sigma, m = 1000, 3.0, 1.19, 5
    ns = [6, 24, 96] if quick else [6, 12, 24, 48, 96, 192]
    n_seeds = 3 if quick else 8
    rows = []
    for n in ns:
        runs = []
        for s in range(n_seeds):
            rng = np.random.default_rng([seed, n, s])
            w = _teacher(rng, d, a, sigma, 200, 300, 0.01)
            x_te, y_te, k_te = make_data(rng, 1000, d, a, sigma)
            x, y, _ = make_data(rng, n, d, a, sigma)
            y_weak = np.sign(x.sum(axis=1) @ w)
            weights = train_relu_cnn(x, y_weak, 0.01 * rng.standard_normal((2, m, d)), 200, 0.05)
            f_te = relu_cnn(x_te, weights)[0]
            hard = k_te == 1
            runs.append(
                [
                    _err(x_te.sum(axis=1) @ w, y_te),
                    _err(f_te, y_te),
                    _err(f_te[hard], y_te[hard]),
                    _err(relu_cnn(x, weights)[0], y_weak),
                ]
            )
        r = np.array(runs)
        rows.append(
            {
                "n": n,
                "teacher_error": float(r[:, 0].mean()),
                "student_error": float(r[:, 1].mean()),
                "student_error_sd": float(r[:, 1].std()),
                "student_hard_only_error": float(r[:, 2].mean()),
                "student_train_error_on_weak_labels": float(r[:, 3].mean()),
                "benign": bool(r[:, 1].mean() < r[:, 0].mean()),
            }
        )
    return {
        "rows": rows,
        "params": {
            "d": d,
            "a": a,
            "sigma": sigma,
            "m": m,
            "n_seeds": n_seeds,
            "steps": 200,
            "lr": 0.05,
        },
    }


def abundant_regime(seed: int, quick: bool) -> dict:
    """Test error over training steps for n >> d; early stopping vs long training."""
    d, a, sigma, m = 40, 3.0, 1.0, 10
    n = 1_000 if quick else 2_000
    steps, lr = (1_000, 0.1) if quick else (3_000, 0.1)
    rng = np.random.default_rng([seed, 1])
    w = _teacher(rng, d, a, sigma, 200, 500, 0.1)
    x, y, _ = make_data(rng, n, d, a, sigma)
    x_va, y_va, _ = make_data(rng, 1_000, d, a, sigma)
    x_te, y_te, k_te = make_data(rng, 2_000 if quick else 4_000, d, a, sigma)
    weak = {
        name: np.sign(xx.sum(axis=1) @ w)
        for name, xx in (("train", x), ("val", x_va), ("test", x_te))
    }
    hard = k_te == 1
    noise_only = np.zeros_like(x_te)  # the teacher's guess on hard-only data is w . xi
    noise_only[:, 2] = x_te[:, 2]
    every = sorted({0, *np.unique(np.geomspace(1, steps, 30).astype(int)).tolist()})
    curve: list[dict] = []

    def record(t: int, weights: np.ndarray) -> None:
        f_te = relu_cnn(x_te, weights)[0]
        f_va = relu_cnn(x_va, weights)[0]
        curve.append(
            {
                "step": t,
                "test_error": _err(f_te, y_te),
                "test_hard_only_error": _err(f_te[hard], y_te[hard]),
                "val_error_gold": _err(f_va, y_va),
                "val_error_weak_labels": _err(f_va, weak["val"]),
                "train_error_on_weak_labels": _err(relu_cnn(x, weights)[0], weak["train"]),
                "agreement_with_teacher": float((np.sign(f_te) == weak["test"]).mean()),
                "noise_response_corr_with_teacher": float(
                    np.corrcoef(relu_cnn(noise_only, weights)[0], x_te[:, 2] @ w)[0, 1]
                ),
            }
        )

    train_relu_cnn(
        x, weak["train"], 0.01 * rng.standard_normal((2, m, d)), steps, lr, every, record
    )
    by_gold = min(curve[1:], key=lambda c: c["val_error_gold"])
    by_weak = min(curve[1:], key=lambda c: c["val_error_weak_labels"])
    teacher_hard = _err(weak["test"][hard], y_te[hard])
    return {
        "curve": curve,
        "teacher_error": _err(weak["test"], y_te),
        "teacher_hard_only_error": teacher_hard,
        "early_stopped_step": by_gold["step"],
        "early_stopped_error": by_gold["test_error"],
        "weak_val_stopped_step": by_weak["step"],
        "weak_val_stopped_error": by_weak["test_error"],
        "final_error": curve[-1]["test_error"],
        "final_agreement_with_teacher": curve[-1]["agreement_with_teacher"],
        "early_stopped_noise_corr_with_teacher": by_gold["noise_response_corr_with_teacher"],
        "final_noise_corr_with_teacher": curve[-1]["noise_response_corr_with_teacher"],
        "params": {"d": d, "a": a, "sigma": sigma, "m": m, "n": n, "steps": steps, "lr": lr},
    }


def simulate(seed: int = 0, quick: bool = False) -> dict:
    """Both regimes."""
    return {"scarce": scarce_regime(seed, quick), "abundant": abundant_regime(seed, quick)}


def plot(result: dict, path: Path) -> None:
    """Left: error vs n (data-scarce). Right: error vs training step (data-abundant)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    ax = fig.add_subplot(1, 2, 1)
    rows = result["scarce"]["rows"]
    ns = [r["n"] for r in rows]
    ax.errorbar(
        ns,
        [r["student_error"] for r in rows],
        [r["student_error_sd"] for r in rows],
        fmt="o-",
        ms=4,
        capsize=3,
        label="ReLU CNN student (fits all weak labels)",
    )
    ax.plot(ns, [r["teacher_error"] for r in rows], "k--", label="linear CNN teacher")
    ax.set_xscale("log")
    ax.set_xlabel("n weak-labelled examples")
    ax.set_ylabel("test error (gold)")
    ax.set_title("data-scarce: harmful -> benign overfitting", fontsize=9)
    ax.legend(fontsize=8)

    ab = result["abundant"]
    ax = fig.add_subplot(1, 2, 2)
    steps = [max(c["step"], 0.5) for c in ab["curve"]]
    ax.plot(steps, [c["test_error"] for c in ab["curve"]], "C0-", label="student test error")
    ax.plot(
        steps,
        [c["test_hard_only_error"] for c in ab["curve"]],
        "C0:",
        label="student, hard-only examples",
    )
    ax.plot(
        steps,
        [1 - c["agreement_with_teacher"] for c in ab["curve"]],
        "C2-",
        lw=0.8,
        label="disagreement with teacher",
    )
    ax.axhline(ab["teacher_error"], color="k", ls="--", lw=1, label="teacher test error")
    ax.axvline(ab["early_stopped_step"], color="C1", lw=0.8, label="early stop (gold val)")
    ax.set_xscale("log")
    ax.set_xlabel("gradient step")
    ax.set_title("data-abundant: label correction, then imitation", fontsize=9)
    ax.legend(fontsize=7, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def run(path: Path, seed: int = 0, quick: bool = False) -> dict:
    """Simulate, save the plot to ``path`` and return the numbers."""
    result = simulate(seed=seed, quick=quick)
    plot(result, path)
    return result
