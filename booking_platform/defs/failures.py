"""run_failure_recorder: every failed run, with its step and error, in the warehouse table
`failed_runs` and, when a webhook URL is configured, POSTed to it.

Recording comes first and never waits on the webhook: a webhook that is down is logged and the
failure stays on record (the sensor does not raise, which would hold back the failures after it).
"""

from datetime import UTC, datetime

import dagster as dg

from booking_platform.core.failures import FailedRun, post_webhook, record_failure
from booking_platform.core.tables import FAILED_RUNS
from booking_platform.defs.resources import FailureAlerts, Warehouse

PARTITION_TAG = "dagster/partition"


def failed_steps(context: dg.RunFailureSensorContext, run_url: str) -> list[FailedRun]:
    """One entry per failed step, or one for the run when it failed outside its steps."""
    run = context.dagster_run
    ended = context.instance.get_run_stats(run.run_id).end_time
    base = {
        "run_id": run.run_id,
        "job_name": run.job_name,
        "partition": run.tags.get(PARTITION_TAG, ""),
        "failed_at": (datetime.fromtimestamp(ended, UTC) if ended else datetime.now(UTC)).isoformat(
            timespec="seconds"
        ),
    }
    steps = []
    for event in context.get_step_failure_events():
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:  # the user's error, not Dagster's
            error = error.cause
        text = error.message.strip() if error else event.message or ""
        steps.append({"step": event.step_key or "", "error": text})
    if not steps:
        steps = [{"step": "", "error": context.failure_event.message or "run failed"}]
    return [FailedRun(**base, **step, run_url=run_url) for step in steps]


@dg.run_failure_sensor(
    name="run_failure_recorder",
    monitor_all_code_locations=False,
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=30,
    description="Records every failed run (job, as-of date, failed step, error) in the "
    f"warehouse table {FAILED_RUNS.name} and POSTs it to the configured webhook, if any.",
)
def run_failure_recorder(
    context: dg.RunFailureSensorContext, warehouse: Warehouse, failure_alerts: FailureAlerts
) -> None:
    run_url = f"{failure_alerts.dagit_url.rstrip('/')}/runs/{context.dagster_run.run_id}"
    failures = failed_steps(context, run_url)
    with warehouse.connect() as connection:
        for failure in failures:
            record_failure(connection, failure)
    context.log.info(f"recorded {len(failures)} failure(s) of run {context.dagster_run.run_id}")
    if failure_alerts.webhook_url:
        try:
            post_webhook(failure_alerts.webhook_url, failures)
        except OSError as error:
            context.log.warning(f"webhook {failure_alerts.webhook_url} not reached: {error}")
