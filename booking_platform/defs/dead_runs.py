"""Runs whose process died (kill -9, out of memory, a reboot) are marked failed.

Dagster marks a run finished from inside the process that executes it. When that process is
killed, the run stays STARTED forever and, with one run at a time (dagster.yaml), the queue never
launches another. Dagster's run monitoring (on in dagster.yaml) fails runs stuck STARTING or
CANCELING, but the default run launcher cannot tell whether a STARTED run's worker is alive. So:
- every run says which process executes it: the CLI tags its in-process runs with host and PID;
  for a run launched by a code server on this host, the PID is that of its RUN_START event;
- `fail_dead_runs` marks failed each unfinished run whose process is gone (or whose PID now
  belongs to a younger process). `dead_run_sensor` calls it every 30 s in the daemon, and the
  CLI calls it before it runs anything.
"""

import json
import os
import socket

import dagster as dg
from dagster._core.storage.tags import GRPC_INFO_TAG

from booking_platform.core.processes import process_running

WORKER_HOST_TAG = "booking_platform/worker_host"
WORKER_PID_TAG = "booking_platform/worker_pid"
UNFINISHED = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", socket.gethostname()}


def in_process_tags() -> dict[str, str]:
    """Tags of a run executed in this process (the CLI's `execute_in_process`)."""
    return {WORKER_HOST_TAG: socket.gethostname(), WORKER_PID_TAG: str(os.getpid())}


def _local_worker(instance: dg.DagsterInstance, record: dg.RunRecord) -> tuple[int, float] | None:
    """(PID, a moment it was known to execute the run) of the process executing the run when it
    runs on this host, else None. The moment tells the process from a younger one that reuses the
    PID: for the CLI's runs, the run's creation (the CLI started before it created the run); for
    a launched run, its RUN_START event, written by the run's own process, which a queued run's
    creation long precedes (taking that would fail a live run still STARTING)."""
    run = record.dagster_run
    if WORKER_PID_TAG in run.tags:
        if run.tags.get(WORKER_HOST_TAG) != socket.gethostname():
            return None
        return int(run.tags[WORKER_PID_TAG]), record.create_timestamp.timestamp()
    grpc = json.loads(run.tags.get(GRPC_INFO_TAG, "{}"))
    if grpc.get("host", "localhost") not in LOCAL_HOSTS or GRPC_INFO_TAG not in run.tags:
        return None
    started = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_START, limit=1
    ).records
    if not started:
        return None  # not started yet: run monitoring's start timeout covers it
    entry = started[0].event_log_entry
    return entry.dagster_event.pid, entry.timestamp


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every unfinished run on this host whose process is gone; say what was done."""
    done = []
    for record in instance.get_run_records(dg.RunsFilter(statuses=UNFINISHED)):
        run = record.dagster_run
        worker = _local_worker(instance, record)
        if worker is None or process_running(*worker):
            continue
        pid = worker[0]
        message = (
            f"the process executing this run (PID {pid} on {socket.gethostname()}) is gone: "
            f"killed or crashed while the run was {run.status.value}; marked failed so that "
            "queued runs go on"
        )
        instance.report_run_failed(run, message)
        done.append(f"run {run.run_id} ({run.job_name}): {message}")
    return done


@dg.sensor(
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every 30 s, mark failed the unfinished runs whose process is gone (kill -9).",
)
def dead_run_sensor(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    done = fail_dead_runs(context.instance)
    for line in done:
        context.log.warning(line)
    return dg.SkipReason("; ".join(done) if done else "every unfinished run's process is alive")
