"""Small synthetic PMS exports in the real source schema, with a learnable cancellation signal.

The real data is never committed; unit tests use these, real-data tests read BOOKINGS_SOURCE.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from booking_platform.core.source import SOURCE_SCHEMA


def make_bookings(rows: int = 4000, seed: int = 7) -> pd.DataFrame:
    """Bookings arriving 2015-07..2017-08 whose cancellation depends on booking-time columns."""
    rng = np.random.default_rng(seed)
    arrival = pd.Timestamp("2015-07-01") + pd.to_timedelta(rng.integers(0, 792, rows), unit="D")
    lead_time = rng.exponential(90, rows).astype(int)
    deposit = rng.choice(["No Deposit", "Non Refund", "Refundable"], rows, p=[0.82, 0.16, 0.02])
    segment = rng.choice(["Online TA", "Offline TA/TO", "Groups", "Direct"], rows)
    requests = rng.poisson(0.6, rows)
    agent = rng.choice([9.0, 240.0, 1.0, 14.0, np.nan], rows)
    logit = (
        -2.6
        + 0.02 * lead_time
        + 4.0 * (deposit == "Non Refund")
        - 1.5 * (requests > 0)
        + 1.2 * (segment == "Groups")
        + 1.0 * (agent == 9.0)
    )
    canceled = rng.random(rows) < 1 / (1 + np.exp(-logit))
    weekend = rng.integers(0, 3, rows)
    week = rng.integers(0, 5, rows)
    booked = arrival - pd.to_timedelta(lead_time, unit="D")
    cancel_day = booked + pd.to_timedelta((rng.random(rows) * lead_time).astype(int), unit="D")
    status_date = np.where(canceled, cancel_day, arrival + pd.to_timedelta(weekend + week, "D"))
    frame = pd.DataFrame(
        {
            "hotel": rng.choice(["City Hotel", "Resort Hotel"], rows),
            "is_canceled": canceled.astype(int),
            "lead_time": lead_time,
            "arrival_date_year": arrival.year,
            "arrival_date_month": arrival.month_name(),
            "arrival_date_week_number": arrival.isocalendar().week.to_numpy(),
            "arrival_date_day_of_month": arrival.day,
            "stays_in_weekend_nights": weekend,
            "stays_in_week_nights": week,
            "adults": rng.integers(1, 4, rows),
            "children": rng.choice([0.0, 0.0, 1.0, np.nan], rows),
            "babies": rng.choice([0, 0, 0, 1], rows),
            "meal": rng.choice(["BB", "HB", "SC"], rows),
            "country": rng.choice(["PRT", "GBR", "FRA", "ESP", np.nan], rows),
            "market_segment": segment,
            "distribution_channel": rng.choice(["TA/TO", "Direct"], rows),
            "is_repeated_guest": rng.choice([0, 1], rows, p=[0.95, 0.05]),
            "previous_cancellations": rng.choice([0, 1], rows, p=[0.9, 0.1]),
            "previous_bookings_not_canceled": rng.choice([0, 1, 2], rows),
            "reserved_room_type": rng.choice(list("ADE"), rows),
            "assigned_room_type": rng.choice(list("ADE"), rows),
            "booking_changes": rng.choice([0, 1], rows),
            "deposit_type": deposit,
            "agent": agent,
            "company": np.nan,
            "days_in_waiting_list": 0,
            "customer_type": rng.choice(["Transient", "Transient-Party", "Contract"], rows),
            "adr": rng.normal(100, 30, rows).clip(5, 400).round(2),
            "required_car_parking_spaces": rng.choice([0, 1], rows, p=[0.93, 0.07]),
            "total_of_special_requests": requests,
            "reservation_status": np.where(canceled, "Canceled", "Check-Out"),
            "reservation_status_date": pd.DatetimeIndex(status_date).strftime("%-m/%-d/%Y"),
        }
    )
    return frame[list(SOURCE_SCHEMA)]


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """Write like the PMS export does: NA as 'NA' (children, country) or 'NULL' (agent, company)."""
    frame = frame.copy()
    for column in ("agent", "company"):
        if column in frame:
            frame[column] = frame[column].map(lambda v: "NULL" if pd.isna(v) else str(int(v)))
    frame.to_csv(path, index=False, na_rep="NA")
    return path
