"""The `booking-platform` command against a home where the main job has run (synthetic data)."""

import gzip
import io
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

from booking_platform import cli
from booking_platform.cli import main
from booking_platform.config import Settings
from booking_platform.core import local_registry, registry, warehouse
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.snapshots import write_snapshot
from booking_platform.core.source import read_bookings
from booking_platform.core.tables import PREDICTIONS, RAW_BOOKINGS
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
        "invalid_reason",
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
    strict = ["predict", "--input", str(rows), "--output", str(tmp_path / "o.csv"), "--strict"]
    assert main(strict) == 2
    assert "1 row(s) cannot be scored (booking_id 2: adr -3.0 below 0)" in capsys.readouterr().out
    assert not (tmp_path / "o.csv").exists()


def test_predict_scores_the_valid_rows_and_leaves_each_invalid_one_in_place_with_its_reason(
    env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One booking with zero guests once made predict refuse the whole file; a file without
    the post-booking columns (never read by the model) was refused too."""
    bookings = make_bookings(40, seed=3).drop(
        columns=["assigned_room_type", "booking_changes", "days_in_waiting_list"]
    )
    bookings = bookings.astype({"lead_time": object})
    bookings.loc[5, ["adults", "children", "babies"]] = [0, 0.0, 0]
    bookings.loc[9, "lead_time"] = "1e23"  # once an OverflowError naming no column
    output = tmp_path / "scores.csv"
    source = write_csv(bookings, tmp_path / "lean.csv")
    assert main(["predict", "--input", str(source), "--output", str(output)]) == 0
    out = capsys.readouterr().out
    assert "wrote 38 predictions" in out and "2 row(s) refused" in out
    scores = pd.read_csv(output)
    assert scores["booking_id"].tolist() == list(range(1, 41))  # every row, in its place
    refused = scores[scores["cancel_probability"].isna()]
    assert dict(zip(refused["booking_id"], refused["invalid_reason"], strict=True)) == {
        6: "zero guests",
        10: "lead_time 1e23 above 1000",
    }
    assert refused["predicted_cancel"].isna().all() and refused["model_version"].isna().all()
    assert scores.drop(refused.index)["invalid_reason"].isna().all()
    assert scores.drop(refused.index)["cancel_probability"].between(0, 1).all()


def _console_script(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("booking-platform")), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env, "COLUMNS": "80"},
        timeout=300,
    )


def test_every_refusal_is_one_line_and_exit_code_2(env: dict[str, str], tmp_path: Path) -> None:
    """The real console script: a truncated gzip once ended in an EOFError traceback,
    `predictions --limit -5` in a DuckDB one; a repeated column was silently dropped."""
    csv = write_csv(make_bookings(3000), tmp_path / "b.csv")
    whole = gzip.compress(csv.read_bytes())
    truncated = tmp_path / "cut.csv.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    twice = tmp_path / "twice.csv"
    lines = make_bookings(5).to_csv(index=False).splitlines()
    twice.write_text("\n".join([lines[0] + ",adr"] + [line + ",5" for line in lines[1:]]))
    ids = make_bookings(2)
    ids.insert(0, "booking_id", ["1.1", "1.9"])
    fractional_ids = write_csv(ids, tmp_path / "ids.csv")
    output = str(tmp_path / "o.csv")
    cases = {
        "cut.csv.gz: the compressed file is truncated": [
            "predict", "--input", str(truncated), "--output", output,
        ],
        "twice.csv: column(s) ['adr'] appear more than once": [
            "predict", "--input", str(twice), "--output", output,
        ],
        "ids.csv: booking_id must be unique whole numbers": [
            "predict", "--input", str(fractional_ids), "--output", output,
        ],
        "argument --limit: must be a whole number >= 1, got '-5'": [
            "predictions", "--limit", "-5",
        ],
        "argument --workers: must be a whole number >= 1, got '0'": [
            "serve", "--workers", "0",
        ],
        "replay needs --as-of DATE": ["replay", "--from", "2017-05"],
    }  # fmt: skip
    for expected, args in cases.items():
        finished = _console_script(*args, env=env)
        said = (finished.stdout + finished.stderr).strip()
        assert finished.returncode == 2, (args, said)
        assert len(said.splitlines()) == 1 and expected in said, (args, said)
        assert "Traceback" not in said
    bad_env = _console_script("predictions", env={**env, "BOOKINGS_AS_OF": "soon"})
    assert bad_env.returncode == 2 and "BOOKINGS_AS_OF must be YYYY-MM-DD" in bad_env.stdout
    assert len(bad_env.stdout.strip().splitlines()) == 1


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
        scored = connection.execute(f"SELECT DISTINCT as_of FROM {PREDICTIONS.name}").fetchall()
        sources = connection.execute(f"SELECT DISTINCT as_of FROM {RAW_BOOKINGS.name}").fetchall()
    assert scored == sources == [(date(2017, 5, 1),)]


@pytest.mark.parametrize("as_of", ["1990-01-01", "2030-01-01"])
def test_run_as_of_outside_the_data_is_refused_before_a_partition(
    as_of: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_csv(make_bookings(500), tmp_path / "bookings.csv")
    home = tmp_path / "home"
    monkeypatch.setenv("BOOKING_PLATFORM_HOME", str(home))
    monkeypatch.setenv("BOOKINGS_SOURCE", str(source))
    monkeypatch.setenv("BOOKINGS_AS_OF", as_of)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "unused"))
    assert main(["run"]) == 2
    out = capsys.readouterr().out
    assert f"error: as-of date {as_of} is outside the data in {source}" in out.replace("\n", "")
    with dg.DagsterInstance.from_config(str(home / "dagster")) as instance:
        assert instance.get_dynamic_partitions("as_of_dates") == []
        assert instance.get_runs() == []
    assert not (home / "warehouse.duckdb").exists()


def test_predict_shows_its_steps_on_stderr_and_keeps_stdout_for_the_csv(
    env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "PREDICT_PROGRESS_BYTES", 0)  # this small file counts as large
    source = write_csv(make_bookings(50, seed=5), tmp_path / "large.csv")
    assert main(["predict", "--input", str(source), "--output", "-"]) == 0
    captured = capsys.readouterr()
    scores = pd.read_csv(io.StringIO(captured.out))
    assert len(scores) == 50 and scores.columns[0] == "booking_id"
    for step in ("done read 50 rows", "done loaded the champion, v1", "done scored", "5/5"):
        assert step in captured.err
    assert "wrote" in captured.err and "wrote" not in captured.out


def test_predict_gives_the_probabilities_of_the_champion_loaded_through_mlflow(
    env: dict[str, str], trained_home: Settings, tmp_path: Path
) -> None:
    """The local reading of the registry (no MLflow) answers as MlflowClient does and unpickles
    the same model: identical probabilities."""
    settings = trained_home
    store = local_registry.sqlite_store(settings.mlflow_tracking_uri)
    assert store is not None
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    for as_of in (date(2016, 1, 1), date(2017, 5, 1), date(2018, 1, 1)):
        assert local_registry.champion_version_as_of(
            store, "booking_cancellation", as_of
        ) == registry.champion_version_as_of("booking_cancellation", as_of)
    version, model = local_registry.load_champion(
        settings.mlflow_tracking_uri, settings.mlflow_artifact_root, "booking_cancellation"
    )
    through_mlflow = registry.load_alias("booking_cancellation")
    assert version == through_mlflow.version
    cleaned = clean_bookings(make_bookings(300, seed=7)).cleaned
    assert (model.predict_proba(cleaned) == through_mlflow.model.predict_proba(cleaned)).all()


HEAVY = ("dagster", "mlflow", "evidently", "pandera", "matplotlib")
# predict cleans the file by the bookings contract (core/contracts.py), which is pandera's: the
# one statement of what a valid booking is costs it ~0.4 s of import
NEEDED = {"predict": {"pandera"}}


@pytest.mark.parametrize("command", ["predictions", "explain", "predict"])
def test_commands_a_person_types_import_no_heavy_library(
    command: str, env: dict[str, str], trained_home: Settings, tmp_path: Path
) -> None:
    arguments = {
        "predictions": ["predictions"],
        "explain": ["explain", str(_riskiest(trained_home)["booking_id"])],
        "predict": [
            "predict",
            "--input",
            str(write_csv(make_bookings(20, seed=3), tmp_path / "b.csv")),
            "--output",
            str(tmp_path / "s.csv"),
        ],
    }[command]
    script = (
        "import sys\nfrom booking_platform.cli import main\n"
        f"status = main({arguments!r})\n"
        f"print('LOADED', status, *sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
        check=True,
    )
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("LOADED")]
    status, *loaded = line.split()[1:]
    assert status == "0", completed.stdout[-2000:] + completed.stderr
    assert set(loaded) <= NEEDED.get(command, set()), loaded
