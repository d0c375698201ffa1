import math
import pickle

import numpy as np
import pandas as pd

from booking_platform.core.shared_strings import share_repeated_strings


def _distinct_objects(values: list[str]) -> list[str]:
    # "".join builds a new str each time, as a CSV reader or DuckDB's .df() does per cell
    return ["".join(list(v)) for v in values]


def _frame() -> pd.DataFrame:
    hotels = _distinct_objects(["City Hotel", "Resort Hotel"] * 500)
    return pd.DataFrame(
        {
            "hotel": hotels,
            "agent": [None, "9", float("nan"), "240"] * 250,
            "booking_ref": _distinct_objects([f"ref-{i}" for i in range(1000)]),
            "adr": np.arange(1000, dtype=float),
        }
    )


def test_repeated_strings_become_one_object_each_and_keep_their_values() -> None:
    frame = _frame()
    before = frame.copy(deep=True)
    assert len({id(v) for v in frame["hotel"]}) == 1000

    assert share_repeated_strings(frame) is frame
    assert len({id(v) for v in frame["hotel"]}) == 2
    pd.testing.assert_frame_equal(frame, before)
    assert frame["hotel"].dtype == object
    # missing values keep their kind: None is not turned into NaN, nor NaN into None
    assert frame["agent"][0] is None and math.isnan(frame["agent"][2])
    assert len({id(v) for v in frame["agent"] if isinstance(v, str)}) == 2


def test_mostly_distinct_and_empty_columns_are_left_alone() -> None:
    frame = _frame().assign(note=None)
    ids = [id(v) for v in frame["booking_ref"]]
    share_repeated_strings(frame)
    assert [id(v) for v in frame["booking_ref"]] == ids
    assert frame["note"].isna().all()
    assert share_repeated_strings(frame.head(0)).empty


def test_sharing_survives_pickling_and_shrinks_it() -> None:
    frame = _frame()
    unshared = len(pickle.dumps(frame))
    restored = pickle.loads(pickle.dumps(share_repeated_strings(frame)))
    assert len({id(v) for v in restored["hotel"]}) == 2
    assert len(pickle.dumps(frame)) < unshared
    pd.testing.assert_frame_equal(restored, frame)
