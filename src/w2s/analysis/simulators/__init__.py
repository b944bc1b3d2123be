"""Small numerical simulations of the theory behind weak-to-strong generalization.

Each simulator is ``run(path, seed=0, quick=False) -> dict``: it simulates, saves a PNG at
``path`` and returns its numbers. :func:`run_simulator` adds the JSON file and runs BLAS
single-threaded (faster for arrays this small).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from w2s.analysis.simulators import coverage, feature_learning, misfit, refinement

SIMULATORS: dict[str, Callable[..., dict]] = {
    "refinement": refinement.run,
    "misfit": misfit.run,
    "feature_learning": feature_learning.run,
    "coverage": coverage.run,
}


def to_jsonable(obj: Any) -> Any:
    """Numpy scalars and arrays to Python; NaN and infinities to ``None``."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def run_simulator(name: str, out_dir: Path, seed: int = 0, quick: bool = False) -> dict:
    """Run simulator ``name``; write ``<out_dir>/<name>.png`` and ``<out_dir>/<name>.json``."""
    if name not in SIMULATORS:
        raise ValueError(f"unknown simulator {name!r}; choose from: {', '.join(SIMULATORS)}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # these arrays are small: one BLAS thread is faster than many, and far faster on a busy box
    with threadpool_limits(limits=1):
        result = SIMULATORS[name](out_dir / f"{name}.png", seed=seed, quick=quick)
    result = to_jsonable(result)
    result = {"simulator": name, "seed": seed, "quick": quick, **result}
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, allow_nan=False))
    return result
