import numpy as np
import pytest

from w2s.analysis import auroc, bootstrap_pgr, ece, pgr


def onehot(pred, k=2):
    return np.eye(k)[pred]


def test_pgr_known_values():
    assert pgr(0.6, 0.8, 0.7) == pytest.approx(0.5)
    assert pgr(0.6, 0.8, 0.8) == pytest.approx(1.0)
    assert pgr(0.6, 0.8, 0.5) == pytest.approx(-0.5)
    assert np.isnan(pgr(0.7, 0.7, 0.9))


def _predictors(n=1000, acc_w=0.6, acc_c=0.8, acc_s=0.7, seed=0):
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 2, n)
    out = []
    for acc in (acc_w, acc_c, acc_s):
        right = np.zeros(n, bool)
        right[rng.permutation(n)[: int(acc * n)]] = True
        out.append(onehot(np.where(right, gold, 1 - gold)))
    return gold, out


def test_bootstrap_pgr_point_and_interval():
    gold, (w, c, s) = _predictors()
    res = bootstrap_pgr(gold, w, c, s, n_resamples=1000, seed=0)
    assert res["pgr"] == pytest.approx(0.5)
    lo, hi = res["ci"]
    assert lo < 0.5 < hi
    assert lo > 0.2 and hi < 0.8  # a 20-point gap on 1,000 examples pins PGR to about +-0.15
    assert res == bootstrap_pgr(gold, w, c, s, n_resamples=1000, seed=0)


def test_bootstrap_interval_widens_when_gap_is_small():
    gold, (w, c, s) = _predictors(acc_w=0.7, acc_c=0.74, acc_s=0.72)
    wide = bootstrap_pgr(gold, w, c, s, n_resamples=1000)["ci"]
    gold, (w, c, s) = _predictors(acc_w=0.6, acc_c=0.8, acc_s=0.7)
    narrow = bootstrap_pgr(gold, w, c, s, n_resamples=1000)["ci"]
    assert wide[1] - wide[0] > 2 * (narrow[1] - narrow[0])


def test_bootstrap_on_auroc():
    rng = np.random.default_rng(1)
    gold = rng.integers(0, 2, 400)

    def scores(noise):
        p1 = np.clip(gold + rng.normal(0, noise, 400), -5, 5)
        p1 = 1 / (1 + np.exp(-p1))
        return np.stack([1 - p1, p1], 1)

    w, c, s = scores(2.0), scores(0.3), scores(0.8)
    res = bootstrap_pgr(gold, w, c, s, metric="auroc", n_resamples=200)
    expected = (auroc(gold, s) - auroc(gold, w)) / (auroc(gold, c) - auroc(gold, w))
    assert res["pgr"] == pytest.approx(expected)
    assert res["ci"][0] < expected < res["ci"][1]


def test_ece_of_perfectly_calibrated_and_overconfident():
    gold = np.array([0, 1, 0, 1])
    assert ece(gold, onehot(gold)) == pytest.approx(0.0)
    assert ece(gold, onehot(1 - gold)) == pytest.approx(1.0)


def test_multiclass_auroc_is_macro_ovr():
    gold = np.array([0, 1, 2, 0, 1, 2])
    assert auroc(gold, np.eye(3)[gold]) == pytest.approx(1.0)


def test_vectorised_resampled_auroc_matches_sklearn():
    from w2s.analysis.metrics import auroc_resampled

    rng = np.random.default_rng(3)
    for k in (2, 3):
        gold = rng.integers(0, k, 300)
        proba = rng.dirichlet(np.ones(k), 300)
        proba[:50] = proba[50:100]  # ties
        counts = rng.multinomial(300, np.full(300, 1 / 300), size=20)
        fast = auroc_resampled(gold, proba, counts)
        slow = [auroc(gold, proba, c) for c in counts]
        np.testing.assert_allclose(fast, slow, atol=1e-10)


def test_paired_difference_of_two_methods():
    from w2s.analysis.pgr import bootstrap_difference

    rng = np.random.default_rng(0)
    b = rng.integers(0, 2, 400).astype(float)
    a = b.copy()
    a[:60] = 1.0  # a fixes some of b's misses and never breaks one
    r = bootstrap_difference(a, b, n_resamples=2000, seed=1)
    assert r["diff"] == pytest.approx((a - b).mean())
    assert r["worse"] == 0 and r["better"] == int((b[:60] == 0).sum())
    assert 0 < r["ci"][0] < r["diff"] < r["ci"][1]
    # the CI matches the textbook percentile bootstrap of the paired mean
    d = a - b
    boots = [d[rng.integers(0, 400, 400)].mean() for _ in range(4000)]
    assert r["ci"][0] == pytest.approx(np.quantile(boots, 0.025), abs=0.01)
    assert r["ci"][1] == pytest.approx(np.quantile(boots, 0.975), abs=0.01)
    # examples either side could not score are left out; a constant shift has no spread
    same = bootstrap_difference([2.0, np.nan, 5.0], [1.0, 3.0, 4.0])
    assert same["diff"] == 1.0 and same["ci"] == [1.0, 1.0] and same["better"] == 2
    with pytest.raises(ValueError):
        bootstrap_difference([1.0], [1.0, 2.0])


def test_metric_difference_matches_an_explicit_paired_bootstrap():
    from sklearn.metrics import roc_auc_score

    from w2s.analysis.pgr import _resample_counts, bootstrap_metric_difference

    rng = np.random.default_rng(1)
    n = 120
    gold = rng.integers(0, 2, n)
    pa = np.clip(0.35 * gold + 0.65 * rng.random(n), 0, 1)
    pb = rng.random(n)
    a, b = np.c_[1 - pa, pa], np.c_[1 - pb, pb]
    expected_auc, expected_acc = [], []
    for c in _resample_counts(n, 200, seed=3):
        idx = np.repeat(np.arange(n), c)
        g = gold[idx]
        expected_auc.append(roc_auc_score(g, pa[idx]) - roc_auc_score(g, pb[idx]))
        expected_acc.append(((pa[idx] > 0.5) == g).mean() - ((pb[idx] > 0.5) == g).mean())
    for metric, expected in (("auroc", expected_auc), ("accuracy", expected_acc)):
        d = bootstrap_metric_difference(gold, a, b, metric, n_resamples=200, ci=0.9, seed=3)
        assert d["ci"] == pytest.approx(np.quantile(expected, [0.05, 0.95]))
        assert d["better_rate"] == pytest.approx(np.mean(np.array(expected) > 0))
    d = bootstrap_metric_difference(gold, a, b, "auroc", n_resamples=200, seed=3)
    assert d["diff"] == pytest.approx(roc_auc_score(gold, pa) - roc_auc_score(gold, pb))


def test_stratified_bootstrap_resamples_each_seed_on_its_own():
    from w2s.analysis.pgr import bootstrap_difference, bootstrap_mean, bootstrap_pgr_scores

    # two "seeds": 100 examples all wrong, 300 all right. Resampled as one pool the mean
    # varies; resampled per seed every resample holds 100 zeros and 300 ones
    scores = np.r_[np.zeros(100), np.ones(300)]
    pooled = bootstrap_mean(scores, n_resamples=500)
    assert pooled["ci"][0] < 0.73 and pooled["ci"][1] > 0.77
    assert bootstrap_mean(scores, n_resamples=500, strata=[100, 300])["ci"] == [0.75, 0.75]
    # one stratum is the plain bootstrap, to the bit
    rng = np.random.default_rng(3)
    w, c, s = (rng.random(50) for _ in range(3))
    assert bootstrap_pgr_scores(w, c, s, strata=[50]) == bootstrap_pgr_scores(w, c, s)
    assert bootstrap_mean(s, strata=[50]) == bootstrap_mean(s)
    # a difference keeps, per seed, the examples both sides score
    a = np.r_[np.ones(10), np.nan, np.zeros(20)]
    b = np.r_[np.zeros(10), 0.0, np.zeros(20)]
    d = bootstrap_difference(a, b, n_resamples=300, strata=[11, 20])
    assert d["diff"] == pytest.approx(10 / 30) and d["ci"] == pytest.approx([10 / 30] * 2)
    assert bootstrap_difference(a, b, n_resamples=300)["ci"][0] < 0.3
    with pytest.raises(ValueError, match="do not add up"):
        bootstrap_mean(scores, strata=[100, 200])
