"""Per-stage seeds: one helper derives every seed of a run from the run's seed, so stages
never share a stream by accident (seed + 1 of one run is not another run's seed)."""

from __future__ import annotations

import hashlib


def derive_seed(seed: int | str, *names: str) -> int:
    """A seed in [0, 2**31) for the stage called `names` of a run with `seed`."""
    digest = hashlib.sha256("/".join([str(seed), *names]).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF
