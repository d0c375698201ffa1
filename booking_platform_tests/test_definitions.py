import dagster as dg

from booking_platform.definitions import defs
from booking_platform.defs.assets.catalog_tags import GROUP, STAGE_TAG
from booking_platform.defs.jobs import MAIN_JOB_NAME
from booking_platform_tests.conftest import ALL_ASSETS, MODEL_SEARCH_ASSET, SEVEN_ASSETS_UPSTREAM


def test_one_definitions_with_the_seven_assets_and_their_lineage() -> None:
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == ALL_ASSETS | {MODEL_SEARCH_ASSET}
    parents = {
        key.to_user_string(): {p.to_user_string() for p in graph.get(key).parent_keys}
        for key in graph.get_all_asset_keys()
    }
    assert parents == {
        **SEVEN_ASSETS_UPSTREAM,
        "realised_performance": {"accepted_bookings", "batch_predictions"},
        "eda_report": {"accepted_bookings"},
        "ab_test_report": {"accepted_bookings"},
        "net_demand": {"booking_features", "batch_predictions"},
        "estimated_performance": {"booking_features", "batch_predictions"},
        MODEL_SEARCH_ASSET: {"booking_features"},
    }


def test_the_promotion_gate_is_a_blocking_check_in_the_main_job() -> None:
    job = defs.resolve_job_def(MAIN_JOB_NAME)
    gate_key = dg.AssetCheckKey(dg.AssetKey("candidate_model"), "promotion_gate")
    assert gate_key in job.asset_layer.asset_graph.asset_check_keys
    spec = defs.resolve_asset_graph().get_check_spec(gate_key)
    assert spec.blocking


def test_dagit_opens_on_the_assets_each_with_stage_owners_and_code() -> None:
    graph = defs.resolve_asset_graph()
    nodes = [graph.get(key) for key in graph.get_all_asset_keys()]
    # Dagit draws groups only when there are several, each folded: one group shows the assets
    assert {node.group_name for node in nodes} == {GROUP}
    assert {node.tags[STAGE_TAG] for node in nodes} == {
        "ingestion",
        "features",
        "modeling",
        "monitoring",
        "predictions",
        "analysis",
    }
    for node in nodes:
        assert node.owners, node.key
        (reference,) = node.metadata["dagster/code_references"].code_references
        assert reference.file_path.endswith(".py") and reference.line_number > 0
    assert all(schedule.description for schedule in defs.schedules)
    scoring = defs.resolve_job_def("scoring_job").asset_layer.executable_asset_keys
    assert dg.AssetKey("eda_report") not in scoring  # left out by its stage tag
