"""The executor of every job, chosen by the profile: the same jobs run in one process
(embedded) or step by step on Celery workers (cluster).

The workers' Celery app (booking_platform/cluster/celery_app.py) is built from the same
`celery_executor_config`, so the run that submits a step and the worker that takes it agree on
broker, queue and delivery rules.
"""

import dagster as dg
from dagster._core.execution.retries import RetryMode
from dagster_celery import celery_executor
from dagster_celery.executor import CeleryExecutor

from booking_platform.config import CLUSTER, Settings

# The promotion sequence (candidate -> gate -> registered_model -> alias) holds this pool; the
# cluster's instance limits it to one run at a time (pools granularity "run", dagster-cluster.yaml).
PROMOTION_POOL = "promotion"

CELERY_SETTINGS = {
    # a step's message is acknowledged when the step has finished, so a worker killed mid-step
    # leaves it on the queue for another worker instead of losing it (the run would wait forever)
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    # one step at a time per worker, none reserved ahead: idle workers take the next step
    "worker_prefetch_multiplier": 1,
    # a solo-pool worker runs the step in its main loop and cannot send AMQP heartbeats during a
    # long step; the broker would close its connection and hand the step to a second worker.
    # A killed worker's socket is closed by the kernel, which the broker sees at once.
    "broker_heartbeat": 0,
    "broker_connection_retry_on_startup": True,
}


def celery_executor_config(settings: Settings) -> dict[str, object]:
    return {
        "broker": settings.cluster.broker_url,
        "backend": "rpc://",
        "config_source": CELERY_SETTINGS,
    }


def celery_app_args(settings: Settings) -> dict[str, object]:
    """What dagster-celery gives `Celery(...)` in the run: the workers use exactly this."""
    config = celery_executor_config(settings)
    return CeleryExecutor(
        retries=RetryMode(RetryMode.DISABLED),
        broker=config["broker"],
        backend=config["backend"],
        config_source=config["config_source"],
    ).app_args()


def build_executor(settings: Settings) -> dg.ExecutorDefinition:
    if settings.profile == CLUSTER:
        return celery_executor.configured(celery_executor_config(settings), name="celery")
    # one process, no 3-4 s start-up per step ("Materialize all" in Dagit too)
    return dg.in_process_executor
