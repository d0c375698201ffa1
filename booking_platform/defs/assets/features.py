"""booking_features: booking-time features for history and open bookings as of the run's date."""

import dagster as dg

from booking_platform.core.features import FEATURE_COLUMNS, FeatureSet, build_feature_set
from booking_platform.core.tables import CLEANED_BOOKINGS
from booking_platform.core.warehouse import read_slice
from booking_platform.defs import metadata_keys as keys
from booking_platform.defs.assets.catalog_tags import stage
from booking_platform.defs.assets.ingestion import accepted_bookings
from booking_platform.defs.partitions import as_of_partitions, partition_as_of
from booking_platform.defs.resources import Warehouse


@dg.asset(
    **stage("features"),
    deps=[accepted_bookings],
    kinds={"pandas"},
    partitions_def=as_of_partitions,
)
def booking_features(
    context: dg.AssetExecutionContext, warehouse: Warehouse
) -> dg.Output[FeatureSet]:
    """The fitted feature builder and features of history and open bookings (pickled)."""
    as_of = partition_as_of(context)
    with warehouse.connect(read_only=True) as connection:
        cleaned = read_slice(connection, CLEANED_BOOKINGS.name, as_of)
    feature_set = build_feature_set(cleaned, as_of)
    roles = feature_set.bookings["role"].value_counts()
    context.log.info(f"features as of {as_of}: {roles.to_dict()}")
    return dg.Output(
        feature_set,
        metadata={
            keys.AS_OF: str(as_of),
            "history_rows": int(roles.get("history", 0)),
            "open_rows": int(roles.get("open", 0)),
            "feature_count": len(FEATURE_COLUMNS),
            "features": dg.MetadataValue.json(list(FEATURE_COLUMNS)),
        },
    )
