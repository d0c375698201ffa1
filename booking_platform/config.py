"""Settings read from the environment; no Dagster here, so the CLI and tests share them.

BOOKINGS_SOURCE        a .csv/.zip path or an http(s) URL (downloaded once, cached under the home)
BOOKINGS_AS_OF         the as-of date T (YYYY-MM-DD); default 2017-05-01, see docs/design.md
BOOKING_PLATFORM_HOME  where every output goes; default ./data
CHAMPION_MAX_AGE_DAYS  retrain when the champion's data is older than this (as-of days); 60
BOOKINGS_MAX_SHRINK    refuse an export that shrinks the as-of slice by more than this share; 0.2
WAREHOUSE_LOCK_WAIT_SECONDS  how long a run waits for another process's warehouse lock; 60
BOOKING_PLATFORM_WAREHOUSE_URL  the warehouse tables in PostgreSQL (`postgresql://user@host/db`,
                       schema `warehouse`) instead of the DuckDB file under the home; on the
                       cluster profile it defaults to the database below
BOOKING_FAILURE_WEBHOOK_URL  where failed runs are POSTed as JSON (besides table failed_runs);
                       none by default
MLFLOW_UI_URL          the MLflow UI Dagit links runs and versions to; http://127.0.0.1:5000
DAGIT_URL              the Dagit failed runs and MLflow runs link back to; http://127.0.0.1:3000
MLFLOW_TRACKING_URI    MLflow's tracking server or store; default sqlite under the home (embedded)
                       or http://127.0.0.1:5000 (cluster)

The "cluster" profile (BOOKING_PLATFORM_PROFILE=cluster; default "embedded") runs the same
definitions on PostgreSQL, Celery workers and an MLflow server; see ClusterSettings.
BOOKING_PLATFORM_PG_URL      PostgreSQL server; postgresql://postgres@127.0.0.1:5432
BOOKING_PLATFORM_PG_DB       the Dagster instance's database, created if missing; booking_platform
BOOKING_PLATFORM_BROKER_URL  Celery broker; amqp://guest:guest@127.0.0.1:5672//
BOOKING_PLATFORM_WORKERS     Celery worker processes `make cluster` starts; 2
BOOKING_PLATFORM_DAGIT_PORT  the cluster's webserver port on 127.0.0.1; 3000
BOOKING_PLATFORM_IO_URI      where values pass between steps (a folder, or s3://... in production)
BOOKING_PLATFORM_MLFLOW_ARTIFACTS  the MLflow server's --artifacts-destination
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

from booking_platform.core.export_audit import DEFAULT_MAX_SHRINK
from booking_platform.core.warehouse import DEFAULT_LOCK_WAIT_SECONDS, read_copy_path

DEFAULT_AS_OF = "2017-05-01"
# Chosen with the backtest (docs/design.md, "The backtest"): 60 days retrains on every other monthly
# snapshot and came within 0.0003 of retraining every month; 90 days trailed it by 0.0014.
DEFAULT_CHAMPION_MAX_AGE_DAYS = 60
PUBLIC_SOURCE_URL = (
    "https://raw.githubusercontent.com/rfordatascience/tidytuesday/master/data/2020/2020-02-11/"
    "hotels.csv"
)
MODEL_NAME = "booking_cancellation"
EMBEDDED, CLUSTER = "embedded", "cluster"
PROFILES = (EMBEDDED, CLUSTER)


@dataclass(frozen=True)
class ClusterSettings:
    """Where the cluster profile's services are (only read when that profile is chosen)."""

    pg_url: str = "postgresql://postgres@127.0.0.1:5432"
    pg_db: str = "booking_platform"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    workers: int = 2
    dagit_port: int = 3000
    mlflow_artifacts: str | None = None

    def database_url(self, database: str) -> str:
        """A database on the server, for psycopg2 (dagster-postgres and MLflow use it: the
        locked SQLAlchemy would pick psycopg 3 for a bare postgresql://)."""
        parts = urlsplit(self.pg_url)
        return f"postgresql+psycopg2://{parts.netloc}/{database}"

    @property
    def dagster_storage_url(self) -> str:
        return self.database_url(self.pg_db)

    @property
    def mlflow_db(self) -> str:
        """MLflow's own database beside Dagster's: both have a `runs` table and alembic state."""
        return f"{self.pg_db}_mlflow"

    @property
    def warehouse_url(self) -> str:
        """The warehouse tables: the instance's database (psycopg 3 takes the plain URL)."""
        return f"{self.pg_url.rstrip('/')}/{self.pg_db}"

    @property
    def dagit_url(self) -> str:
        return f"http://127.0.0.1:{self.dagit_port}"


@dataclass(frozen=True)
class Settings:
    home: Path
    source: str
    as_of: date = date.fromisoformat(DEFAULT_AS_OF)
    champion_max_age_days: int = DEFAULT_CHAMPION_MAX_AGE_DAYS
    max_shrink: float = DEFAULT_MAX_SHRINK
    warehouse_lock_wait_seconds: float = DEFAULT_LOCK_WAIT_SECONDS
    warehouse_url: str = ""
    profile: str = EMBEDDED
    mlflow_uri: str | None = None
    io_uri: str | None = None
    cluster: ClusterSettings = field(default_factory=ClusterSettings)
    failure_webhook_url: str = ""
    mlflow_ui_url: str = "http://127.0.0.1:5000"  # `mlflow ui`'s default address
    dagit_url: str = "http://127.0.0.1:3000"  # `make dev`'s

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB file, when the warehouse is not on a PostgreSQL server."""
        return self.home / "warehouse.duckdb"

    @property
    def read_copy_path(self) -> Path:
        """What analysts open: the warehouse as of the last successful run, never locked by it."""
        return read_copy_path(self.warehouse_path)

    @property
    def warehouse_location(self) -> str:
        """Where the tables are: the PostgreSQL URL when one is set, else the DuckDB file."""
        return self.warehouse_url or str(self.warehouse_path)

    @property
    def mlflow_tracking_uri(self) -> str:
        if self.mlflow_uri:
            return self.mlflow_uri
        if self.profile == CLUSTER:
            return "http://127.0.0.1:5000"
        return f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def io_manager_uri(self) -> str:
        """Where step outputs are pickled: any URI universal-pathlib opens (folder, s3://...)."""
        return self.io_uri or str(self.dagster_home / "io")

    @property
    def cluster_dir(self) -> Path:
        """`make cluster`'s PID files, generated configuration and logs/."""
        return self.home / "cluster"

    @property
    def mlflow_artifact_root(self) -> Path:
        return self.home / "mlflow" / "artifacts"

    @property
    def dagster_home(self) -> Path:
        return self.home / "dagster"

    @property
    def reports_dir(self) -> Path:
        return self.home / "reports"

    @property
    def landing_dir(self) -> Path:
        """Where PMS snapshots land (`booking-platform replay` writes them; a sensor ingests)."""
        return self.home / "landing"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def online_predictions_path(self) -> Path:
        """The HTTP service's prediction log (sqlite): the ab_test_report asset reads it."""
        return self.home / "serving" / "online_predictions.sqlite"

    @property
    def compiled_models_path(self) -> Path:
        """The HTTP service's models compiled to machine code, one file per model."""
        return self.home / "serving" / "compiled"


def _default_source(home: Path) -> str:
    local = sorted(glob.glob(str(home / "raw" / "hotel_bookings.csv*")))
    return local[0] if local else PUBLIC_SOURCE_URL


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read the settings; `env` defaults to os.environ (tests pass their own)."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("BOOKING_PLATFORM_HOME") or "data").resolve()
    source = env.get("BOOKINGS_SOURCE") or _default_source(home)
    if "://" not in source:
        source = str(Path(source).resolve())
    as_of_text = env.get("BOOKINGS_AS_OF") or DEFAULT_AS_OF
    try:
        as_of = date.fromisoformat(as_of_text)
    except ValueError as error:
        raise ValueError(f"BOOKINGS_AS_OF must be YYYY-MM-DD, got {as_of_text!r}") from error
    max_age = int(env.get("CHAMPION_MAX_AGE_DAYS") or DEFAULT_CHAMPION_MAX_AGE_DAYS)
    profile = env.get("BOOKING_PLATFORM_PROFILE") or EMBEDDED
    if profile not in PROFILES:
        raise ValueError(f"BOOKING_PLATFORM_PROFILE must be one of {PROFILES}, got {profile!r}")
    defaults = ClusterSettings()
    cluster = ClusterSettings(
        pg_url=env.get("BOOKING_PLATFORM_PG_URL") or defaults.pg_url,
        pg_db=env.get("BOOKING_PLATFORM_PG_DB") or defaults.pg_db,
        broker_url=env.get("BOOKING_PLATFORM_BROKER_URL") or defaults.broker_url,
        workers=int(env.get("BOOKING_PLATFORM_WORKERS") or defaults.workers),
        dagit_port=int(env.get("BOOKING_PLATFORM_DAGIT_PORT") or defaults.dagit_port),
        mlflow_artifacts=env.get("BOOKING_PLATFORM_MLFLOW_ARTIFACTS") or None,
    )
    # the cluster's tables sit in the instance's database (schema `warehouse`)
    default_warehouse = cluster.warehouse_url if profile == CLUSTER else ""
    max_shrink = float(env.get("BOOKINGS_MAX_SHRINK") or DEFAULT_MAX_SHRINK)
    if not 0 <= max_shrink < 1:
        raise ValueError(f"BOOKINGS_MAX_SHRINK must be a share in [0, 1), got {max_shrink}")
    lock_wait = float(env.get("WAREHOUSE_LOCK_WAIT_SECONDS") or DEFAULT_LOCK_WAIT_SECONDS)
    return Settings(
        home=home,
        source=source,
        as_of=as_of,
        champion_max_age_days=max_age,
        max_shrink=max_shrink,
        warehouse_lock_wait_seconds=lock_wait,
        warehouse_url=env.get("BOOKING_PLATFORM_WAREHOUSE_URL") or default_warehouse,
        profile=profile,
        mlflow_uri=env.get("MLFLOW_TRACKING_URI") or None,
        io_uri=env.get("BOOKING_PLATFORM_IO_URI") or None,
        cluster=cluster,
        failure_webhook_url=env.get("BOOKING_FAILURE_WEBHOOK_URL") or "",
        mlflow_ui_url=env.get("MLFLOW_UI_URL") or Settings.mlflow_ui_url,
        dagit_url=env.get("DAGIT_URL") or Settings.dagit_url,
    )
