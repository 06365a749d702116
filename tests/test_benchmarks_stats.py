"""IQM and stratified bootstrap intervals against hand-computed values."""

import numpy as np
import pytest

from benchmarks.harness import stats


def test_iqm_is_the_trimmed_mean_when_four_divides_n():
    assert stats.iqm([4, 1, 3, 2]) == pytest.approx(2.5)  # middle two of 1..4
    assert stats.iqm(np.arange(8)) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert stats.iqm([1, 2, 3, 1000]) == pytest.approx(2.5)  # the outlier is trimmed


def test_iqm_weighs_scores_straddling_the_quartiles_by_their_mass_inside():
    # 3 scores: masses [0, 1/3], [1/3, 2/3], [2/3, 1]; inside [1/4, 3/4]: 1/12, 1/3, 1/12 -> 1/6, 2/3, 1/6
    assert stats.iqm([10, 0, 1]) == pytest.approx(0 / 6 + 2 / 3 * 1 + 10 / 6)
    # 5 scores, 1/5 each: inside [1/4, 3/4] 0, 0.15, 0.2, 0.15, 0 -> weights 0, 0.3, 0.4, 0.3, 0
    assert stats.iqm([0, 1, 2, 3, 100]) == pytest.approx(0.3 * 1 + 0.4 * 2 + 0.3 * 3)
    assert stats.iqm([7.0]) == 7.0


def test_iqm_along_an_axis():
    scores = np.array([[1, 2, 3, 4], [10, 20, 30, 40]])
    np.testing.assert_allclose(stats.iqm(scores, axis=1), [2.5, 25.0])
    np.testing.assert_allclose(stats.iqm(scores.T, axis=0), [2.5, 25.0])


def test_bootstrap_interval_of_a_mean_matches_the_exact_resampling_distribution():
    # resampling [0, 0, 3]: the mean is k (k = copies of 3 drawn, Binomial(3, 1/3)):
    # P(0) = 8/27, P(1) = 12/27, P(2) = 6/27, P(3) = 1/27 = 3.7%
    low, high = stats.confidence_interval([[0, 0, 3]], stats.mean, confidence=0.95, reps=20_000)
    assert (low, high) == (0.0, 3.0)  # 3.7% > 2.5%: the 97.5th percentile is 3
    low, high = stats.confidence_interval([[0, 0, 3]], stats.mean, confidence=0.90, reps=20_000)
    assert (low, high) == (0.0, 2.0)  # 3.7% < 5%: the 95th percentile falls on 2


def test_stratification_keeps_every_task_at_its_size():
    # each resample holds 3 runs of task A (all 0) and 5 of task B (all 1): the sum is always 5
    replicates = stats.stratified_bootstrap(
        [[0, 0, 0], [1, 1, 1, 1, 1]], lambda x, axis: x.sum(axis=axis), reps=500
    )
    assert replicates.shape == (500,) and np.all(replicates == 5)
    # stratified, the mean of {0,0,0} and {10,10,10} never moves; pooled as one task it does
    assert stats.confidence_interval([[0, 0, 0], [10, 10, 10]], stats.mean) == (5.0, 5.0)
    low, high = stats.confidence_interval([[0, 0, 0, 10, 10, 10]], stats.mean)
    assert low < 5.0 < high


def test_point_and_interval_pools_the_tasks():
    point, low, high = stats.point_and_interval([[1, 2, 3, 4], [5, 6, 7, 8]], stats.iqm)
    assert point == pytest.approx(4.5)
    assert low <= point <= high


def test_bootstrap_is_reproducible_with_a_seed():
    a = stats.confidence_interval([[1.0, 5.0, 2.0, 9.0]], seed=3)
    b = stats.confidence_interval([[1.0, 5.0, 2.0, 9.0]], seed=3)
    assert a == b


def test_normalize_maps_low_to_zero_and_high_to_one():
    np.testing.assert_allclose(stats.normalize([23.7, 500, 261.85], 23.7, 500), [0.0, 1.0, 0.5])


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        stats.iqm([])
    with pytest.raises(ValueError, match="every task"):
        stats.stratified_bootstrap([[1.0], []])
    with pytest.raises(ValueError, match="confidence"):
        stats.confidence_interval([[1.0, 2.0]], confidence=95)
    with pytest.raises(ValueError, match="distinct"):
        stats.normalize([1.0], 2.0, 2.0)
