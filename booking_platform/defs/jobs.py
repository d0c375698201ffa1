"""Jobs: the whole graph, daily scoring, and retraining.

Their executor is the Definitions' (defs/executors.py): one process on the embedded profile
(per-step processes cost 3-4 s of start-up each on this 2-core machine for no parallel gain),
Celery workers on the cluster profile.
"""

import dagster as dg

MAIN_JOB_NAME = "booking_platform_job"
SCORING_JOB_NAME = "scoring_job"
RETRAINING_JOB_NAME = "retraining_job"
RETRAIN_REASON_TAG = "booking_platform/retrain_reason"

booking_platform_job = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=dg.AssetSelection.all(),
    description="Ingest, clean, build features, check drift, train, gate, register and score.",
)

scoring_job = dg.define_asset_job(
    SCORING_JOB_NAME,
    # the exploratory analysis is refreshed by the main job or by hand, not every morning
    selection=dg.AssetSelection.all()
    - dg.AssetSelection.assets("candidate_model", "registered_model")
    - dg.AssetSelection.groups("analysis"),
    description="Ingest the latest data and score the open bookings with the current champion.",
)

retraining_job = dg.define_asset_job(
    RETRAINING_JOB_NAME,
    selection=dg.AssetSelection.assets("candidate_model").downstream(),
    # a person launching it from Dagit; sensors and schedules override the reason
    tags={RETRAIN_REASON_TAG: "manual"},
    description="Train a candidate on the current features; the gate decides whether it is "
    "registered as champion and scores the open bookings.",
)
