"""One Python string per distinct value in a frame's text columns.

DuckDB's `.df()` and pandas' CSV reader make a new `str` object for every cell, so a column
like `hotel` costs about 60 bytes per row for a handful of distinct values: at ten times the
real export (1.2 million rows) the cleaned bookings' twelve text columns held 800 MB that 20 MB
of pointers can carry (docs/measurements.md, "Ten times the data"). Sharing the objects keeps
the column's dtype and values (object, the same strings, missing values untouched), so no
reader can tell; pickle keeps the sharing, so Dagster's stored outputs shrink alike.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# a column with more distinct values than this share of its rows (a booking id, a price read
# as text) gains little and is left as it is
MAX_DISTINCT_SHARE = 0.5


def share_repeated_strings(frame: pd.DataFrame) -> pd.DataFrame:
    """Replace each object column's repeated strings by one shared object each, in place.

    Returns `frame` for chaining.
    """
    for column in frame.select_dtypes(include="object").columns:
        values = frame[column].to_numpy()
        codes, distinct = pd.factorize(values)  # missing values get code -1
        if not len(distinct) or len(distinct) > MAX_DISTINCT_SHARE * len(values):
            continue
        shared = np.asarray(distinct, dtype=object).take(np.maximum(codes, 0))
        missing = codes < 0
        shared[missing] = values[missing]  # None stays None, NaN stays NaN
        frame[column] = pd.Series(shared, index=frame.index, dtype=object)
    return frame
