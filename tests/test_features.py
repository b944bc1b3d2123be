"""Cached features are a function of the text alone: bitwise the same whether a text is
encoded alone, in a batch, or into a cache pre-warmed with other texts (real minilm-l6,
in float32, the CPU default, and bf16, the GPU default; and smollm2-135m cut at block 6
to keep the test fast);
damaged cache shards are moved aside and recomputed."""

import numpy as np
import pytest

from w2s.cache import CORRUPT_PREFIX
from w2s.models import FeatureStore, make_encoder
from w2s.models.encoders import BUCKET, padded_width, shape_batches

# lengths from a few tokens to ~60, so texts fall in several width buckets and, batched
# the old way (padded to the longest in a batch), most would get a different width
TEXTS = [
    f"Review {i}: " + " ".join(["the room was clean and the staff were friendly"] * (i % 4))
    for i in range(20)
]
OTHER = [f"An unrelated sentence about item {i}, which was {'good' * (i % 3)}." for i in range(12)]


def assert_bitwise(a, b):
    np.testing.assert_array_equal(a, b)  # a readable report first
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()  # then every bit


class CountingEncoder:
    """Wraps a real encoder and records every batch of texts it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.key, self.calls = inner, inner.key, []

    def encode(self, texts):
        self.calls.append(list(texts))
        return self.inner.encode(texts)


@pytest.fixture(
    scope="module",
    params=[("minilm-l6", "auto"), ("minilm-l6", "bfloat16"), ("smollm2-135m", "auto")],
    ids=lambda p: "/".join(p),
)
def encoder(request):
    name, dtype = request.param
    enc = make_encoder(name, layer=6 if name == "smollm2-135m" else None, dtype=dtype)
    enc.load()
    return enc


def test_shape_batches_width_depends_only_on_own_length():
    lengths = [1, 15, 16, 17, 40, 3, 16, 33, 0, 64, 65]
    batches = shape_batches(lengths, rows=2)
    seen = sorted(i for _, idx in batches for i in idx)
    assert seen == list(range(len(lengths)))
    for width, idx in batches:
        assert 1 <= len(idx) <= 2 and width % BUCKET == 0
        assert all(width == padded_width(lengths[i]) >= lengths[i] for i in idx)
    assert [padded_width(n) for n in (0, 1, 16, 17, 32, 33)] == [16, 16, 16, 32, 32, 48]


def test_features_do_not_depend_on_batch_or_cache_history(encoder, tmp_path):
    cold = FeatureStore(encoder, root=tmp_path / "cold").get(TEXTS)  # one call, empty cache
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS[:5]])
    assert_bitwise(alone, cold[:5])
    mixed = encoder.encode(OTHER[:4] + TEXTS[::-2] + OTHER[4:])
    assert_bitwise(mixed[4 : 4 + len(TEXTS[::-2])], cold[::-2])

    warm_store = FeatureStore(encoder, root=tmp_path / "warm")
    warm_store.get(OTHER + TEXTS[::3])  # another set of texts (and some of ours) first
    warm = warm_store.get(TEXTS)
    assert cold.dtype == np.float32
    assert_bitwise(warm, cold)


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_corrupt_feature_shard_is_quarantined_and_recomputed(tmp_path, capsys):
    enc = CountingEncoder(make_encoder("minilm-l6"))
    first = FeatureStore(enc, root=tmp_path).get(TEXTS[:5])
    (shard,) = (tmp_path / enc.key).glob("*.npz")
    _truncate(shard)
    capsys.readouterr()

    again = FeatureStore(enc, root=tmp_path).get(TEXTS[:5])
    err = capsys.readouterr().err
    assert err.count("cache shard is damaged") == 1 and "\n" not in err.strip()
    assert len(enc.calls) == 2 and enc.calls[1] == TEXTS[:5]  # recomputed
    assert_bitwise(again, first)
    assert (shard.parent / (CORRUPT_PREFIX + shard.name)).exists()

    third = FeatureStore(enc, root=tmp_path).get(TEXTS[:5])  # healthy now: no work, no noise
    assert len(enc.calls) == 2 and capsys.readouterr().err == ""
    assert_bitwise(third, first)
