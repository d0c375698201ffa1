"""Runs reach the cluster through its queue, as a launch from Dagit does: the CLI asks the
webserver (dagster-graphql's client) to submit them; the daemon launches them when the run and
pool limits allow, and their steps run on the Celery workers."""

from __future__ import annotations

import time
from collections.abc import Iterable

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

from booking_platform.config import Settings
from booking_platform.defs.partitions import as_of_partitions

FINISHED = {dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}
CELERY_WORKER = "Celery worker"  # the metadata key of dagster-celery's "Executing steps" event


def submit_runs(
    settings: Settings,
    instance: dg.DagsterInstance,
    job_name: str,
    dates: Iterable[str],
    tags: dict[str, str] | None = None,
) -> dict[str, str]:
    """Queue one run of `job_name` per as-of date (its partition, added if new); date -> run id."""
    dates = list(dates)
    instance.add_dynamic_partitions(as_of_partitions.name, dates)
    client = DagsterGraphQLClient("127.0.0.1", port_number=settings.cluster.dagit_port)
    return {
        as_of: client.submit_job_execution(
            job_name, tags={**(tags or {}), "dagster/partition": as_of}
        )
        for as_of in dates
    }


def wait_for_runs(
    instance: dg.DagsterInstance, run_ids: Iterable[str], timeout: float = 3600
) -> dict[str, dg.DagsterRun]:
    """Poll the run storage until every run has finished; run id -> run."""
    pending = set(run_ids)
    finished: dict[str, dg.DagsterRun] = {}
    deadline = time.monotonic() + timeout
    while pending:
        for run_id in list(pending):
            run = instance.get_run_by_id(run_id)
            if run is not None and run.status in FINISHED:
                finished[run_id] = run
                pending.discard(run_id)
        if pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"runs still unfinished after {timeout:.0f} s: {pending}")
            time.sleep(1)
    return finished


def run_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    return [e.dagster_event for e in instance.all_logs(run_id) if e.dagster_event is not None]


def step_workers(events: Iterable[dg.DagsterEvent]) -> dict[str, list[str]]:
    """Step key -> the Celery worker(s) that executed it, in order (two when one was lost)."""
    workers: dict[str, list[str]] = {}
    for event in events:
        if event.event_type != dg.DagsterEventType.ENGINE_EVENT or event.step_key is None:
            continue
        worker = event.engine_event_data.metadata.get(CELERY_WORKER)
        if worker is not None:
            workers.setdefault(event.step_key, []).append(str(worker.value))
    return workers
