"""Exact TreeSHAP contributions of a LightGBM booster, computed once per decision pattern.

LightGBM's `pred_contrib` runs TreeSHAP for every row through every tree. But one tree's
contributions to a row depend only on which way the row goes at each of the tree's splits: two
rows that take every split of a tree the same way get the same contributions from it, whatever
their other values. On the open bookings of a day, a tree sees about a quarter as many
distinct patterns as there are distinct rows, so this module asks LightGBM for each tree's
contributions once per pattern (`pred_contrib` on that one tree) and adds them up, on the
model's threads. The values are LightGBM's own, summed in the same tree order (equal to
`pred_contrib` on all rows to about 1e-14; a test holds them to 1e-9).

The splits are taken the way LightGBM takes them (`NumericalDecision` / `CategoricalDecision` in
LightGBM's tree.h): a missing value goes the split's default way when the split learnt one for
missing values and is read as 0 otherwise; a categorical value goes left when its integer is in
the split's category set, and right when it is missing or negative.
"""

from __future__ import annotations

import queue
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

# Below this many rows, one `pred_contrib` call is cheaper than a call per tree.
MIN_ROWS_PER_PATTERN_PATH = 512
ZERO_THRESHOLD = (
    1e-35  # LightGBM's kZeroThreshold: |value| below it is "zero" for missing_type Zero
)


@dataclass(frozen=True)
class CategoricalSplit:
    feature: int
    goes_left_table: np.ndarray  # indexed by category code: True for the codes going left

    def goes_left(self, matrix: np.ndarray) -> np.ndarray:
        values = matrix[:, self.feature]
        codes = np.trunc(np.where(np.isnan(values), -1.0, values))  # C++ static_cast<int>
        known = (codes >= 0) & (codes < len(self.goes_left_table))
        return known & self.goes_left_table[np.where(known, codes, 0).astype(np.intp)]


@dataclass(frozen=True)
class TreeSplits:
    """One tree's splits: the numerical ones as arrays (decided together), the categorical ones."""

    features: np.ndarray
    thresholds: np.ndarray
    missing_is_nan: np.ndarray  # missing_type NaN: a missing value goes the default way
    missing_is_zero: np.ndarray  # missing_type Zero: a zero (or missing) value does
    default_left: np.ndarray
    categorical: tuple[CategoricalSplit, ...]

    def patterns(self, matrix: np.ndarray) -> np.ndarray:
        """One opaque value per row, equal exactly when two rows take every split the same way."""
        values = matrix[:, self.features]
        missing = np.isnan(values)
        values = np.where(missing & ~self.missing_is_nan, 0.0, values)
        default = (missing & self.missing_is_nan) | (
            self.missing_is_zero & (np.abs(values) <= ZERO_THRESHOLD)
        )
        left = np.where(default, self.default_left, values <= self.thresholds)
        if self.categorical:
            left = np.column_stack([left, *(split.goes_left(matrix) for split in self.categorical)])
        packed = np.packbits(left, axis=1)
        width = -(-packed.shape[1] // 8) * 8  # whole 64-bit words: a one-word pattern sorts fast
        packed = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, width - packed.shape[1]))))
        if width == 8:
            return packed.view(np.uint64).ravel()
        return packed.view(np.dtype((np.void, width))).ravel()


CATEGORICAL, DEFAULT_LEFT = 1, 2  # bits of a split's decision_type in LightGBM's model text
MISSING_ZERO, MISSING_NAN = 1, 2  # decision_type >> 2 & 3


def _numbers(fields: dict[str, str], key: str, dtype: type) -> np.ndarray:
    return np.array(fields.get(key, "").split(), dtype=dtype)


def _tree_splits(fields: dict[str, str]) -> TreeSplits:
    """One tree of LightGBM's model text (its `key=value` lines) as TreeSplits."""
    features = _numbers(fields, "split_feature", np.intp)
    thresholds = _numbers(fields, "threshold", np.float64)
    decision = _numbers(fields, "decision_type", np.int64)
    missing = (decision >> 2) & 3
    boundaries = _numbers(fields, "cat_boundaries", np.int64)
    bitsets = _numbers(fields, "cat_threshold", np.uint32)
    is_categorical = (decision & CATEGORICAL).astype(bool)
    categorical = []
    for node in np.flatnonzero(is_categorical):
        index = int(thresholds[node])  # a categorical split's threshold is its bitset's index
        words = bitsets[boundaries[index] : boundaries[index + 1]]
        table = np.unpackbits(words.astype("<u4").view(np.uint8), bitorder="little").astype(bool)
        categorical.append(CategoricalSplit(int(features[node]), table))
    numerical = ~is_categorical
    return TreeSplits(
        features=features[numerical],
        thresholds=thresholds[numerical],
        missing_is_nan=missing[numerical] == MISSING_NAN,
        missing_is_zero=missing[numerical] == MISSING_ZERO,
        default_left=(decision[numerical] & DEFAULT_LEFT).astype(bool),
        categorical=tuple(categorical),
    )


def tree_splits(model_text: str) -> list[TreeSplits]:
    """Every tree's splits, in tree order, from a booster's model text (`model_to_string`,
    which keeps every threshold at full precision)."""
    trees = []
    for block in model_text.split("end of trees", 1)[0].split("\nTree=")[1:]:
        lines = (line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        trees.append(_tree_splits(dict(lines)))
    return trees


def contributions(booster: lgb.Booster, matrix: np.ndarray, n_jobs: int) -> np.ndarray:
    """`booster.predict(matrix, pred_contrib=True)`: one column per feature, the last the bias."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    if len(matrix) < MIN_ROWS_PER_PATTERN_PATH:
        return booster.predict(matrix, pred_contrib=True, num_threads=n_jobs)
    text = booster.model_to_string()
    trees = tree_splits(text)
    # A booster asked for one tree's contributions is not safe to share between threads (nor
    # with the caller's other threads): each thread takes its own copy.
    boosters: queue.SimpleQueue[lgb.Booster] = queue.SimpleQueue()
    for _ in range(n_jobs):
        boosters.put(lgb.Booster(model_str=text))

    def one_tree(tree: int) -> tuple[np.ndarray, np.ndarray]:
        _, first, inverse = np.unique(
            trees[tree].patterns(matrix), return_index=True, return_inverse=True
        )
        own = boosters.get()
        try:
            distinct = own.predict(
                matrix[first],
                pred_contrib=True,
                start_iteration=tree,
                num_iteration=1,
                num_threads=1,
            )
        finally:
            boosters.put(own)
        return inverse.ravel(), distinct

    total = np.zeros((len(matrix), matrix.shape[1] + 1))
    with ThreadPoolExecutor(max_workers=n_jobs) as pool:
        for inverse, distinct in pool.map(one_tree, range(len(trees))):  # tree order
            total += distinct[inverse]
    return total
