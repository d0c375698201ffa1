"""Write a larger export built from the real one (core/scaled_export.py): --factor 3 or 10.

    .venv/bin/python benchmarks/scaled_export.py --factor 10 --out /tmp/bookings_x10.csv.gz

The file is for measuring only; never commit it. Point BOOKINGS_SOURCE at it to run the
platform on it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import pandas as pd
from _common import _positive_int, source_parser

from booking_platform.core.scaled_export import scale_export


def main(argv: list[str] | None = None) -> int:
    parser = source_parser(__doc__.splitlines()[0])
    parser.add_argument("--factor", type=_positive_int, required=True, help="times the rows")
    parser.add_argument("--seed", type=int, default=42, help="default: %(default)s")
    parser.add_argument("--out", type=Path, required=True, help=".csv or .csv.gz to write")
    args: argparse.Namespace = parser.parse_args(argv)
    start = time.perf_counter()
    # every value as written: the copies keep the export's own text (NULL, NA, date formats)
    export = pd.read_csv(args.source, dtype=str, keep_default_na=False)
    scaled = scale_export(export, args.factor, args.seed)
    scaled.to_csv(args.out, index=False)
    hotels = scaled["hotel"].nunique()
    print(
        f"{args.out}: {len(scaled):,} bookings of {hotels} hotels "
        f"({args.factor}x {args.source.name}), {time.perf_counter() - start:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
