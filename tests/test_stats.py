import math

import pytest

from faceopt.stats import compare


def test_compare_by_hand():
    c = compare([1.0, 3.0], [0.0, 0.0, 0.0])
    # var_a = 2, n_a = 2 -> 1; var_b = 0 -> stderr 1; diff 2 = 2 stderr: not beyond 2
    assert (c.mean_a, c.mean_b, c.diff, c.stderr) == (2.0, 0.0, 2.0, 1.0)
    assert not c.significant and not c.a_better
    assert compare([1.0, 3.0], [-0.5, -0.5]).a_better  # 2.5 > 2 stderr


def test_single_runs_and_errors():
    assert compare([0.9], [0.8]).a_better
    assert not compare([0.8], [0.8]).significant
    with pytest.raises(ValueError):
        compare([], [1.0])
    assert "within the seed noise" in compare([1.0, 3.0], [0.0, 0.0]).text()
    assert "not estimated" in compare([1.0], [0.0]).text()
    assert math.isclose(compare([1, 2, 3], [1, 2, 3]).stderr, math.sqrt(2 / 3))


def test_bootstrap_stderr_of_a_mean_matches_sigma_over_root_n():
    import numpy as np

    from faceopt.stats import bootstrap_stderr

    x = np.random.default_rng(1).normal(0.0, 2.0, 400)
    se = bootstrap_stderr(lambda i: x[i].mean(), len(x), resamples=2000, seed=0)
    assert se == pytest.approx(x.std(ddof=1) / np.sqrt(len(x)), rel=0.1)
    assert bootstrap_stderr(lambda i: 5.0, 10) == 0.0
    with pytest.raises(ValueError, match="at least 2"):
        bootstrap_stderr(lambda i: 0.0, 1)


def test_map_difference_stderr_is_zero_for_identical_predictions_and_grows_with_disagreement():
    import numpy as np

    from faceopt.detection.metrics import map_difference_stderr

    rng = np.random.default_rng(0)
    gt = [np.array([[10, 10, 50, 50]], np.float32) for _ in range(40)]
    good = [(g.copy(), np.array([0.9], np.float32)) for g in gt]
    assert map_difference_stderr(good, good, gt, resamples=30) == 0.0
    half = [(g + (0 if rng.random() < 0.5 else 30), np.array([0.9], np.float32)) for g in gt]
    assert map_difference_stderr(good, half, gt, resamples=50) > 0.02
    with pytest.raises(ValueError, match="same frames"):
        map_difference_stderr(good, good[:-1], gt)


def test_errors_allowed_counts_with_a_tolerance_for_float_products() -> None:
    from faceopt.stats import errors_allowed

    assert 0.29 * 100 < 29  # the float product falls just short
    assert errors_allowed(0.29, 100) == 29
    assert errors_allowed(0.01, 99) == 0 and errors_allowed(0.01, 100) == 1
    assert errors_allowed(1e-6, 1_000_000) == 1
