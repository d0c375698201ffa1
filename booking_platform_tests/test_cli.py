"""The `booking-platform` command against a home where the main job has run (synthetic data)."""

import json
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest

from booking_platform.cli import main
from booking_platform.config import Settings
from booking_platform.core import registry, warehouse
from booking_platform.core.snapshots import write_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.defs.jobs import MAIN_JOB_NAME
from booking_platform_tests.conftest import SYNTHETIC_ROWS, run_main_job
from booking_platform_tests.synthetic import make_bookings, write_csv


@pytest.fixture(scope="module")
def trained_home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("cli")
    source = write_csv(make_bookings(SYNTHETIC_ROWS), root / "bookings.csv")
    settings = Settings(home=root / "home", source=str(source), as_of=date(2017, 5, 1))
    with dg.instance_for_test() as instance:
        assert run_main_job(settings, instance).success
    return settings


@pytest.fixture
def env(trained_home: Settings, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "BOOKING_PLATFORM_HOME": str(trained_home.home),
        "BOOKINGS_SOURCE": trained_home.source,
        "BOOKINGS_AS_OF": str(trained_home.as_of),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_predict_writes_one_row_per_input_row_in_order(env: dict[str, str], tmp_path: Path) -> None:
    bookings = make_bookings(300, seed=99).assign(booking_id=range(1000, 700, -1))
    bookings.loc[0, "reservation_status"] = "Lost"  # outcome columns are ignored, even wrong ones
    source = write_csv(bookings, tmp_path / "to_score.csv")
    output = tmp_path / "scores.csv"
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    scores = pd.read_csv(output)
    assert scores.columns.tolist() == [
        "booking_id",
        "cancel_probability",
        "predicted_cancel",
        "model_version",
    ]
    assert scores["booking_id"].tolist() == list(range(1000, 700, -1))
    assert scores["cancel_probability"].between(0, 1).all()
    assert (scores["predicted_cancel"] == (scores["cancel_probability"] >= 0.5)).all()
    assert set(scores["model_version"]) == {1}


def test_predict_without_ids_or_outcomes_uses_row_numbers(
    env: dict[str, str], tmp_path: Path
) -> None:
    bookings = make_bookings(20, seed=5).drop(
        columns=["is_canceled", "reservation_status", "reservation_status_date"]
    )
    output = tmp_path / "scores.csv"
    source = write_csv(bookings, tmp_path / "plain.csv")
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    assert pd.read_csv(output)["booking_id"].tolist() == list(range(1, 21))


def test_predict_rejects_bad_input_and_names_the_problem(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = write_csv(make_bookings(5).drop(columns=["adr"]), tmp_path / "missing.csv")
    assert main(["predict", "--input", str(missing), "--output", str(tmp_path / "o.csv")]) == 2
    assert "missing column(s) ['adr']" in capsys.readouterr().out

    typed = make_bookings(5).astype({"adults": object})
    typed.loc[2, "adults"] = "two"
    bad_type = write_csv(typed, tmp_path / "bad_type.csv")
    assert main(["predict", "--input", str(bad_type), "--output", str(tmp_path / "o.csv")]) == 2
    out = capsys.readouterr().out
    assert "'adults' must be numeric" in out and "[4]" in out

    invalid = make_bookings(5)
    invalid.loc[1, "adr"] = -3.0
    rows = write_csv(invalid, tmp_path / "invalid.csv")
    assert main(["predict", "--input", str(rows), "--output", str(tmp_path / "o.csv")]) == 2
    assert "booking_id 2: negative adr" in capsys.readouterr().out
    assert not (tmp_path / "o.csv").exists()


def test_predictions_command_prints_the_riskiest_first(env: dict[str, str]) -> None:
    completed = subprocess.run(
        [str(Path(sys.executable).with_name("booking-platform")), "predictions", "--limit", "5"],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "120"},
        timeout=120,
        check=True,
    )
    cells = [line.split("│") for line in completed.stdout.splitlines() if line.startswith("│")]
    # a row's reasons wrap onto the following lines, whose other cells are blank
    probabilities = [float(cell[2]) for cell in cells if cell[1].strip()]
    assert len(probabilities) == 5
    assert probabilities == sorted(probabilities, reverse=True)
    assert "as of 2017-05-01" in completed.stdout
    # three reasons per prediction (rich wraps between words, never inside one)
    assert len(re.findall(r"\b(?:raises|lowers)\b", completed.stdout)) == 15


def _riskiest(settings: Settings) -> dict:
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        return warehouse.latest_predictions(connection, 1).iloc[0].to_dict()


def test_explain_prints_the_booking_its_probability_and_its_reasons(
    env: dict[str, str], trained_home: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    riskiest = _riskiest(trained_home)
    assert main(["explain", str(riskiest["booking_id"])]) == 0
    out = capsys.readouterr().out
    assert f"booking {riskiest['booking_id']}" in out
    assert f"{riskiest['cancel_probability']:.3f}" in out
    for rank, reason in enumerate(json.loads(riskiest["reasons"]), start=1):
        line = next(line for line in out.splitlines() if line.startswith(f"│ {rank} │"))
        # a long feature name may wrap onto the next line: its start is on this one
        assert f"│ {reason['feature'][:12]}" in line
        assert f"{reason['direction']} risk" in line and f"{reason['contribution']:+.2f}" in line


def test_explain_names_what_is_wrong_with_an_id(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explain", "99999999"]) == 2
    assert "unknown booking_id 99999999" in capsys.readouterr().out
    # booking 1 arrived long before the as-of date: known outcome, never scored
    assert main(["explain", "1"]) == 2
    assert "booking_id 1 has no prediction" in capsys.readouterr().out.replace("\n", "")


def test_run_with_a_bad_source_fails_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = write_csv(make_bookings(50).drop(columns=["hotel"]), tmp_path / "no_hotel.csv")
    monkeypatch.setenv("BOOKING_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BOOKINGS_SOURCE", str(bad))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))  # the CLI sets its own
    assert main(["run"]) == 1
    out = capsys.readouterr().out
    assert "failed at ['raw_bookings']" in out
    assert "no_hotel.csv: missing column(s) ['hotel']" in out.replace("\n", "")
    assert (tmp_path / "home" / "dagster" / "dagster.yaml").exists()


def test_backtest_writes_its_json_table_and_plot_and_logs_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(make_bookings(SYNTHETIC_ROWS), tmp_path / "bookings.csv")
    monkeypatch.setenv("BOOKING_PLATFORM_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("BOOKINGS_SOURCE", str(source))
    assert main(["backtest", "--from", "2017-04", "--to", "2017-06", "--seeds", "2"]) == 0
    result = json.loads((tmp_path / "home" / "backtest.json").read_text())
    policies = result["policies"]
    assert set(policies) == {"frozen", "monthly", "sensor"}
    assert result["months"] == ["2017-04", "2017-05", "2017-06"]
    assert result["seeds"] == [42, 43]
    assert policies["frozen"]["retrainings"] == 1
    assert policies["monthly"]["retrainings"] == 3
    # stationary data (no drift) and AUC above the floor: the sensor retrains only once its
    # champion is older than the default maximum age (2017-04-01 to 2017-06-01: 61 days > 60)
    assert policies["sensor"]["retrainings"] == 2
    for run in policies["sensor"]["seeds"].values():
        reasons = [m["retrained"] for m in run["months"]]
        assert reasons == [
            "stale: there is no champion",
            None,
            "stale: champion trained as of 2017-04-01 is 61 days old (max 60)",
        ]
    for policy in policies.values():
        assert [m["month"] for m in policy["months"]] == result["months"]
        assert 0.5 < policy["mean_auc"] <= 1
        assert policy["mean_auc"] == pytest.approx(np.mean([m["auc"] for m in policy["months"]]))
        runs = policy["seeds"].values()
        assert policy["mean_auc"] == pytest.approx(np.mean([run["mean_auc"] for run in runs]))
    # each seed trained its own models: the same months, graded differently
    first, second = policies["monthly"]["seeds"].values()
    assert first["retrainings"] == second["retrainings"] == 3
    assert [m["auc"] for m in first["months"]] != [m["auc"] for m in second["months"]]
    # until then frozen and sensor kept the first champion, so they graded those months alike
    assert [m["auc"] for m in policies["frozen"]["months"][:2]] == [
        m["auc"] for m in policies["sensor"]["months"][:2]
    ]
    table = pd.read_csv(tmp_path / "home" / "backtest.csv")
    assert table.columns[:4].tolist() == ["month", "frozen_auc", "frozen_ece", "frozen_retrained"]
    assert (tmp_path / "home" / "backtest.png").stat().st_size > 10_000
    registry.use_store(
        f"sqlite:///{tmp_path / 'home' / 'mlflow' / 'mlflow.db'}",
        tmp_path / "home" / "mlflow" / "artifacts",
    )
    runs = mlflow.search_runs(experiment_names=[registry.BACKTEST_EXPERIMENT])
    assert len(runs) == 1 and runs.loc[0, "metrics.monthly_retrainings"] == 3


def test_backfill_runs_each_landed_snapshot_and_a_bad_one_blocks_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("BOOKING_PLATFORM_HOME", str(home))
    monkeypatch.setenv("BOOKINGS_SOURCE", str(tmp_path / "unused.csv"))
    landing = home / "landing"
    raw = read_bookings(write_csv(make_bookings(SYNTHETIC_ROWS), tmp_path / "full.csv")).frame
    write_snapshot(raw, date(2017, 5, 1), landing)
    bad = raw.copy()
    bad.loc[3, "lead_time"] = "soon"
    bad.to_csv(landing / "bookings_2017-04-01.csv", index=False)

    code = main(["backfill", "--from", "2017-04", "--to", "2017-05", "--job", MAIN_JOB_NAME])
    out = " ".join(capsys.readouterr().out.split())  # rich wraps long lines
    assert code == 1
    assert "2017-04-01: failed" in out and "2017-05-01: succeeded" in out
    assert "bookings_2017-04-01.csv: column 'lead_time' must be numeric" in out
    assert "1 of 2 date(s) succeeded" in out
    with warehouse.connect(home / "warehouse.duckdb", read_only=True) as connection:
        scored = connection.execute("SELECT DISTINCT as_of FROM predictions").fetchall()
        sources = connection.execute("SELECT DISTINCT as_of FROM raw_bookings").fetchall()
    assert scored == sources == [(date(2017, 5, 1),)]
