"""The model store in-process: what a load leaves behind for the garbage collector."""

import gc

from booking_platform.config import MODEL_NAME, Settings
from booking_platform.serving.model_store import ModelStore
from booking_platform_tests.serving.conftest import set_alias


def test_a_load_freezes_the_long_lived_objects(served_home: Settings) -> None:
    """A full collection over the imports and the models held the GIL for 0.2 s, every few
    seconds under load (the p99 latency); frozen, they are out of its walk."""
    set_alias(served_home, "challenger", None)
    gc.unfreeze()
    store = ModelStore(
        served_home.mlflow_tracking_uri,
        served_home.mlflow_artifact_root,
        served_home.compiled_models_path,
        MODEL_NAME,
        30,
    )
    try:
        assert store.refresh().champion is not None
        frozen = gc.get_freeze_count()
        assert frozen > 100_000  # MLflow, pandas, LightGBM and the model, at least
        # nothing moved: no second collection pause, so nothing newer is frozen (frozen
        # objects still die by reference counting, so the count may drop)
        store.refresh()
        assert gc.get_freeze_count() <= frozen
    finally:
        gc.unfreeze()
