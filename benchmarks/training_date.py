"""Which question should the model learn? Models trained on earlier and later snapshots of the
real data with two recipes, graded the way the backtest grades a champion (bookings arriving in
a month and not yet cancelled on its 1st, asked on the 1st, against the outcomes known later).

- "at booking": every booking asked at its booking date, the recipe before this one. Its
  training bookings cancel at about 36 %, the graded ones at 9-13 %.
- "as scored": core/training.training_questions, each booking asked once, half at booking and
  half on a 1st of a month while it was still open, as scoring runs ask it.
"""

from __future__ import annotations

from datetime import date

from _common import source_parser
from rich.console import Console
from rich.table import Table
from sklearn.metrics import roc_auc_score

from booking_platform.core.backtest import evaluation_rows
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import build_feature_set
from booking_platform.core.metrics import calibration_error
from booking_platform.core.snapshots import take_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.core.training import fit_classifier, training_questions

TRAINED_ON = (date(2016, 7, 1), date(2016, 11, 1), date(2017, 2, 1))
GRADED_ON = (date(2016, 12, 1), date(2017, 3, 1), date(2017, 6, 1), date(2017, 8, 1))
RECIPES = {
    "at booking": lambda history: history,  # build_feature_set asks history at booking
    "as scored": training_questions,
}


def main() -> None:
    parser = source_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    raw = read_bookings(args.source).frame
    outcomes = clean_bookings(raw).cleaned
    graded = {month: evaluation_rows(outcomes, month) for month in GRADED_ON}
    table = Table(title="ROC AUC / calibration error of each champion, as the backtest grades it")
    table.add_column("trained on snapshot")
    table.add_column("recipe")
    for month in GRADED_ON:
        rate = graded[month]["is_canceled"].mean()
        table.add_column(f"{month:%Y-%m}\n({rate:.1%} cancel)", justify="right")
    for trained in TRAINED_ON:
        cleaned = clean_bookings(take_snapshot(raw, trained), trained).cleaned
        feature_set = build_feature_set(cleaned, trained)
        history, _ = feature_set.part("history")
        for name, recipe in RECIPES.items():
            rows = recipe(history)
            labels = rows["is_canceled"].to_numpy(dtype=int)
            classifier = fit_classifier(feature_set.builder.transform(rows), labels)
            cells = []
            for month in GRADED_ON:
                if month <= trained:
                    cells.append("")
                    continue
                proba = classifier.predict_proba(feature_set.builder.transform(graded[month]))
                truth = graded[month]["is_canceled"].to_numpy(dtype=int)
                auc = roc_auc_score(truth, proba[:, 1])
                cells.append(f"{auc:.4f} / {calibration_error(truth, proba[:, 1]):.3f}")
            table.add_row(str(trained), name, *cells)
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
