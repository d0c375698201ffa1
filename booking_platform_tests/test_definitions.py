import dagster as dg

from booking_platform.definitions import defs
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
