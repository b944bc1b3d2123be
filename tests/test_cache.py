import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from w2s.cache import TMP_PREFIX, atomic_path
from w2s.models import FeatureStore, make_encoder


def test_atomic_path_leaves_nothing_on_error(tmp_path):
    final = tmp_path / "entry.bin"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("boom")
    assert not final.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_killed_midway_leaves_no_entry(tmp_path):
    """A process SIGKILLed while writing a cache entry leaves no readable entry."""
    final = tmp_path / "features.npz"
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from w2s.cache import atomic_path
        with atomic_path(Path({str(final)!r})) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"x" * 1000)
                f.flush()
                print("writing", flush=True)
                time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not final.exists()
    leftovers = [p.name for p in tmp_path.iterdir()]
    assert all(name.startswith(TMP_PREFIX) for name in leftovers)


class CountingEncoder:
    """Wraps a real encoder and counts the texts it is asked to encode."""

    def __init__(self, inner):
        self.inner, self.key, self.seen = inner, inner.key, 0

    def encode(self, texts):
        self.seen += len(texts)
        return self.inner.encode(texts)


def test_feature_store_encodes_each_text_once_and_ignores_partial_shards(tmp_path):
    enc = CountingEncoder(make_encoder("minilm-l6"))
    store = FeatureStore(enc, root=tmp_path)
    texts = ["a good film", "a terrible film", "the room was clean"]
    first = store.get(texts)
    assert first.shape == (3, 384) and enc.seen == 3
    # a leftover temporary from a killed writer is ignored
    (store.root / f"{TMP_PREFIX}dead.npz").write_bytes(b"garbage")
    again = store.get(texts[::-1] + ["a new sentence"])
    assert enc.seen == 4
    np.testing.assert_array_equal(again[:3], first[::-1])
    # the cached features equal a fresh forward pass
    np.testing.assert_allclose(enc.inner.encode(texts), first, atol=1e-5)


def test_warning_lines_print_brackets_verbatim(capsys):
    """A message with rich-markup-like text (a path, `pip install 'w2s[ray]'`) is printed as
    it is, not swallowed as a style tag."""
    from w2s import progress

    progress.warn("quarantined [ray] shard /tmp/x[1]")
    assert "quarantined [ray] shard /tmp/x[1]" in capsys.readouterr().err
