"""Exact TreeSHAP contributions of a LightGBM booster, computed once per leaf and per way to it.

LightGBM's `pred_contrib` runs path-dependent TreeSHAP (Lundberg et al. 2020, "From local
explanations to global understanding with explainable AI for trees", Algorithm 2) for every row
through every tree. That algorithm's value for one tree is a sum over the tree's leaves. For a
leaf with value v whose path splits on the distinct features U, let z_u be the share of the
training rows that the path's splits on feature u let through (the product of child count over
parent count at those splits) and o_u be 1 when the row itself passes all of them, else 0. The
leaf adds to feature u

    v (o_u - z_u) sum over S in U without u of |S|! (|U|-|S|-1)! / |U|!
                  * product of o_j for j in S * product of z_j for the other j in U without u

(EXTEND and UNWIND of the paper compute exactly this). Each o is 0 or 1, so what a leaf adds
depends only on which of its path's features the row passes: a mask of |U| bits. Fast TreeSHAP v2
(Yang 2021, arXiv:2109.09847) tabulates all 2^|U| masks of every leaf; here only the masks the
rows actually show are computed (a day's open bookings reach a leaf with a handful), and then
looked up for every row. Rows that take every split of a tree the same way (one "pattern") share
its masks, so the lookups are done per distinct pattern of each tree.

The splits are taken the way LightGBM takes them (`NumericalDecision` / `CategoricalDecision` in
LightGBM's tree.h): a missing value goes the split's default way when the split learnt one for
missing values and is read as 0 otherwise; a categorical value goes left when its integer is in
the split's category set, and right when it is missing or negative. The values equal
`pred_contrib`'s to about 1e-14 (a test holds them to 1e-9).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import lightgbm as lgb
import numpy as np

# Below this many rows, one `pred_contrib` call is cheaper than reading and tabulating the trees
# (the two took the same time at about 256 rows on 2026-12-03, with the platform's model).
MIN_ROWS_PER_PATTERN_PATH = 256
# A leaf's masks are indexed in a table of 2^|U| entries, 9 bytes each; past this many entries
# over all leaves (150 MB; a booster with very deep paths) `pred_contrib` is used instead. The
# platform's model at 2017-05-01 has 3.3 million.
MAX_MASK_ENTRIES = 1 << 24
ZERO_THRESHOLD = (
    1e-35  # LightGBM's kZeroThreshold: |value| below it is "zero" for missing_type Zero
)


@dataclass(frozen=True)
class FeatureColumns:
    """The matrix transposed, features x rows, so that a split reads one contiguous row: the
    values with missing ones read as 0, and where they were missing."""

    values: np.ndarray
    missing: np.ndarray

    @classmethod
    def of(cls, matrix: np.ndarray) -> FeatureColumns:
        by_feature = np.ascontiguousarray(matrix.T, dtype=np.float64)
        missing = np.isnan(by_feature)
        return cls(np.where(missing, 0.0, by_feature), missing)


@dataclass(frozen=True)
class CategoricalSplit:
    feature: int
    goes_left_table: np.ndarray  # indexed by category code: True for the codes going left

    def goes_left(self, columns: FeatureColumns) -> np.ndarray:
        values = np.where(columns.missing[self.feature], -1.0, columns.values[self.feature])
        codes = np.trunc(values)  # C++ static_cast<int>
        known = (codes >= 0) & (codes < len(self.goes_left_table))
        return known & self.goes_left_table[np.where(known, codes, 0).astype(np.intp)]


@dataclass(frozen=True)
class TreeSplits:
    """One tree's splits: the numerical ones as arrays (decided together), the categorical ones.

    Decisions come as one row per split, the numerical splits first, then the categorical ones,
    each in node order; `row_of_node` says which row holds a node's decision."""

    features: np.ndarray
    thresholds: np.ndarray
    missing_is_nan: np.ndarray  # missing_type NaN: a missing value goes the default way
    missing_is_zero: np.ndarray  # missing_type Zero: a zero (or missing) value does
    default_left: np.ndarray
    categorical: tuple[CategoricalSplit, ...]
    row_of_node: np.ndarray

    def goes_left(self, columns: FeatureColumns) -> np.ndarray:
        """Splits x rows: True where the row goes left."""
        values = columns.values[self.features]
        left = values <= self.thresholds[:, None]
        # a missing value is read as 0 above; these splits send it (or a zero) the default way
        for splits, default in (
            (self.missing_is_nan, columns.missing[self.features[self.missing_is_nan]]),
            (self.missing_is_zero, np.abs(values[self.missing_is_zero]) <= ZERO_THRESHOLD),
        ):
            left[splits] = np.where(default, self.default_left[splits, None], left[splits])
        if self.categorical:
            left = np.vstack([left, *(split.goes_left(columns) for split in self.categorical)])
        return left

    def patterns(self, left: np.ndarray) -> np.ndarray:
        """One opaque value per row of `goes_left`'s answer, equal exactly when two rows take
        every split the same way."""
        packed = np.packbits(left, axis=0).T
        width = -(-packed.shape[1] // 8) * 8  # whole 64-bit words: a one-word pattern sorts fast
        packed = np.ascontiguousarray(np.pad(packed, ((0, 0), (0, width - packed.shape[1]))))
        if width == 8:
            return packed.view(np.uint64).ravel()
        return packed.view(np.dtype((np.void, width))).ravel()


@dataclass(frozen=True)
class TreeLeaves:
    """One tree's leaves as TreeSHAP sees them: a slot per leaf and distinct feature on its path.

    A leaf's slots are consecutive; a slot's bit is its place among its leaf's slots, so a row's
    mask for a leaf has bit b set when the row passes every split of the slot with bit b."""

    values: np.ndarray  # per leaf
    expected: float  # the tree's output averaged over its training rows (the bias)
    path_features: np.ndarray  # per leaf: |U|
    slot_leaf: np.ndarray
    slot_bit: np.ndarray
    slot_feature: np.ndarray
    slot_zero_fraction: np.ndarray  # z of the slot's feature on its leaf's path
    # A slot passes when the row took each of its splits the way its path goes. The ways are
    # rows of [left; not left]; `checks[r]` holds the r-th split of every slot that has one.
    checks: tuple[tuple[np.ndarray, np.ndarray], ...]  # (slots, rows of the ways)

    def masks(self, left: np.ndarray) -> np.ndarray:
        """Leaves x columns of `left`: each leaf's mask for each column (a row or pattern)."""
        ways = np.concatenate([left, ~left])
        passes = ways[self.checks[0][1]]  # every slot has a first split
        for slots, rows in self.checks[1:]:
            passes[slots] &= ways[rows]
        masks = np.zeros((len(self.values), left.shape[1]), np.int32)
        for bit in range(int(self.path_features.max())):
            at_bit = self.slot_bit == bit
            masks[self.slot_leaf[at_bit]] |= passes[at_bit].astype(np.int32) << bit
        return masks


def _numbers(fields: dict[str, str], key: str, dtype: type) -> np.ndarray:
    return np.array(fields.get(key, "").split(), dtype=dtype)


CATEGORICAL, DEFAULT_LEFT = 1, 2  # bits of a split's decision_type in LightGBM's model text
MISSING_ZERO, MISSING_NAN = 1, 2  # decision_type >> 2 & 3


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
    row_of_node = np.empty(len(features), np.intp)
    row_of_node[np.concatenate([np.flatnonzero(numerical), np.flatnonzero(is_categorical)])] = (
        np.arange(len(features))
    )
    return TreeSplits(
        features=features[numerical],
        thresholds=thresholds[numerical],
        missing_is_nan=missing[numerical] == MISSING_NAN,
        missing_is_zero=missing[numerical] == MISSING_ZERO,
        default_left=(decision[numerical] & DEFAULT_LEFT).astype(bool),
        categorical=tuple(categorical),
        row_of_node=row_of_node,
    )


def _tree_leaves(fields: dict[str, str], row_of_node: np.ndarray) -> TreeLeaves:
    """One tree's leaves, their paths read from the children and the training-row counts."""
    values = _numbers(fields, "leaf_value", np.float64)
    leaf_count = _numbers(fields, "leaf_count", np.float64)
    features = _numbers(fields, "split_feature", np.intp)
    left_child = _numbers(fields, "left_child", np.intp)
    right_child = _numbers(fields, "right_child", np.intp)
    node_count = _numbers(fields, "internal_count", np.float64)
    splits = len(features)
    # Per leaf, in leaf order: {feature: (z, [rows of the ways])} along its path, the features
    # in the order the path first meets them.
    paths: list[dict[int, tuple[float, list[int]]]] = [{} for _ in values]
    stack: list[tuple[int, dict[int, tuple[float, list[int]]]]] = [(0, {})] if splits else []
    while stack:
        node, path = stack.pop()
        for child, went_left in ((left_child[node], True), (right_child[node], False)):
            count = leaf_count[~child] if child < 0 else node_count[child]
            way = row_of_node[node] + (0 if went_left else splits)
            feature = int(features[node])
            zero, ways = path.get(feature, (1.0, []))
            extended = {**path, feature: (zero * count / node_count[node], [*ways, way])}
            if child < 0:
                paths[~child] = extended
            else:
                stack.append((child, extended))
    slots = [
        (leaf, bit, feature, zero, ways)
        for leaf, path in enumerate(paths)
        for bit, (feature, (zero, ways)) in enumerate(path.items())
    ]
    deepest = max((len(ways) for *_, ways in slots), default=0)
    checks = tuple(
        (
            np.array([i for i, slot in enumerate(slots) if len(slot[4]) > r], np.intp),
            np.array([slot[4][r] for slot in slots if len(slot[4]) > r], np.intp),
        )
        for r in range(deepest)
    )
    return TreeLeaves(
        values=values,
        expected=float((values * leaf_count).sum() / node_count[0]) if splits else float(values[0]),
        path_features=np.array([len(path) for path in paths], np.int64),
        slot_leaf=np.array([slot[0] for slot in slots], np.intp),
        slot_bit=np.array([slot[1] for slot in slots], np.int64),
        slot_feature=np.array([slot[2] for slot in slots], np.intp),
        slot_zero_fraction=np.array([slot[3] for slot in slots], np.float64),
        checks=checks,
    )


def _tree_fields(model_text: str) -> list[dict[str, str]]:
    return [
        dict(line.split("=", 1) for line in block.splitlines()[1:] if "=" in line)
        for block in model_text.split("end of trees", 1)[0].split("\nTree=")[1:]
    ]


def tree_leaves(model_text: str) -> list[tuple[TreeSplits, TreeLeaves]]:
    """Every tree's splits and leaves, in tree order."""
    trees = []
    for fields in _tree_fields(model_text):
        splits = _tree_splits(fields)
        trees.append((splits, _tree_leaves(fields, splits.row_of_node)))
    return trees


def shapley_shares(zero: np.ndarray, passes: np.ndarray) -> np.ndarray:
    """For rows of one path length d (n x d arrays of z and o): what each feature's (o - z)
    is multiplied by, the Shapley-weighted sum over the subsets of the path's other features.

    The product over all features of (z_j + o_j t) is built once; each feature's own factor is
    then divided back out (by (z_u + t) when o_u = 1, by z_u when o_u = 0), as UNWIND does."""
    n, d = zero.shape
    weights = np.array([factorial(s) * factorial(d - 1 - s) / factorial(d) for s in range(d)])
    product = np.zeros((n, d + 1))
    product[:, 0] = 1.0
    for j in range(d):  # times (z_j + o_j t)
        raised = product[:, :-1] * passes[:, j : j + 1]
        product *= zero[:, j : j + 1]
        product[:, 1:] += raised
    # Without a factor z_u (o_u = 0) the weighted sum is the product's, divided by z_u.
    without_zero = (product[:, :d] @ weights)[:, None] / zero
    # Without a factor (z_u + t) (o_u = 1): synthetic division, top coefficient first.
    quotient = np.broadcast_to(product[:, d : d + 1], (n, d))
    without_pass = weights[d - 1] * quotient
    for s in range(d - 1, 0, -1):
        quotient = product[:, s : s + 1] - zero * quotient
        without_pass = without_pass + weights[s - 1] * quotient
    return np.where(passes == 1.0, without_pass, without_zero)


def mask_entries(trees: list[TreeLeaves]) -> int:
    """How many masks the trees' leaves can show: 2^|U| per leaf."""
    return sum(int((1 << leaves.path_features).sum()) for leaves in trees)


class LeafTable:
    """What each leaf adds to each of its path's features, for every mask the rows showed.

    Every tree's masks are marked first, then computed together, grouped by path length (a
    few large array operations instead of many small ones), then looked up."""

    def __init__(self, trees: list[TreeLeaves]) -> None:
        self.trees = trees
        sizes = [1 << leaves.path_features for leaves in trees]
        tree_starts = np.cumsum([0, *(int(size.sum()) for size in sizes)])[:-1]
        self.leaf_starts = [  # where each leaf's masks begin
            start + np.cumsum(size) - size for start, size in zip(tree_starts, sizes, strict=True)
        ]
        self.entries = mask_entries(trees)
        self.widest = max((int(leaves.path_features.max()) for leaves in trees), default=0)
        self.seen = np.zeros(self.entries, bool)
        self.start_of_entry = np.zeros(0, np.int64)  # where a (leaf, mask)'s shares begin in added
        self.added = np.zeros(0)

    def mark(self, tree: int, masks: np.ndarray) -> None:
        self.seen[(masks + self.leaf_starts[tree][:, None]).ravel()] = True

    def compute(self) -> None:
        entries = np.flatnonzero(self.seen)
        self.start_of_entry = np.full(self.entries, -1, np.int64)
        self.start_of_entry[entries] = np.arange(len(entries)) * self.widest
        starts = np.concatenate(self.leaf_starts)
        owner = np.searchsorted(starts, entries, side="right") - 1  # a leaf of all the trees
        masks = entries - starts[owner]
        path_features = np.concatenate([leaves.path_features for leaves in self.trees])
        values = np.concatenate([leaves.values for leaves in self.trees])
        zeros = np.concatenate([leaves.slot_zero_fraction for leaves in self.trees])
        first_slot = np.cumsum(path_features) - path_features
        added = np.zeros((len(entries), self.widest))
        for d in np.unique(path_features[owner]):
            rows = np.flatnonzero(path_features[owner] == d)
            zero = zeros[first_slot[owner[rows]][:, None] + np.arange(d)]
            passes = ((masks[rows][:, None] >> np.arange(d)) & 1).astype(np.float64)
            shares = shapley_shares(zero, passes)
            added[rows, :d] = shares * (passes - zero) * values[owner[rows]][:, None]
        self.added = added.ravel()

    def by_feature(self, tree: int, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The features the tree splits on, and what it adds to each of them for each column of
        `masks` (features x columns)."""
        leaves = self.trees[tree]
        starts = self.start_of_entry[masks + self.leaf_starts[tree][:, None]]
        added = self.added[starts[leaves.slot_leaf] + leaves.slot_bit[:, None]]
        features, slot_column = np.unique(leaves.slot_feature, return_inverse=True)
        to_features = np.zeros((len(features), len(slot_column)))
        to_features[slot_column, np.arange(len(slot_column))] = 1.0
        return features, to_features @ added


def contributions(booster: lgb.Booster, matrix: np.ndarray, n_jobs: int) -> np.ndarray:
    """`booster.predict(matrix, pred_contrib=True)`: one column per feature, the last the bias.

    One thread: the work is many numpy operations on arrays of a few thousand columns, which
    hold the interpreter lock; two threads measured no faster. `n_jobs` is LightGBM's, for few
    rows or very deep trees."""
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    if len(matrix) < MIN_ROWS_PER_PATTERN_PATH:
        return booster.predict(matrix, pred_contrib=True, num_threads=n_jobs)
    every_tree = tree_leaves(booster.model_to_string())
    bias = sum(leaves.expected for _, leaves in every_tree)
    # A one-leaf tree adds only to the bias. LightGBM keeps one only when nothing could split,
    # as a model's single tree: LightGBM's own call is then cheap.
    trees = [tree for tree in every_tree if len(tree[1].slot_leaf)]
    if not trees or mask_entries([leaves for _, leaves in trees]) > MAX_MASK_ENTRIES:
        return booster.predict(matrix, pred_contrib=True, num_threads=n_jobs)
    table = LeafTable([leaves for _, leaves in trees])
    columns = FeatureColumns.of(matrix)
    reached = []  # per tree: the pattern of each row, each pattern's mask per leaf
    for tree, (splits, leaves) in enumerate(trees):
        left = splits.goes_left(columns)
        _, first, inverse = np.unique(splits.patterns(left), return_index=True, return_inverse=True)
        masks = leaves.masks(left[:, first])
        table.mark(tree, masks)
        reached.append((inverse.ravel(), masks))
    table.compute()
    total = np.zeros((matrix.shape[1], len(matrix)))
    for tree, (inverse, masks) in enumerate(reached):
        features, added = table.by_feature(tree, masks)
        total[features] += added[:, inverse]
    return np.column_stack([total.T, np.full(len(matrix), bias)])
