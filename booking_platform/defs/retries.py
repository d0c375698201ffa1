"""Steps that can fail for a passing reason retry; the others fail at once.

Dagster's RetryPolicy retries on any error, so a bad file or a missing champion would be tried
three times over, with waits, before the run says what is wrong. Instead the steps that read a
URL source or talk to MLflow ask for a retry (dg.RetryRequested, shown in Dagit as "up for
retry") only when core.failures.is_passing says the error is passing: no connection, a timeout,
a server error, a locked store. Once the retries are spent, the step fails with the error itself.
"""

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import dagster as dg

from booking_platform.core.failures import is_passing

MAX_RETRIES = 3
FIRST_WAIT_SECONDS = 2.0  # then 4 and 8: a restarted server or a released lock

Step = TypeVar("Step", bound=Callable[..., Any])


def passing_errors_retried(step: Step) -> Step:
    """Wrap an asset's function (its first argument the context); signature kept for Dagster."""

    @functools.wraps(step)
    def retried(context: dg.AssetExecutionContext, *args: Any, **kwargs: Any) -> Any:
        try:
            return step(context, *args, **kwargs)
        except Exception as error:
            if not is_passing(error) or context.retry_number >= MAX_RETRIES:
                raise
            wait = FIRST_WAIT_SECONDS * 2**context.retry_number
            context.log.warning(f"passing error, retrying in {wait:.0f} s: {error}")
            raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=wait) from error

    return retried  # type: ignore[return-value]
