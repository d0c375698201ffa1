"""Materialisation metadata keys that something reads back: the sensors, the CLI, the tests.

An asset writes them and a sensor reads them; both name them from here, so renaming one cannot
leave a sensor reading a key no asset writes any more.
"""

AS_OF = "as_of"  # the as-of date (ISO) a materialisation is for
# registered_model
CHAMPION_VERSION = "champion_version"
TRAINED_AS_OF = "trained_as_of"
MLFLOW_RUN_ID = "mlflow_run_id"
# realised_performance
WORST_RECENT_ROC_AUC = "worst_recent_roc_auc"
RECENT_MONTHS = "recent_months"
# drift_report
SEASONAL_REFERENCE = "seasonal_reference"
RETRAIN_VERDICT = "retrain_verdict"
DRIFT_SHARE = "drift_share"
# every asset that writes a warehouse table (defs/table_metadata.py): Dagster's own keys, which
# Dagit shows as the table's name, size and columns
TABLE_NAME = "dagster/table_name"
ROW_COUNT = "dagster/row_count"
PARTITION_ROW_COUNT = "dagster/partition_row_count"
COLUMN_SCHEMA = "dagster/column_schema"
