"""Same command, same metrics.json, whatever the cache holds: a run on an empty feature
cache equals one on a cache pre-warmed with other texts (other seed, other sizes), and
both equal the checked-in reference (tests/golden/), so a change of behaviour in any layer
(features, splits, probes, scoring) shows up here."""

import json
from pathlib import Path

import pytest

from w2s.experiment import build_config, run_experiment

GOLDEN = Path(__file__).parent / "golden" / "sentiment_minilm_smollm2.json"
RAW = {
    "task": "sentiment",
    "weak": "minilm-l6",
    "strong": "smollm2-135m",
    "methods": ["naive", "logconf", "product"],
    "data": {"n_weak_train": 120, "n_strong_train": 160, "n_val": 60, "n_test": 200},
    "seed": 11,
}


def _strip(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in {"timing_s", "out"}}


@pytest.fixture(scope="module")
def empty_cache_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("repro")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("W2S_CACHE", str(root / "cache-empty"))
        return run_experiment(build_config({**RAW, "out": str(root / "a")}))


def test_empty_and_prewarmed_feature_caches_give_identical_metrics(empty_cache_run, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("W2S_CACHE", str(tmp_path / "cache-warm"))
        other = {"n_weak_train": 90, "n_strong_train": 200, "n_val": 50, "n_test": 150}
        run_experiment(build_config({**RAW, "seed": 12, "data": other, "out": str(tmp_path / "w")}))
        warm = run_experiment(build_config({**RAW, "out": str(tmp_path / "b")}))
    a = json.dumps(_strip(empty_cache_run), sort_keys=True)
    assert json.dumps(_strip(warm), sort_keys=True) == a


def test_metrics_equal_the_checked_in_reference(empty_cache_run):
    """Regenerate deliberately (and say why in the commit) when behaviour is meant to
    change: `python -m tests.test_reproducible`."""
    golden = json.loads(GOLDEN.read_text())
    assert _strip(empty_cache_run) == golden


if __name__ == "__main__":  # regenerate the reference
    import tempfile

    out = Path(tempfile.mkdtemp()) / "run"
    GOLDEN.parent.mkdir(exist_ok=True)
    metrics = run_experiment(build_config({**RAW, "out": str(out)}))
    GOLDEN.write_text(json.dumps(_strip(metrics), indent=2, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
