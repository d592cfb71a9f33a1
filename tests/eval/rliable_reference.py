"""rliable's numbers on a fixed score matrix: the reference ``test_ev_metrics.py`` checks against.

``SCORES`` is a made-up ``[runs, tasks]`` matrix of normalised scores (10 runs of 5 tasks, with
negative values and values above 1 so that the optimality gap's clipping matters). The stored
numbers in the test were produced once by running this file with the ``bench`` extra installed
(rliable 1.2.0, arch 7.2.0, pandas 2.3.3, numpy 2.4.6, scipy 1.17.1, Python 3.11)::

    python tests/eval/rliable_reference.py

It prints, per aggregate, rliable's point estimate and its stratified-bootstrap percentile 95%
CI (``rliable.library.get_interval_estimates``, 200,000 replicates, ``RandomState(0)``); that
many replicates puts rliable's own Monte Carlo error far below the test's tolerance.
"""

from __future__ import annotations

import numpy as np

SCORES = np.array(
    [
        [0.27, 0.79, -0.03, 4.11, 0.80],
        [0.12, 1.18, -0.21, 1.27, 0.34],
        [0.48, 0.96, 0.15, 3.07, 0.43],
        [0.37, 0.77, 0.04, 2.81, 0.59],
        [0.62, 1.32, 0.05, 0.39, 0.66],
        [0.01, 1.76, 0.28, 2.60, 0.15],
        [-0.19, 1.74, -0.05, 6.58, 0.34],
        [0.64, 1.21, -0.00, 1.82, 0.62],
        [0.59, 0.74, 0.06, 1.35, 1.35],
        [0.72, 1.38, 0.00, 1.44, 0.96],
    ]
)
REPS = 200_000


def rliable_estimates(reps: int = REPS) -> dict[str, tuple[float, float, float]]:
    """``{aggregate: (point, ci95_low, ci95_high)}`` computed by rliable itself."""
    from rliable import library, metrics

    functions = {
        "mean": metrics.aggregate_mean,
        "median": metrics.aggregate_median,
        "iqm": metrics.aggregate_iqm,
        "optimality_gap": metrics.aggregate_optimality_gap,
    }
    out: dict[str, tuple[float, float, float]] = {}
    for name, function in functions.items():
        points, intervals = library.get_interval_estimates(
            {"run": SCORES},
            lambda x, f=function: np.array([f(x)]),
            reps=reps,
            random_state=np.random.RandomState(0),
        )
        low, high = intervals["run"][:, 0]
        out[name] = (float(points["run"][0]), float(low), float(high))
    return out


if __name__ == "__main__":
    for aggregate, numbers in rliable_estimates().items():
        print(f"{aggregate!r}: ({', '.join(repr(round(x, 6)) for x in numbers)}),")
