"""booking_features: booking-time features for history and open bookings as of the run's date."""

import dagster as dg

from booking_platform.core.features import FEATURE_COLUMNS, FeatureSet, build_feature_set
from booking_platform.core.warehouse import read_table
from booking_platform.defs.assets.ingestion import CLEANED_TABLE, cleaned_bookings
from booking_platform.defs.resources import PlatformSettings, Warehouse


@dg.asset(group_name="features", deps=[cleaned_bookings], kinds={"pandas"})
def booking_features(
    context: dg.AssetExecutionContext, platform: PlatformSettings, warehouse: Warehouse
) -> dg.Output[FeatureSet]:
    """The fitted feature builder and features of history and open bookings (pickled)."""
    as_of = platform.settings.as_of
    with warehouse.connect(read_only=True) as connection:
        cleaned = read_table(connection, CLEANED_TABLE)
    feature_set = build_feature_set(cleaned, as_of)
    roles = feature_set.bookings["role"].value_counts()
    context.log.info(f"features as of {as_of}: {roles.to_dict()}")
    return dg.Output(
        feature_set,
        metadata={
            "as_of": str(as_of),
            "history_rows": int(roles.get("history", 0)),
            "open_rows": int(roles.get("open", 0)),
            "feature_count": len(FEATURE_COLUMNS),
            "features": dg.MetadataValue.json(list(FEATURE_COLUMNS)),
        },
    )
