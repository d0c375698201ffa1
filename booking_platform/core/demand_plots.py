"""The picture a revenue manager reads first: one hotel's nights ahead, expected rooms occupied
with the 80 % and 95 % bands, rooms on the books, capacity, and the realised rooms once known."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: plots are files, never windows
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from booking_platform.core.plots import figure_png  # noqa: E402


def net_demand_png(nights: pd.DataFrame, hotel: str, as_of: str) -> bytes:
    """`nights`: one hotel's rows of the net_demand table (and `realised_occupied`, NaN where
    not known yet), night order."""
    rows = nights.sort_values("night")
    x = pd.to_datetime(rows["night"])
    figure, axis = plt.subplots(figsize=(10, 4.2))
    axis.fill_between(
        x,
        rows["occupied_95_low"],
        rows["occupied_95_high"],
        step="mid",
        alpha=0.18,
        color="tab:blue",
        label="95 % interval",
    )
    axis.fill_between(
        x,
        rows["occupied_80_low"],
        rows["occupied_80_high"],
        step="mid",
        alpha=0.35,
        color="tab:blue",
        label="80 % interval",
    )
    axis.plot(x, rows["expected_occupied"], color="tab:blue", label="expected rooms occupied")
    axis.plot(x, rows["rooms_booked"], color="grey", lw=1, ls=":", label="rooms on the books")
    axis.plot(x, rows["capacity"], color="tab:red", lw=1.2, ls="--", label="capacity")
    if "realised_occupied" in rows and rows["realised_occupied"].notna().any():
        axis.plot(x, rows["realised_occupied"], color="black", lw=1.2, label="realised")
    source = str(rows["capacity_source"].iloc[0]) if len(rows) else ""
    axis.set_title(
        f"{hotel}: rooms occupied per night from the bookings on the books on {as_of}\n"
        f"(bookings made later are not counted; capacity: {source})",
        fontsize=10,
    )
    axis.set_ylabel("rooms")
    axis.legend(fontsize=8, loc="upper right", ncols=3)
    axis.set_ylim(bottom=0)
    figure.autofmt_xdate()
    figure.tight_layout()
    png = figure_png(figure)
    plt.close(figure)
    return png
