"""Jobs: the whole graph, daily scoring, and retraining.

Their executor is the Definitions' (defs/executors.py): one process on the embedded profile
(per-step processes cost 3-4 s of start-up each on this 2-core machine for no parallel gain),
Celery workers on the cluster profile.
"""

import dagster as dg

MAIN_JOB_NAME = "booking_platform_job"
SCORING_JOB_NAME = "scoring_job"
RETRAINING_JOB_NAME = "retraining_job"
MODEL_SEARCH_JOB_NAME = "model_search_job"
RETRAIN_REASON_TAG = "booking_platform/retrain_reason"
# minutes of compute on purpose, launched by hand or by its schedule, never with the graph
MODEL_SEARCH = dg.AssetSelection.assets("model_search")

booking_platform_job = dg.define_asset_job(
    MAIN_JOB_NAME,
    selection=dg.AssetSelection.all() - MODEL_SEARCH,
    description="Ingest, clean, build features, check drift, train, gate, register and score.",
)

# Listed, not derived by subtraction: a new asset joins the daily job only when someone adds it
# here. Not in it: training and promotion (retraining_job), the exploratory analysis (the main
# job or by hand) and the model search.
SCORING_ASSETS = (
    "raw_bookings",
    "cleaned_bookings",
    "accepted_bookings",
    "booking_features",
    "drift_report",
    "batch_predictions",
    "realised_performance",
    "ab_test_report",
    "net_demand",
    "estimated_performance",
)

scoring_job = dg.define_asset_job(
    SCORING_JOB_NAME,
    selection=dg.AssetSelection.assets(*SCORING_ASSETS),
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

model_search_job = dg.define_asset_job(
    MODEL_SEARCH_JOB_NAME,
    selection=MODEL_SEARCH,
    executor_def=dg.in_process_executor,
    description="Compare model families and tune LightGBM on the candidate's validation; the "
    "next candidate trains with the best configuration. Promotes nothing.",
)
