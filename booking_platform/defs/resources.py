"""Resources: where the platform's state lives (all under one data home) and as of when it runs.

MLflow is wrapped in our own ConfigurableResource instead of dagster-mlflow's `mlflow_tracking`:
that legacy (beta) resource opens one MLflow run per Dagster run and creates experiments with a
relative artifact location, while a candidate needs its own run whose artifacts stay under the
data home; see docs/design.md (issue 14) for what was measured.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import dagster as dg
from mlflow.entities.model_registry import ModelVersion

from booking_platform.config import MODEL_NAME, Settings
from booking_platform.core import registry, warehouse
from booking_platform.core.export_audit import DEFAULT_MAX_SHRINK


class PlatformSettings(dg.ConfigurableResource):
    """The data home and the bookings source (defaults: the environment). No as-of date: an
    asset takes it from its run's partition."""

    home: str
    source: str
    max_shrink: float = DEFAULT_MAX_SHRINK
    warehouse_url: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> "PlatformSettings":
        return cls(
            home=str(settings.home),
            source=settings.source,
            max_shrink=settings.max_shrink,
            warehouse_url=settings.warehouse_url,
        )

    @property
    def settings(self) -> Settings:
        """The paths under the home; its `as_of` is the default, not the run's."""
        return Settings(
            home=Path(self.home),
            source=self.source,
            max_shrink=self.max_shrink,
            warehouse_url=self.warehouse_url,
        )


class Warehouse(dg.ConfigurableResource):
    """The tables: a DuckDB file (connections short: DuckDB admits one writer process) or a
    PostgreSQL URL; `core/warehouse.py`'s functions work on either connection."""

    location: str
    lock_wait_seconds: float = warehouse.DEFAULT_LOCK_WAIT_SECONDS

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[Any]:
        with warehouse.connect(
            self.location, read_only=read_only, lock_wait_seconds=self.lock_wait_seconds
        ) as connection:
            yield connection


class MlflowRegistry(dg.ConfigurableResource):
    """MLflow's sqlite tracking store and model registry under the data home."""

    tracking_uri: str
    artifact_root: str
    model_name: str = MODEL_NAME
    ui_url: str = Settings.mlflow_ui_url  # Dagit links runs and model versions there
    dagit_url: str = Settings.dagit_url  # MLflow's Dagster runs link back there

    def run_url(self, run_id: str) -> str:
        return registry.run_url(self.ui_url, self.experiment_id(), run_id)

    def version_url(self, version: str) -> str:
        return registry.model_version_url(self.ui_url, self.model_name, version)

    def dagster_parent_run(self, context: dg.AssetExecutionContext) -> str:
        """The MLflow run of this Dagster run, which the run's candidates nest under."""
        run = context.run
        return registry.parent_run(
            self.experiment_id(),
            run.run_id,
            name=f"dagster {run.job_name} {run.run_id[:8]}",
            note=f"Dagster run {self.dagit_url.rstrip('/')}/runs/{run.run_id} of {run.job_name}"
            + (f", as of {context.partition_key}" if context.has_partition_key else ""),
        )

    def experiment_id(self) -> str:
        return registry.use_store(self.tracking_uri, Path(self.artifact_root))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Each run that uses the registry first closes, as FAILED, the candidates' MLflow runs
        that ended Dagster runs left RUNNING (a run killed while logging its candidate)."""
        instance = context.instance
        if instance is None:  # a resource built outside a run (tests, scripts)
            return

        def finished(dagster_run_id: str) -> bool:
            run = instance.get_run_by_id(dagster_run_id)
            return dagster_run_id != context.run_id and (run is None or run.is_finished)

        for run_id in registry.close_orphaned_runs(self.experiment_id(), finished):
            context.log.warning(f"closed MLflow run {run_id} as FAILED: its Dagster run ended")

    def champion_as_of(self, as_of: date) -> registry.RegisteredVersion | None:
        """The model that was champion as of `as_of` (core/champions.py), loaded."""
        self.experiment_id()
        return registry.load_champion_as_of(self.model_name, as_of)

    def champion_entry_as_of(self, as_of: date) -> ModelVersion | None:
        self.experiment_id()
        return registry.champion_entry_as_of(self.model_name, as_of)

    def champion_entry(self) -> ModelVersion | None:
        """Version and run id only: no model loading, for callers that need just those."""
        self.experiment_id()
        return registry.alias_version(self.model_name)

    def challenger_entry(self) -> ModelVersion | None:
        self.experiment_id()
        return registry.alias_version(self.model_name, registry.CHALLENGER)


class FailureAlerts(dg.ConfigurableResource):
    """Where failed runs are announced besides the warehouse: a webhook URL ("" for none)."""

    webhook_url: str = ""
    dagit_url: str = Settings.dagit_url  # each failure links to its run there


def build_resources(settings: Settings) -> dict[str, object]:
    return {
        "platform": PlatformSettings.from_settings(settings),
        "warehouse": Warehouse(
            location=settings.warehouse_location,
            lock_wait_seconds=settings.warehouse_lock_wait_seconds,
        ),
        "mlflow_registry": MlflowRegistry(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_root=str(settings.mlflow_artifact_root),
            ui_url=settings.mlflow_ui_url,
            dagit_url=settings.dagit_url,
        ),
        "failure_alerts": FailureAlerts(
            webhook_url=settings.failure_webhook_url, dagit_url=settings.dagit_url
        ),
        # UPath-based: a folder here, an object store (s3://...) that workers on other hosts share
        "io_manager": dg.FilesystemIOManager(base_dir=settings.io_manager_uri),
    }
