"""Running the platform's jobs from Python: the Dagster home a process uses, and one job run as
of a date. The CLI, `make dev`, the tests and the benchmarks all go through here, so a run
started anywhere gets the same instance settings, partition and dead-run recovery."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

from booking_platform.config import CLUSTER, EMBEDDED, Settings

if TYPE_CHECKING:  # Dagster is imported by the functions that run jobs: `predict` never needs it
    import dagster as dg

REPO_ROOT = Path(__file__).resolve().parent.parent
INSTANCE_YAML = {EMBEDDED: "dagster.yaml", CLUSTER: "dagster-cluster.yaml"}


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME under the data home, with the profile's instance settings (dagster.yaml).

    On the cluster profile the instance's database is created when missing, and its URL is put
    in the environment that dagster-cluster.yaml reads (and that processes started from here
    inherit).
    """
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / INSTANCE_YAML[settings.profile], home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.profile == CLUSTER:
        from booking_platform.cluster.postgres import ensure_database

        ensure_database(settings.cluster.pg_url, settings.cluster.pg_db)
        os.environ["BOOKING_PLATFORM_DAGSTER_STORAGE_URL"] = settings.cluster.dagster_storage_url
    return home


def recover_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed the runs a killed process left unfinished (defs/dead_runs.py); what it did."""
    from booking_platform.defs.dead_runs import fail_dead_runs

    return fail_dead_runs(instance)


def execute_as_of(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    as_of: str,
    *,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
    run_config: dict[str, Any] | None = None,
    assets: list[str] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run `job` (or only `assets` of it) in this process as of `as_of`, its partition added if
    new; Dagit sees the run. The run is tagged with this process, so that dead-run recovery finds
    it if this process is killed."""
    import dagster as dg

    from booking_platform.defs.dead_runs import in_process_tags
    from booking_platform.defs.partitions import as_of_partitions

    instance.add_dynamic_partitions(as_of_partitions.name, [as_of])
    return job.execute_in_process(
        instance=instance,
        partition_key=as_of,
        run_id=run_id,
        raise_on_error=False,
        run_config=run_config,
        tags={**(tags or {}), **in_process_tags()},
        asset_selection=assets and [dg.AssetKey(a) for a in assets],
    )
