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
    it if this process is killed.

    This is `JobDefinition.execute_in_process` without its output capture: that keeps every
    step's output in memory until the run ends (so `output_for_node` can return it), which
    held the feature set, the candidate and the predictions at once: 0.8 GB of the 5.3 GB
    peak at ten times the data (docs/measurements.md). Outputs live in the IO manager; the
    result keeps the run's events, which is all the callers read.
    """
    import dagster as dg
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._core.execution.execute_in_process import (
        core_execute_in_process,
        merge_run_tags,
    )

    from booking_platform.defs.dead_runs import in_process_tags
    from booking_platform.defs.partitions import as_of_partitions

    instance.add_dynamic_partitions(as_of_partitions.name, [as_of])
    selection = [dg.AssetKey(a) for a in assets or []]
    ephemeral_job = job.as_ephemeral_job(
        resource_defs={}, input_values={}, asset_selection=selection
    )
    with partition_loading_context(dynamic_partitions_store=instance) as context:
        ephemeral_job.validate_partition_key(
            partition_key=as_of, selected_asset_keys=set(selection), context=context
        )
    if not run_config and ephemeral_job.partitioned_config:
        run_config = ephemeral_job.partitioned_config.get_run_config_for_partition_key(as_of)
    return core_execute_in_process(
        job=InMemoryJob(job_def=ephemeral_job),
        run_config=run_config or {},
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=False,
        run_tags=merge_run_tags(
            job_def=job,
            partition_key=as_of,
            tags={**(tags or {}), **in_process_tags()},
            asset_selection=selection,
            instance=instance,
            run_config=run_config,
        ),
        run_id=run_id,
        asset_selection=frozenset(selection),
    )
