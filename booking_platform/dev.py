"""`make dev`: Dagit + daemon on the same definitions, with the instance under the data home.

Started from a shell script with `&`, `dagster dev` inherits ignored SIGINT/SIGTERM and cannot be
stopped by PID; restoring the default handlers before exec makes `kill PID` work.
"""

import argparse
import os
import signal
import sys
from pathlib import Path

from booking_platform.config import load_settings
from booking_platform.runtime import prepare_dagster_home

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="3000")
    args = parser.parse_args()
    prepare_dagster_home(load_settings())
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    dagster = str(Path(sys.executable).with_name("dagster"))
    os.chdir(REPO_ROOT)
    os.execv(
        dagster,
        [dagster, "dev", "-w", "workspace.yaml", "-h", args.host, "-p", str(args.port)],
    )


if __name__ == "__main__":
    main()
