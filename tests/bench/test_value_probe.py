"""bench/value_probe.py's summary: steps-to-end buckets, the fatal step's Q gap, rewarded Q."""

from __future__ import annotations

import numpy as np
import pytest
from bench_scripts import load_bench


@pytest.fixture(scope="module")
def value_probe():
    return load_bench("value_probe")


def test_summary_of_a_model_that_sees_the_end_coming(value_probe) -> None:
    # 25 steps, V falling to 0 at the end; the last action (2) has Q 0 against 1 for the
    # others, every other step's actions are equal; step 3 paid a reward with Q 2.
    episode = []
    for i in range(25):
        q = np.ones(3)
        if i == 24:
            q[2] = 0.0
        if i == 3:
            q[:] = 2.0
        episode.append((float(24 - i), q, 2, 1.0 if i == 3 else 0.0))
    latents = np.array([[0.0, 1.0], [1.0, 0.0]])
    out = value_probe.summary([episode], latents)
    assert out["episodes"] == 1
    assert out["v_by_steps_to_end"][1] == 0.0 and out["v_by_steps_to_end"][2] == 1.0
    assert out["v_by_steps_to_end"][20] == pytest.approx(np.mean([24, 23, 22, 21, 20, 19]))
    assert out["fatal_gap"] == -1.0 and out["other_gap"] == 0.0
    assert out["q_rewarded"] == 2.0 and out["rewarded_steps"] == 1
    assert out["latent_std"] == 0.5 and out["latent_mean_abs"] == 0.5
