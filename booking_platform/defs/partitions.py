"""The as-of date as a Dagster partition: one partition per date the platform has run as of.

Dynamic, not monthly: a partition is added when a snapshot lands (landing sensor) or when
`booking-platform run` runs as of BOOKINGS_AS_OF, so the partitions are exactly the dates that
have data. Keys are ISO dates, so their sort order is time order.
"""

from datetime import date

import dagster as dg

as_of_partitions = dg.DynamicPartitionsDefinition(name="as_of_dates")


def partition_as_of(context: dg.AssetExecutionContext) -> date:
    return date.fromisoformat(context.partition_key)


def latest_as_of(instance: dg.DagsterInstance) -> str | None:
    keys = instance.get_dynamic_partitions(as_of_partitions.name)
    return max(keys) if keys else None
