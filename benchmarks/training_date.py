"""Does a later champion grade better? Models trained on earlier and later snapshots of the real
data, graded the way the backtest grades them (bookings arriving in a month and not yet cancelled
on its 1st, against the outcomes known later).

The backtest found retraining worth little (README, "The backtest"). This script shows why, per
training date and evaluation month: ROC AUC / calibration error, the share of the graded
bookings that cancel against the share of training arrivals that did, and the same models without
the two day-index trend features (a suspect that turned out not to be the cause).
"""

from __future__ import annotations

from datetime import date

import numpy as np
from _common import source_parser
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

from booking_platform.core.backtest import evaluation_rows
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.snapshots import take_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.core.training import calibration_error, fit_classifier

TRAINED_ON = (date(2016, 7, 1), date(2016, 11, 1), date(2017, 2, 1))
GRADED_ON = (date(2016, 12, 1), date(2017, 3, 1), date(2017, 6, 1), date(2017, 8, 1))
DAY_INDEX_FEATURES = ("arrival_day_index", "booking_day_index")


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    raw = read_bookings(args.source).frame
    outcomes = clean_bookings(raw).cleaned
    graded = {month: evaluation_rows(outcomes, month) for month in GRADED_ON}
    table = Table(title="ROC AUC / calibration error of each champion, as the backtest grades it")
    table.add_column("trained on snapshot")
    table.add_column("features")
    table.add_column("trained arrivals\ncancelled", justify="right")
    for month in GRADED_ON:
        rate = graded[month]["is_canceled"].mean()
        table.add_column(f"{month:%Y-%m}\n({rate:.1%} cancel)", justify="right")
    for trained in TRAINED_ON:
        cleaned = clean_bookings(take_snapshot(raw, trained), trained).cleaned
        feature_set = build_feature_set(cleaned, trained)
        history, features = feature_set.part("history")
        labels = history["is_canceled"].to_numpy(dtype=int)
        for name, dropped in (("all", ()), ("no day index", DAY_INDEX_FEATURES)):
            columns = [c for c in features.columns if c not in dropped]
            classifier = fit_classifier(features[columns], labels)
            cells = []
            for month in GRADED_ON:
                if month <= trained:
                    cells.append("")
                    continue
                rows = graded[month]
                proba = classifier.predict_proba(feature_set.builder.transform(rows)[columns])[:, 1]
                truth = rows["is_canceled"].to_numpy(dtype=int)
                auc = roc_auc_score(truth, proba)
                cells.append(f"{auc:.4f} / {calibration_error(truth, proba):.3f}")
            table.add_row(str(trained), name, f"{np.mean(labels):.1%}", *cells)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
