"""Static pictures: small PNGs for MLflow, Dagit's markdown metadata and HTML pages.

A candidate model's pictures (feature importance, calibration on the holdout, ROC AUC per
holdout month) live here too, so MLflow and Dagit show the same ones.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.layout_engine import PlaceHolderLayoutEngine  # noqa: E402
from sklearn.calibration import calibration_curve  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from booking_platform.core.training import CancellationModel, ValidatedModel  # noqa: E402

# Small images: Dagit keeps them, base64-encoded, in the event log with the materialisation.
DPI = 80
CALIBRATION_BINS = 10  # the same bins as the calibration error the gate judges
CANDIDATE_PLOT_TITLES = {
    "feature_importance": "Global feature importance (total gain)",
    "calibration": "Calibration on the out-of-time holdout",
    "monthly_roc_auc": "ROC AUC per month of the out-of-time holdout",
}


def figure_png(figure: plt.Figure) -> bytes:
    # tight_layout() leaves a placeholder layout engine behind, and savefig draws a figure with
    # any engine once more before drawing it for real: a third of each picture's cost, for a
    # layout that is already done (the bytes are the same without it)
    if isinstance(figure.get_layout_engine(), PlaceHolderLayoutEngine):
        figure.set_layout_engine(None)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def markdown_image(title: str, png: bytes, note: str = "") -> str:
    """Markdown Dagit renders with the picture inline (a data URI: no file server needed)."""
    text = f"**{title}**\n\n"
    if note:
        text += f"{note}\n\n"
    return text + f"![{title}]({png_data_uri(png)})"


def importance_figure(model: CancellationModel, top: int = 20) -> plt.Figure:
    booster = model.classifier.booster_
    gains = pd.Series(
        booster.feature_importance(importance_type="gain"), index=booster.feature_name()
    ).nlargest(top)[::-1]
    figure, axis = plt.subplots(figsize=(8, 6))
    axis.barh(gains.index, gains.to_numpy())
    axis.set_xlabel("total gain")
    axis.set_title(f"Feature importance (top {top})")
    figure.tight_layout()
    return figure


def calibration_figure(labels: np.ndarray, proba: np.ndarray) -> plt.Figure:
    """Reliability curve on the holdout, with how many bookings fall in each bin."""
    observed, predicted = calibration_curve(labels, proba, n_bins=CALIBRATION_BINS)
    figure, (curve, counts) = plt.subplots(
        2, 1, figsize=(6, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curve.plot(predicted, observed, marker="o", label="candidate")
    curve.set_ylabel("observed cancellation rate")
    curve.set_title("Calibration on the out-of-time holdout")
    curve.legend(loc="upper left")
    counts.hist(proba, bins=CALIBRATION_BINS, range=(0, 1), color="#4c72b0")
    counts.set_xlabel("predicted probability")
    counts.set_ylabel("bookings")
    figure.tight_layout()
    return figure


def monthly_roc_auc(holdout: pd.DataFrame, proba: np.ndarray) -> pd.DataFrame:
    """ROC AUC per arrival month of the holdout (NaN for a month with one class only)."""
    frame = pd.DataFrame(
        {
            "arrival_month": holdout["arrival_date"].dt.strftime("%Y-%m").to_numpy(),
            "is_canceled": holdout["is_canceled"].to_numpy(),
            "proba": proba,
        }
    )
    rows = []
    for month, part in frame.groupby("arrival_month"):
        both = part["is_canceled"].nunique() == 2
        rows.append(
            {
                "arrival_month": month,
                "bookings": len(part),
                "cancel_rate": float(part["is_canceled"].mean()),
                "roc_auc": float(roc_auc_score(part["is_canceled"], part["proba"]))
                if both
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def monthly_roc_auc_figure(table: pd.DataFrame) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(6, 3.5))
    bars = axis.bar(table["arrival_month"], table["roc_auc"], color="#55a868")
    for bar, count in zip(bars, table["bookings"], strict=True):
        axis.annotate(
            f"{count:,} bookings",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axis.set_ylim(0.5, 1.02)
    axis.set_xlabel("arrival month")
    axis.set_ylabel("ROC AUC")
    axis.set_title("ROC AUC per month of the out-of-time holdout")
    figure.tight_layout()
    return figure


def candidate_plots(validated: ValidatedModel) -> dict[str, bytes]:
    """PNG per picture name: what MLflow logs under plots/ and Dagit shows."""
    labels = validated.holdout["is_canceled"].to_numpy()
    figures = {
        "feature_importance": importance_figure(validated.model),
        "calibration": calibration_figure(labels, validated.holdout_proba),
        "monthly_roc_auc": monthly_roc_auc_figure(
            monthly_roc_auc(validated.holdout, validated.holdout_proba)
        ),
    }
    try:
        return {name: figure_png(figure) for name, figure in figures.items()}
    finally:
        for figure in figures.values():
            plt.close(figure)
