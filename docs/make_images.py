"""Regenerate the analysis pictures in docs/measurements.md from the configured bookings source
(`make docs-images`).

Reads BOOKINGS_SOURCE and BOOKINGS_AS_OF like the platform, builds the same views as the
eda_report asset (core/eda.py) and writes two of them next to this file.
"""

from pathlib import Path

from booking_platform.config import load_settings
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.eda import build_eda
from booking_platform.core.source import read_bookings, resolve_source

README_VIEWS = ("seasonality", "by_lead_time")
DOCS = Path(__file__).resolve().parent


def main() -> None:
    settings = load_settings()
    source = read_bookings(resolve_source(settings.source, settings.cache_dir))
    report = build_eda(clean_bookings(source.frame).cleaned, settings.as_of)
    try:
        for view in report.views:
            if view.name in README_VIEWS:
                path = DOCS / f"eda_{view.name}.png"
                path.write_bytes(view.png)
                print(f"wrote {path} ({len(view.png):,} bytes)")
    finally:
        report.close()


if __name__ == "__main__":
    main()
