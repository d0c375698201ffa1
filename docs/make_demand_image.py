"""Regenerate the net-demand picture in docs/measurements.md: one hotel's next 120 nights as of
BOOKINGS_AS_OF (default 2017-05-01), with the realised rooms the export knows now.

The same path as the replay (core/demand_replay.py `replay_month`): the snapshot of that date,
a model trained on it, the open bookings scored, the nights forecast; then core/demand_plots.py.

    BOOKINGS_SOURCE=... .venv/bin/python docs/make_demand_image.py ["City Hotel"]
"""

import sys
from pathlib import Path

from booking_platform.config import load_settings
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.demand_plots import net_demand_png
from booking_platform.core.demand_replay import replay_month
from booking_platform.core.source import read_bookings, resolve_source

DOCS = Path(__file__).resolve().parent


def main() -> None:
    hotel = sys.argv[1] if len(sys.argv) > 1 else "City Hotel"
    settings = load_settings()
    raw = read_bookings(resolve_source(settings.source, settings.cache_dir)).frame
    month = replay_month(raw, clean_bookings(raw).cleaned, settings.as_of)
    nights = month.nights[month.nights["hotel"] == hotel]
    path = DOCS / f"net_demand_{hotel.lower().replace(' ', '_')}.png"
    path.write_bytes(net_demand_png(nights, hotel, str(settings.as_of)))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
