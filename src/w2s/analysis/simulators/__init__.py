"""Small numerical simulations of the theory behind weak-to-strong generalization.

Each simulator is ``run(path, seed=0, quick=False) -> dict``: it simulates, saves a PNG at
``path`` and returns its numbers. :func:`run_simulator` adds the JSON file and runs BLAS
single-threaded (faster for arrays this small).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from threadpoolctl import threadpool_limits

from w2s.analysis.simulators import coverage, feature_learning, misfit, refinement
from w2s.cache import jsonable, make_out_dir, write_json_atomic
from w2s.registry import Registry

SIMULATORS: Registry[Callable[..., dict]] = Registry("simulator")
for _name, _module in (
    ("refinement", refinement),
    ("misfit", misfit),
    ("feature_learning", feature_learning),
    ("coverage", coverage),
):
    SIMULATORS.add(_name, _module.run)


def run_simulator(name: str, out_dir: Path, seed: int = 0, quick: bool = False) -> dict:
    """Run simulator ``name``; write ``<out_dir>/<name>.png`` and ``<out_dir>/<name>.json``."""
    simulate = SIMULATORS.get(name)
    out_dir = Path(out_dir)
    make_out_dir(out_dir)
    # these arrays are small: one BLAS thread is faster than many, and far faster on a busy box
    with threadpool_limits(limits=1):
        result = simulate(out_dir / f"{name}.png", seed=seed, quick=quick)
    result = jsonable({"simulator": name, "seed": seed, "quick": quick, **result})
    write_json_atomic(out_dir / f"{name}.json", result)
    return result
