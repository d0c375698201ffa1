from itertools import combinations
from math import factorial

import lightgbm as lgb
import numpy as np
import pytest

from booking_platform.core import tree_contributions
from booking_platform.core.tree_contributions import (
    MIN_ROWS_PER_PATTERN_PATH,
    FeatureColumns,
    contributions,
    shapley_shares,
    tree_leaves,
)

ROWS = 3000


def _matrix(rng: np.random.Generator, rows: int) -> np.ndarray:
    """Columns: a number with missing values, a number with many zeros, a plain number, and a
    category code (some missing)."""
    with_missing = rng.normal(size=rows)
    with_missing[rng.random(rows) < 0.2] = np.nan
    with_zeros = np.where(rng.random(rows) < 0.3, 0.0, rng.normal(size=rows))
    plain = rng.uniform(-3, 3, size=rows)
    category = rng.integers(0, 12, size=rows).astype(float)
    category[rng.random(rows) < 0.1] = np.nan
    return np.column_stack([with_missing, with_zeros, plain, category])


def _booster(zero_as_missing: bool) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(7)
    matrix = _matrix(rng, ROWS)
    signal = (
        np.nan_to_num(matrix[:, 0], nan=1.5)
        + (matrix[:, 1] == 0) * 1.2
        + np.sin(matrix[:, 2])
        + np.isin(matrix[:, 3], [2, 5, 7]) * 1.5
    )
    labels = (signal + rng.normal(scale=0.7, size=ROWS) > 1).astype(int)
    params = {
        "objective": "binary",
        "num_leaves": 15,
        "min_data_in_leaf": 5,
        "max_cat_to_onehot": 2,  # many-vs-many category splits, stored as bitsets
        "zero_as_missing": zero_as_missing,
        "verbose": -1,
        "seed": 1,
        "num_threads": 1,
    }
    data = lgb.Dataset(matrix, labels, categorical_feature=[3])
    return lgb.train(params, data, num_boost_round=40), matrix


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_contributions_are_lightgbms_on_every_kind_of_split(zero_as_missing: bool) -> None:
    booster, matrix = _booster(zero_as_missing)
    both = tree_leaves(booster.model_to_string())
    trees = [splits for splits, _ in both]
    assert len(trees) == booster.num_trees()
    dump = booster.dump_model()["tree_info"]
    assert [len(t.features) + len(t.categorical) for t in trees] == [
        info["num_leaves"] - 1 for info in dump
    ]
    kinds = {
        ("NaN" if nan else "Zero" if zero else "None")
        for t in trees
        for nan, zero in zip(t.missing_is_nan, t.missing_is_zero, strict=True)
    }
    assert kinds == ({"Zero"} if zero_as_missing else {"NaN", "None"})
    assert any(t.categorical for t in trees)
    # some path splits twice on one feature: its slot passes only when the row passes both
    assert any(len(leaves.checks) > 1 for _, leaves in both)
    # some path splits twice on one feature: its slot passes only when the row passes both

    # rows the model never saw: unseen and negative category codes, missing everywhere, zeros
    rows = _matrix(np.random.default_rng(11), 2 * MIN_ROWS_PER_PATTERN_PATH)
    rows[:40, 3] = np.arange(-20, 20)  # negative, known and unseen codes
    rows[40:60] = np.nan
    rows[60:80] = 0.0
    rows[80:100, 3] = 3.7  # a fractional code is read as its integer part
    expected = booster.predict(rows, pred_contrib=True)
    assert np.abs(contributions(booster, rows, n_jobs=2) - expected).max() < 1e-9
    assert np.abs(contributions(booster, rows, n_jobs=1) - expected).max() < 1e-9


def test_rows_with_one_pattern_reach_one_leaf() -> None:
    """A tree's pattern is the way a row goes at each split, so it fixes the leaf it ends in."""
    booster, matrix = _booster(zero_as_missing=False)
    leaves = booster.predict(matrix, pred_leaf=True)
    for tree, (splits, _) in enumerate(tree_leaves(booster.model_to_string())):
        left = splits.goes_left(FeatureColumns.of(matrix))
        patterns, back = np.unique(splits.patterns(left), return_inverse=True)
        assert 1 < len(patterns) < len(matrix)
        for pattern in range(len(patterns)):
            assert len(np.unique(leaves[back.ravel() == pattern, tree])) == 1


def test_few_rows_go_straight_to_lightgbm() -> None:
    booster, matrix = _booster(zero_as_missing=False)
    rows = matrix[:10]
    assert np.array_equal(
        contributions(booster, rows, n_jobs=2), booster.predict(rows, pred_contrib=True)
    )


def test_shapley_shares_are_the_weighted_sum_over_subsets() -> None:
    """Against the definition: for feature u, the sum over the subsets S of the path's other
    features of |S|! (d-|S|-1)! / d! times o_j over S and z_j over the rest."""
    rng = np.random.default_rng(3)
    for d in (1, 2, 3, 5, 7):
        zero = rng.uniform(0.05, 1.0, size=(40, d))
        passes = (rng.random((40, d)) < 0.5).astype(float)
        expected = np.zeros((40, d))
        for u in range(d):
            others = [j for j in range(d) if j != u]
            for size in range(d):
                weight = factorial(size) * factorial(d - size - 1) / factorial(d)
                for subset in combinations(others, size):
                    rest = [j for j in others if j not in subset]
                    expected[:, u] += (
                        weight * passes[:, list(subset)].prod(axis=1) * zero[:, rest].prod(axis=1)
                    )
        assert np.abs(shapley_shares(zero, passes) - expected).max() < 1e-12


def test_a_booster_with_paths_too_deep_to_tabulate_goes_to_lightgbm(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    booster, _ = _booster(zero_as_missing=False)
    rows = _matrix(np.random.default_rng(5), 2 * MIN_ROWS_PER_PATTERN_PATH)
    monkeypatch.setattr(tree_contributions, "MAX_MASK_ENTRIES", 1)
    assert np.array_equal(
        contributions(booster, rows, n_jobs=2), booster.predict(rows, pred_contrib=True)
    )


def test_a_model_that_could_not_split_has_only_a_bias() -> None:
    rows = np.ones((2 * MIN_ROWS_PER_PATTERN_PATH, 3))
    labels = np.arange(len(rows)) % 2
    params = {"objective": "binary", "verbose": -1, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(rows, labels), num_boost_round=3)
    got = contributions(booster, rows, n_jobs=2)
    assert np.array_equal(got, booster.predict(rows, pred_contrib=True))
    assert not got[:, :3].any()
