"""Jobs: the whole graph, in one process (per-step processes cost 3-4 s of start-up each)."""

import dagster as dg

MAIN_JOB_NAME = "booking_platform_job"

booking_platform_job = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=dg.AssetSelection.all(),
    executor_def=dg.in_process_executor,
    description="Ingest, clean, build features, check drift, train, gate, register and score.",
)
