"""The Celery app the cluster's workers run (`celery -A booking_platform.cluster.celery_app`).

dagster-celery's own `dagster_celery.app` reads its broker from a generated module; this one is
built from the same settings as the jobs' executor (defs/executors.py), so both sides agree.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

# imported before the worker says "ready.": the first step a worker takes would otherwise pay
# for loading the definitions (about 30 s measured on a busy 2-core machine)
import booking_platform.definitions  # noqa: F401
from booking_platform.config import load_settings
from booking_platform.defs.executors import celery_app_args

app = make_app(celery_app_args(load_settings()))
execute_plan = create_task(app)
