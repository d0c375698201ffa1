"""The registry on a real MLflow sqlite store: the alias only moves forward in training time."""

import os
from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.data.digest_utils import MAX_ROWS, compute_pandas_digest

from booking_platform.config import load_settings
from booking_platform.core import registry

MODEL = "booking_cancellation_test"


class _Constant(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.Series:  # noqa: ARG002
        return pd.Series(0.5, index=model_input.index)


def _logged_model(tmp_path: Path, run_tags: dict[str, str] | None = None) -> str:
    experiment_id = registry.use_store(
        f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "artifacts"
    )
    with mlflow.start_run(experiment_id=experiment_id, tags=run_tags):
        return mlflow.pyfunc.log_model(name="model", python_model=_Constant()).model_uri


def test_the_alias_never_moves_to_older_training_data_and_each_date_finds_its_champion(
    tmp_path: Path,
) -> None:
    uri = _logged_model(tmp_path)
    may = registry.promote(MODEL, uri, date(2017, 5, 1), tags={})
    assert (may.version, may.champion, may.previous_champion) == ("1", "1", None)
    # a backfill of an earlier date: registered for its dates, the alias stays
    march = registry.promote(MODEL, uri, date(2017, 3, 1), tags={})
    assert (march.version, march.champion, march.moved_alias) == ("2", "1", False)
    assert registry.load_alias_version(MODEL) == "1"
    assert (
        "v1 trained as of 2017-05-01"
        in MlflowClient().get_model_version(MODEL, "2").tags["alias_kept_by"]
    )
    july = registry.promote(MODEL, uri, date(2017, 7, 1), tags={"holdout_roc_auc": "0.9"})
    assert (july.version, july.champion, july.previous_champion) == ("3", "3", "1")
    assert MlflowClient().get_model_version(MODEL, "1").tags["replaced_by_version"] == "3"
    assert MlflowClient().get_model_version(MODEL, "3").tags == {
        "holdout_roc_auc": "0.9",
        "as_of": "2017-07-01",
    }

    def champion_on(day: date) -> str | None:
        entry = registry.champion_entry_as_of(MODEL, day)
        return None if entry is None else str(entry.version)

    assert champion_on(date(2017, 2, 1)) is None
    assert champion_on(date(2017, 4, 1)) == "2"
    assert champion_on(date(2017, 6, 30)) == "1"
    assert champion_on(date(2017, 7, 1)) == "3"
    assert champion_on(date(2018, 1, 1)) == "3"


def test_a_version_registered_by_hand_is_dated_by_its_run_and_an_alias_moved_by_hand_is_followed(
    tmp_path: Path,
) -> None:
    registry.promote(MODEL, _logged_model(tmp_path), date(2017, 5, 1), tags={})
    # registered from the MLflow UI: no tags on the version, the candidate's run says the date
    by_hand = mlflow.register_model(
        _logged_model(tmp_path, {registry.AS_OF_TAG: "2017-03-01"}), MODEL
    )
    assert registry.trained_version(by_hand) == registry.TrainedVersion("2", date(2017, 3, 1))
    # a person rolls `champion` back to it: dates from March on follow the person
    MlflowClient().set_registered_model_alias(MODEL, registry.CHAMPION, "2")
    assert registry.champion_version_as_of(MODEL, date(2017, 6, 1)).version == "2"
    assert registry.champion_version_as_of(MODEL, date(2017, 2, 1)) is None


def test_using_a_store_leaves_the_persons_mlflow_setting_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    registry.use_store(f"sqlite:///{tmp_path / 'a.db'}", tmp_path / "artifacts")
    assert mlflow.get_tracking_uri() == f"sqlite:///{tmp_path / 'a.db'}"
    assert mlflow.get_registry_uri() == f"sqlite:///{tmp_path / 'a.db'}"
    # MLflow exports both URIs; a second command in this process, or a process started from it
    # (a cluster worker), must still get its own default
    assert "MLFLOW_TRACKING_URI" not in os.environ
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert load_settings({"BOOKING_PLATFORM_HOME": str(tmp_path)}).mlflow_uri is None
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    registry.use_store(f"sqlite:///{tmp_path / 'b.db'}", tmp_path / "artifacts")
    assert os.environ["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:5999"


def test_a_logged_dataset_has_the_schema_and_digest_mlflow_computes_from_every_row() -> None:
    """The schema comes from a sample and the digest from each column's distinct values: a value
    missing only far down a column (past the 10,000 rows MLflow hashes) must still make the
    column optional and change the digest, as MLflow's own pass over every row does."""
    rows = MAX_ROWS + 3 * registry.SCHEMA_SAMPLE_ROWS
    frame = pd.DataFrame(
        {
            "hotel": pd.Categorical(["City Hotel", "Resort Hotel"] * (rows // 2)),
            "agent": np.arange(rows, dtype="float64"),
            "country": ["PRT"] * rows,
            "arrival_date": pd.date_range("2016-01-01", periods=rows, freq="h"),
            "adults": np.ones(rows, dtype="int64"),
        }
    )
    frame.loc[rows - 10, "agent"] = np.nan
    frame.loc[rows - 5, "country"] = None
    logged = registry.dataset(frame, name="late gaps", targets="adults")
    full = mlflow.data.from_pandas(frame, name="late gaps", targets="adults")
    assert logged.schema == full.schema
    assert logged.to_dict() == full.to_dict()  # the digest included
    for empty_or_not in (frame.head(0), frame.drop(columns="country")):
        assert registry.pandas_digest(empty_or_not) == compute_pandas_digest(empty_or_not)
    required = {spec.name: spec.required for spec in logged.schema.inputs}
    assert required == {
        "hotel": True,
        "agent": False,
        "country": False,
        "arrival_date": True,
        "adults": True,
    }
