"""The vectorised KS test and harmonic mean of the TOFU bootstrap agree with scipy sample by sample."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from evaluation.benchmarks.tofu import resample as tofu_resample


@pytest.mark.parametrize("n, m, ties", [(40, 40, False), (25, 40, False), (30, 30, True)])
def test_ks_statistic_and_pvalue_match_scipy_per_sample(n, m, ties):
    rng = np.random.default_rng(n + m)
    sample, reference = rng.lognormal(size=n), rng.lognormal(0.3, size=m)
    if ties:  # truth ratios can repeat (identical losses); ties across both samples too
        sample, reference = np.round(sample, 1), np.round(reference, 1)
    positions = rng.integers(0, n, size=(50, n))
    statistics = tofu_resample.ks_statistics(sample, positions, reference)
    pvalues = tofu_resample.forget_quality(sample, positions, reference)
    for row, statistic, pvalue in zip(positions, statistics, pvalues):
        expected = stats.ks_2samp(sample[row], reference)
        assert statistic / (n * m) == pytest.approx(expected.statistic, abs=1e-12)
        assert pvalue == pytest.approx(expected.pvalue, rel=1e-12)


def test_harmonic_mean_is_zero_when_a_component_is_zero():
    components = np.array([[0.5, 0.0], [0.25, 0.3]])
    assert tofu_resample.harmonic_mean_or_zero(components).tolist() == pytest.approx([stats.hmean([0.5, 0.25]), 0.0])
