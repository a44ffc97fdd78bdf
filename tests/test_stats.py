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
