"""The `booking-platform` command: run the main job, score a file, show and explain
predictions, show net demand per night, replay snapshots, backfill, backtest, serve predictions
over HTTP."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from booking_platform.config import CLUSTER, MODEL_NAME, Settings, load_settings
from booking_platform.core.tables import CLEANED_BOOKINGS, PREDICTIONS, QUARANTINED_BOOKINGS

if TYPE_CHECKING:
    import pandas as pd

    from booking_platform.core.source import RawSource

# Each command imports what it needs inside its function: a person typing `explain` or
# `predictions` must not wait for Dagster, MLflow, Evidently or matplotlib to import (issue 15
# point 4; booking_platform_tests/test_cli.py checks which modules a command loads).

console = Console()
CONSOLE_SCRIPT = "booking-platform"  # installed next to the interpreter (pyproject.toml)
REPO_ROOT = Path(__file__).resolve().parent.parent
# progress and, when the output is stdout (`predict --output -`), messages: stdout holds data only
errors = Console(stderr=True)


def _refuse(problem: str) -> int:
    """A refusal: one line naming the problem (never wrapped), exit code 2."""
    console.print(f"[red]error:[/] {escape(problem)}", soft_wrap=True)
    return 2


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _execute(instance, job, as_of: str, run_id: str | None = None, tags=None):  # noqa: ANN001, ANN202
    """runtime.execute_as_of, quiet (the CLI prints its own summary; Dagit keeps every event),
    after saying which killed runs it recovered."""
    from booking_platform.runtime import execute_as_of, recover_dead_runs

    for recovered in recover_dead_runs(instance):
        console.print(f"[yellow]recovered:[/] {recovered}", soft_wrap=True)
    return execute_as_of(instance, job, as_of, run_id=run_id, tags=tags, run_config=QUIET)


def _run_tags(accept_shrink: bool) -> dict[str, str]:
    from booking_platform.defs.assets.ingestion import ACCEPT_SHRINK_TAG

    return {ACCEPT_SHRINK_TAG: "true"} if accept_shrink else {}


def _as_of_refusal(settings: Settings, instance) -> str | None:  # noqa: ANN001
    """Why the as-of date cannot run, read from its source before its partition is added; None
    when it can, when the partition exists already (raw_bookings refuses before writing a row),
    or when the source cannot be read (the run then fails naming the problem)."""
    from booking_platform.core.export_audit import AsOfOutsideData, check_as_of_inside
    from booking_platform.core.snapshots import snapshot_path
    from booking_platform.core.source import SourceError, read_bookings, resolve_source
    from booking_platform.defs.partitions import as_of_partitions

    as_of = settings.as_of
    if instance.has_dynamic_partition(as_of_partitions.name, str(as_of)):
        return None
    try:
        path = snapshot_path(settings.landing_dir, as_of) or resolve_source(
            settings.source, settings.cache_dir
        )
        check_as_of_inside(read_bookings(path).frame, as_of, path)
    except AsOfOutsideData as refusal:
        return str(refusal)
    except (SourceError, OSError):
        return None
    return None


def _step_errors(events) -> list[str]:  # noqa: ANN001
    """The failing assets' own errors (e.g. which file and column), not Dagster's wrapper."""
    errors = []
    for event in events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            errors.append(f"{event.step_key}: {(error.cause or error).message.strip()}")
    return errors


def backfill(
    settings: Settings, start: date, end: date, job_name: str, accept_shrink: bool = False
) -> int:
    """Run `job_name` as of every landed snapshot (and known partition) in [start, end].

    Dates run oldest first; a failing date is reported and the next one still runs.
    """
    import dagster as dg
    from rich.progress import track

    from booking_platform.core.snapshots import scan_landing
    from booking_platform.definitions import build_definitions
    from booking_platform.defs.partitions import as_of_partitions
    from booking_platform.runtime import prepare_dagster_home

    prepare_dagster_home(settings)
    landing = settings.landing_dir
    usable, unusable = scan_landing(landing)
    for reason in unusable:
        console.print(f"[yellow]skipped:[/] {reason}", soft_wrap=True)
    landed = {snapshot.as_of for snapshot in usable}
    failures = 0
    with dg.DagsterInstance.get() as instance:
        known = {
            date.fromisoformat(k) for k in instance.get_dynamic_partitions(as_of_partitions.name)
        }
        dates = sorted(d for d in landed | known if start <= d <= end)
        if not dates:
            return _refuse(f"no snapshot in {landing} and no partition in range")
        if settings.profile == CLUSTER:
            return _cluster_backfill(settings, instance, job_name, dates, accept_shrink)
        job = build_definitions(settings).resolve_job_def(job_name)
        for as_of in track(dates, description=f"{job_name} backfill", console=console):
            result = _execute(instance, job, as_of.isoformat(), tags=_run_tags(accept_shrink))
            if result.success:
                console.print(f"{as_of}: [green]succeeded[/] (run {result.run_id})")
            else:
                failures += 1
                console.print(f"{as_of}: [red]failed[/] (run {result.run_id})")
                for error in _step_errors(result.all_events):
                    console.print(f"  {error}", markup=False, soft_wrap=True)
    console.print(f"{len(dates) - failures} of {len(dates)} date(s) succeeded")
    if failures < len(dates):
        _publish_read_copy(settings)
    return 1 if failures else 0


def _cluster_backfill(
    settings: Settings,
    instance,  # noqa: ANN001
    job_name: str,
    dates: list[date],
    accept_shrink: bool,
) -> int:
    """Queue every date at once; the cluster runs them side by side, as its limits allow."""
    from booking_platform.cluster.submit import submit_runs, wait_for_runs

    backfill_id = uuid.uuid4().hex[:8]
    runs = submit_runs(
        settings,
        instance,
        job_name,
        [d.isoformat() for d in dates],
        tags={"booking_platform/backfill": backfill_id, **_run_tags(accept_shrink)},
    )
    console.print(
        f"queued {len(runs)} {job_name} run(s) on the cluster (tag booking_platform/backfill="
        f"{backfill_id}): {settings.cluster.dagit_url}/runs"
    )
    finished = wait_for_runs(instance, runs.values())
    failures = 0
    for as_of, run_id in runs.items():
        status = finished[run_id].status.value
        if status != "SUCCESS":
            failures += 1
        colour = "green" if status == "SUCCESS" else "red"
        console.print(f"{as_of}: [{colour}]{status.lower()}[/] (run {run_id})")
    console.print(f"{len(runs) - failures} of {len(runs)} date(s) succeeded")
    return 1 if failures else 0


def _publish_read_copy(settings: Settings) -> None:
    """Refresh the analysts' copy after a successful run (defs/read_copy.py says why); on
    PostgreSQL readers never block writers, so there is no copy."""
    if settings.warehouse_url:
        return
    from booking_platform.core import warehouse

    copy = warehouse.publish_read_copy(
        settings.warehouse_path, settings.warehouse_lock_wait_seconds
    )
    console.print(f"analysts' read copy: {copy}", soft_wrap=True)


def run_main_job(settings: Settings, accept_shrink: bool = False) -> int:
    """Materialise the whole asset graph in the instance under the data home; print a summary.

    On the cluster profile the run goes through the cluster's queue and its steps to the Celery
    workers; the summary then says which worker ran each step.
    """
    import dagster as dg

    from booking_platform.definitions import build_definitions
    from booking_platform.defs.jobs import MAIN_JOB_NAME
    from booking_platform.progress import job_step_count, run_progress
    from booking_platform.runtime import prepare_dagster_home

    started = time.monotonic()
    prepare_dagster_home(settings)
    console.print(
        f"[bold]booking_platform[/] as of {settings.as_of}, source {settings.source}, "
        f"home {settings.home}, profile {settings.profile}",
        soft_wrap=True,
    )
    if settings.profile == CLUSTER:
        return _run_on_cluster(settings, MAIN_JOB_NAME)
    job = build_definitions(settings).resolve_job_def(MAIN_JOB_NAME)
    run_id = str(uuid.uuid4())
    with dg.DagsterInstance.get() as instance:
        refusal = _as_of_refusal(settings, instance)
        if refusal:
            return _refuse(refusal)
        with run_progress(instance, run_id, job_step_count(job), console), _quiet_mlflow():
            result = _execute(
                instance, job, str(settings.as_of), run_id, tags=_run_tags(accept_shrink)
            )
    _print_summary(settings, result.all_events)
    outcome = _report_outcome(result.run_id, result.success, result.all_events)
    if outcome == 0:
        _publish_read_copy(settings)
        console.print(f"finished in {time.monotonic() - started:.1f} s. Next:")
        # the home in front: the commands read it from the environment, as this run did
        command = f"{_home_env(settings)} {Path(sys.executable).with_name(CONSOLE_SCRIPT)}"
        _print_commands(
            [
                ("the riskiest open bookings", f"{command} predictions"),
                ("why one is flagged", f"{command} explain BOOKING_ID"),
                (
                    "predictions over HTTP (then open http://127.0.0.1:8000/docs)",
                    f"{command} serve",
                ),
            ]
        )
    return outcome


@contextlib.contextmanager
def _quiet_mlflow() -> Iterator[None]:
    """MLflow's own INFO and WARNING lines (tables created, model registered, signature hints)
    would land between the progress lines; the run's outcome is in the summary instead."""
    from mlflow.utils.logging_utils import disable_logging, enable_logging

    disable_logging()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"mlflow\..*")
            yield
    finally:
        enable_logging()


def _run_on_cluster(settings: Settings, job_name: str) -> int:
    import dagster as dg

    from booking_platform.cluster.submit import run_events, step_workers, submit_runs, wait_for_runs

    with dg.DagsterInstance.get() as instance:
        with console.status(f"{job_name} queued on the cluster ({settings.cluster.dagit_url})"):
            (run_id,) = submit_runs(settings, instance, job_name, [str(settings.as_of)]).values()
            run = wait_for_runs(instance, [run_id])[run_id]
        events = run_events(instance, run_id)
    _print_summary(settings, events)
    workers = Table(title=f"run {run_id}: where each step ran")
    workers.add_column("step")
    workers.add_column("Celery worker")
    for step, names in step_workers(events).items():
        workers.add_row(step, " then ".join(names))
    console.print(workers)
    return _report_outcome(run_id, run.status == dg.DagsterRunStatus.SUCCESS, events)


def _report_outcome(run_id: str, success: bool, events) -> int:  # noqa: ANN001
    if success:
        return 0
    failed = [e.step_key for e in events if e.is_step_failure]
    console.print(f"[red]run {run_id} failed[/] at {failed}")
    for error in _step_errors(events):
        console.print(error, markup=False, soft_wrap=True)
    return 1


def _print_summary(settings: Settings, events) -> None:  # noqa: ANN001
    """The run's figures, from its events (in process or read back from the instance)."""
    import dagster as dg

    metadata: dict[str, dict[str, object]] = {}
    for event in events:
        if event.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            metadata[materialization.asset_key.to_user_string()] = {
                key: value.value for key, value in materialization.metadata.items()
            }
    gate = [
        e.asset_check_evaluation_data
        for e in events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
        and e.asset_check_evaluation_data.check_name == "promotion_gate"
    ]
    table = Table(title="booking_platform run", show_header=False)
    cleaned = metadata.get("cleaned_bookings", {})
    raw = metadata.get("raw_bookings", {})
    if raw:
        table.add_row("rows read", f"{raw['rows']:,}")
    if cleaned:
        table.add_row(
            "cleaned / quarantined", f"{cleaned['rows']:,} / {cleaned['quarantined_rows']:,}"
        )
    candidate = metadata.get("candidate_model")
    if candidate:
        table.add_row("candidate MLflow run", str(candidate["mlflow_run_id"]))
        table.add_row("out-of-time holdout", str(candidate["holdout"]))
        table.add_row(
            "holdout metrics",
            ", ".join(
                f"{k.removeprefix('holdout_')} {candidate[k]:.3f}"
                for k in (
                    "holdout_roc_auc",
                    "holdout_pr_auc",
                    "holdout_accuracy",
                    "holdout_f1",
                    "holdout_brier",
                    "holdout_calibration_error",
                )
            ),
        )
    for evaluation in gate:
        verdict = (
            "[green]PASSED[/]"
            if evaluation.passed
            # a warning: the candidate had no newer data, the champion stays (core/gate.py)
            else "[yellow]CHAMPION KEPT[/]"
            if evaluation.severity == dg.AssetCheckSeverity.WARN
            else "[red]FAILED[/]"
        )
        table.add_row("promotion gate", f"{verdict}: {evaluation.description}")
    model = metadata.get("registered_model")
    if model:
        champion = f"{model['model_name']} v{model['champion_version']}"
        registered = model.get("registered_version", "none")
        if registered == "none":
            table.add_row("champion", f"{champion} ({model['kept_because']})")
        elif model["moved_champion_alias"]:
            table.add_row(
                "champion", f"{champion} (previous: {model['previous_champion_version']})"
            )
        else:
            table.add_row(
                "champion",
                f"{champion} stays, trained on newer data; v{registered} registered for the "
                f"dates it was trained for (from {settings.as_of})",
            )
    # paths go below the table, one a line: a table cell would break them where they wrap
    paths = []
    drift = metadata.get("drift_report")
    if drift:
        table.add_row("drift share", f"{drift['drift_share']:.2f}")
        paths.append(("drift report", drift["report"]))
    scored = metadata.get("batch_predictions")
    if scored:
        table.add_row(
            "predictions", f"{scored['rows']:,} rows scored by v{scored['model_version']}"
        )
        paths.append(("predictions", scored["table"]))
    elif model:
        # the run promoted and ended before scoring: say what the table holds for the date
        table.add_row("predictions", _scored_by(settings, settings.as_of))
    console.print(table)
    for label, path in paths:
        console.print(f"{label}: {path}", soft_wrap=True, markup=False, highlight=False)
    if settings.profile == CLUSTER:
        console.print(
            f"Dagit: {settings.cluster.dagit_url}   MLflow UI: {settings.mlflow_tracking_uri}"
        )
        return
    mlflow_ui = (
        f"{Path(sys.executable).with_name('mlflow')} ui --backend-store-uri "
        f"{settings.mlflow_tracking_uri} --host 127.0.0.1 --port 5000"
    )
    _print_commands(
        [
            (
                "Dagit (then open http://127.0.0.1:3000)",
                f"{_home_env(settings)} make -C {REPO_ROOT} dev",
            ),
            ("MLflow UI (then open http://127.0.0.1:5000)", mlflow_ui),
        ]
    )


def _home_env(settings: Settings) -> str:
    return f"BOOKING_PLATFORM_HOME={settings.home.resolve()}"


def _print_commands(lines: list[tuple[str, str]]) -> None:
    """One command a line, never wrapped nor styled, so that it can be copied as it stands."""
    for label, command in lines:
        console.print(f"{label}: {command}", soft_wrap=True, markup=False, highlight=False)


INVALID_REASON = "invalid_reason"  # predict's output column: why a row was not scored
# From this input size `predict` shows its steps on stderr (a bar and a line per step): the
# real export (16 MB, 119k rows) takes several seconds, a 200-row file (27 kB) well under one.
PREDICT_PROGRESS_BYTES = 1_000_000
PREDICT_STEPS = 5  # read, check, load the champion, score, write
STDOUT = Path("-")  # `--output -`: the CSV on stdout, every message on stderr


def _predict_progress(input_path: Path) -> contextlib.AbstractContextManager:
    """progress.task_progress over predict's steps on stderr for a large input, else nothing."""
    from booking_platform.progress import task_progress

    try:
        large = input_path.stat().st_size >= PREDICT_PROGRESS_BYTES
    except OSError:
        large = False  # read_bookings says what is wrong with the path
    if large:
        return task_progress(f"predict {input_path.name}", PREDICT_STEPS, errors)
    return contextlib.nullcontext(lambda label: None)


def predict_file(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    as_of: date | None = None,
    strict: bool = False,
) -> int:
    """Score a bookings file with the champion: one output row per input row, in input order,
    each booking asked about as still open on `as_of` (scored by the model that was champion as
    of that date), or at its booking date without one (scored by the current champion).

    A row cleaning would quarantine keeps its place with an empty probability and its reason,
    as the batch job quarantines it; `strict` refuses the whole file instead. Only what makes
    the file unusable (unreadable, a model column missing, bad booking ids) exits 2."""
    with _predict_progress(input_path) as advance:
        return _predict(settings, input_path, output_path, as_of, strict, advance)


def _predict(
    settings: Settings,
    input_path: Path,
    output_path: Path,
    as_of: date | None,
    strict: bool,
    advance: Callable[[str], None],
) -> int:
    import pandas as pd

    from booking_platform.core.cleaning import clean_bookings
    from booking_platform.core.compiled_trees import compiled_trees
    from booking_platform.core.features import POST_BOOKING, SCORED_ON, SCORING_COLUMNS
    from booking_platform.core.local_registry import load_champion
    from booking_platform.core.scoring import score_bookings
    from booking_platform.core.source import OUTCOME_COLUMNS, SourceError, read_bookings

    said = errors if output_path == STDOUT else console
    try:
        source = read_bookings(input_path, required=SCORING_COLUMNS)
    except (SourceError, OSError) as error:
        return _refuse(str(error))
    advance(f"read {len(source.frame):,} rows")
    # outcome and post-booking columns may come along; the model reads neither
    unused = [*OUTCOME_COLUMNS, *POST_BOOKING]
    result = clean_bookings(source.frame.drop(columns=unused, errors="ignore"))
    refused = result.quarantined
    advance(f"checked: {len(refused):,} row(s) cannot be scored")
    if len(refused) and strict:
        detail = "; ".join(
            f"booking_id {row.booking_id}: {row.reason}" for row in refused.head(5).itertuples()
        )
        return _refuse(f"{input_path}: {len(refused)} row(s) cannot be scored ({detail})")
    # asked as of a date: the model that was champion then, as the batch scores that date
    champion = load_champion(
        settings.mlflow_tracking_uri, settings.mlflow_artifact_root, MODEL_NAME, as_of
    )
    if champion is None:
        return _refuse(
            "no champion model yet: run `make run` first"
            if as_of is None
            else f"no model was champion as of {as_of}: every registered model was trained on "
            "later arrivals (or none exists)"
        )
    version, model = champion
    advance(f"loaded the champion, v{version}")
    bookings = result.cleaned
    if as_of is not None:
        bookings = bookings.assign(**{SCORED_ON: pd.Timestamp(as_of)})
    columns = ["booking_id", "cancel_probability", "predicted_cancel", "model_version"]
    # the service's compiled trees when it compiled this champion (same probabilities); one call
    # for the whole file: the calibrator's arithmetic on a slice can differ from the batch's in
    # the last bit, and the probabilities must be the batch path's exactly
    trees = compiled_trees(model.classifier.booster_, settings.compiled_models_path)
    scores = (
        score_bookings(model, bookings, version, trees=trees)[columns]
        if len(bookings)
        else pd.DataFrame(columns=columns)
    )
    advance(f"scored {len(scores):,} rows")
    # back in the file's order: ids are unique, so each row finds its score or its reason
    output = (
        source.frame[["booking_id"]]
        .merge(scores, on="booking_id", how="left")
        .merge(
            refused[["booking_id", "reason"]].rename(columns={"reason": INVALID_REASON}),
            on="booking_id",
            how="left",
        )
    )
    if output_path == STDOUT:
        output.to_csv(sys.stdout, index=False)
    else:
        output_path.parent.mkdir(parents=True, exist_ok=True)
        output.to_csv(output_path, index=False)
    where = "stdout" if output_path == STDOUT else output_path
    advance(f"wrote {where}")
    said.print(f"wrote {len(scores):,} predictions to {where} (model v{version})", soft_wrap=True)
    if len(refused):
        said.print(
            f"{len(refused):,} row(s) refused, left unscored with their reason in column "
            f"{INVALID_REASON} (--strict refuses the file instead)",
            soft_wrap=True,
        )
    return 0


def show_predictions(settings: Settings, limit: int) -> int:
    from booking_platform.core import warehouse

    if not settings.warehouse_url and not settings.warehouse_path.exists():
        return _refuse("no warehouse yet: run `make run` first")
    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        latest = warehouse.latest_predictions(connection, limit)
    if latest.empty:
        console.print("no predictions yet: run `make run` first")
        return 0
    as_of = latest["as_of"].iloc[0].date()
    table = Table(title=f"latest predictions (as of {latest['as_of'].iloc[0]:%Y-%m-%d})")
    for column in ("booking_id", "cancel_probability", "predicted_cancel", "model_version"):
        table.add_column(column)
    table.add_column("top reasons (log-odds)")
    for row in latest.to_dict("records"):
        table.add_row(
            str(row["booking_id"]),
            f"{row['cancel_probability']:.3f}",
            str(row["predicted_cancel"]),
            row["model_version"],
            "\n".join(_stored_reasons(row)),
        )
    console.print(table)
    console.print(_scored_by(settings, as_of), soft_wrap=True)
    return 0


def _scored_by(settings: Settings, as_of: date) -> str:
    """Which model versions scored the predictions as of `as_of`, said against the model that is
    champion as of that date: a run that ends between promoting and scoring leaves them behind
    until the next run as of that date (or predictions_level_sensor) scores them again."""
    from booking_platform.core import warehouse
    from booking_platform.core.local_registry import champion_version

    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        versions = (
            sorted(set(warehouse.read_slice(connection, PREDICTIONS.name, as_of)["model_version"]))
            if warehouse.table_exists(connection, PREDICTIONS.name)
            else []
        )
    champion = champion_version(
        settings.mlflow_tracking_uri, settings.mlflow_artifact_root, MODEL_NAME, as_of
    )
    expected = f"v{champion.version}" if champion else "no model"
    scored = ", ".join(f"v{v}" for v in versions)
    if champion is not None and versions == [champion.version]:
        return f"predictions as of {as_of} scored by {scored}, the champion as of that date"
    held = f"scored by {scored}" if versions else "not written yet"
    return (
        f"[yellow]predictions as of {as_of} {held}, but the champion as of that date is "
        f"{expected}[/]: they lag until the next run as of {as_of} scores them (or "
        "predictions_level_sensor under `make dev`)"
    )


def _read_configured_source(settings: Settings) -> RawSource | None:
    """The configured export, or None after printing why it cannot be read."""
    from booking_platform.core.source import SourceError, read_bookings, resolve_source

    try:
        return read_bookings(resolve_source(settings.source, settings.cache_dir))
    except (SourceError, OSError) as error:
        _refuse(str(error))
        return None


def replay(settings: Settings, dates: list[date]) -> int:
    """Write PMS snapshots of the configured source into the landing folder, oldest first."""
    from rich.progress import track

    from booking_platform.core.snapshots import write_snapshot

    source = _read_configured_source(settings)
    if source is None:
        return 2
    for as_of in track(dates, description="writing snapshots", console=console):
        path = write_snapshot(source.frame, as_of, settings.landing_dir)
        console.print(f"{as_of}: {path}")
    return 0


def backtest(settings: Settings, months: list[date], seeds: int) -> int:
    """Replay `months` under the three policies; write the table, plot and backtest.json."""
    from rich.progress import track

    from booking_platform.core import registry
    from booking_platform.core.backtest import plot_backtest, run_backtest, summary_table
    from booking_platform.core.retraining import RetrainingPolicy
    from booking_platform.core.training import SEED

    source = _read_configured_source(settings)
    if source is None:
        return 2
    policy = RetrainingPolicy(max_age_days=settings.champion_max_age_days)
    result = run_backtest(
        source.frame,
        months,
        policy,
        settings.reports_dir,
        seeds=[SEED + offset for offset in range(seeds)],
        progress=lambda items: track(items, description="replaying months", console=console),
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    json_path = settings.home / "backtest.json"
    json_path.write_text(json.dumps(result, indent=2))
    table = summary_table(result)
    table_path = settings.home / "backtest.csv"
    table.to_csv(table_path, index=False)
    plot_path = plot_backtest(result, settings.home / "backtest.png")
    registry.log_backtest(
        settings.mlflow_tracking_uri,
        settings.mlflow_artifact_root,
        result,
        [json_path, table_path, plot_path],
    )
    summary = Table(title=f"backtest {result['months'][0]} .. {result['months'][-1]}")
    columns = ("policy", "mean ROC AUC", "per seed", "mean calibration error", "retrainings")
    for column in columns:
        summary.add_column(column)
    for name, policy in result["policies"].items():
        summary.add_row(
            name,
            f"{policy['mean_auc']:.4f}",
            " / ".join(f"{run['mean_auc']:.4f}" for run in policy["seeds"].values()),
            f"{policy['mean_ece']:.4f}",
            str(policy["retrainings"]),
        )
    console.print(summary)
    console.print(f"table {table_path}\nplot {plot_path}\n{json_path}")
    return 0


def shock_caption(nights: pd.DataFrame) -> str:
    """What `demand` says of the shared shocks a forecast's nights (read_nights) took."""
    intervals, headroom = nights[["intervals_shock_sd", "headroom_shock_sd"]].iloc[0]
    if math.isnan(intervals):  # made before the shock grid was kept
        return "shared shock not recorded (the forecast predates the shock grid)"
    return (
        f"shared shock sd {intervals:g} for the intervals, {headroom:g} for the headroom "
        "(docs/design.md)"
    )


def show_demand(settings: Settings, hotel: str, start: date, end: date, as_of: date | None) -> int:
    """Print one hotel's nights from the net_demand table (core/net_demand.py `read_nights`)."""
    import pandas as pd

    from booking_platform.core import warehouse
    from booking_platform.core.net_demand import read_nights

    if start > end:
        return _refuse(f"--from {start} is after --to {end}")
    if not settings.warehouse_url and not settings.warehouse_path.exists():
        return _refuse("no warehouse yet: run `make run` first")
    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        try:
            as_of, nights = read_nights(connection, hotel, start, end, as_of)
        except LookupError as error:
            return _refuse(str(error))
    table = Table(
        title=f"{hotel}: rooms per night from the bookings on the books on {as_of} "
        "(bookings made later are not counted)",
        caption=f"capacity: {nights['capacity_source'].iloc[0]}; headroom: rooms that can "
        f"still be sold with a walk risk under {nights['walk_risk'].iloc[0]:.0%}; "
        f"{shock_caption(nights)}"
        if len(nights)
        else None,
    )
    for column in (
        "night",
        "booked",
        "exp. cancellations",
        "exp. occupied",
        "80 %",
        "95 %",
        "capacity",
        "headroom",
        "realised",
    ):
        table.add_column(column, justify="right")
    for row in nights.to_dict("records"):
        table.add_row(
            f"{row['night']:%a %Y-%m-%d}",
            str(row["rooms_booked"]),
            f"{row['expected_cancellations']:.1f}",
            f"{row['expected_occupied']:.1f}",
            f"{row['occupied_80_low']}-{row['occupied_80_high']}",
            f"{row['occupied_95_low']}-{row['occupied_95_high']}",
            str(row["capacity"]),
            str(row["headroom"]),
            "" if pd.isna(row["realised_occupied"]) else str(int(row["realised_occupied"])),
        )
    console.print(table)
    return 0


def month_or_date(text: str) -> date:
    """core/snapshots.parse_month_or_date, imported only when a command line holds a month."""
    from booking_platform.core.snapshots import parse_month_or_date

    return parse_month_or_date(text)


def _replay_dates(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[date]:
    from booking_platform.core.snapshots import month_starts

    if args.as_of is not None:
        return [args.as_of]
    if args.start is None or args.end is None or args.start > args.end:
        parser.error("replay needs --as-of DATE, or --from DATE --to DATE with from <= to")
    return month_starts(args.start, args.end)


def _stored_reasons(prediction: dict) -> list[str]:
    """reason_1.. of a predictions row; none for rows scored before reasons were stored."""
    columns = sorted(c for c in prediction if c.startswith("reason_"))
    return [prediction[c] for c in columns if isinstance(prediction[c], str)]


# what a revenue manager reads first about a booking, in this order
BOOKING_SUMMARY_COLUMNS = (
    "hotel",
    "arrival_date",
    "booking_date",
    "lead_time",
    "stays_in_weekend_nights",
    "stays_in_week_nights",
    "adults",
    "children",
    "babies",
    "country",
    "market_segment",
    "distribution_channel",
    "deposit_type",
    "customer_type",
    "agent",
    "company",
    "reserved_room_type",
    "adr",
    "previous_cancellations",
    "total_of_special_requests",
    "required_car_parking_spaces",
)


def explain_booking(settings: Settings, booking_id: int) -> int:
    """The booking, its latest probability and the reasons stored with it."""
    import pandas as pd

    from booking_platform.core import warehouse

    if not settings.warehouse_url and not settings.warehouse_path.exists():
        return _refuse("no warehouse yet: run `make run` first")
    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        scored = warehouse.booking_rows(
            connection, PREDICTIONS.name, booking_id, "as_of DESC, scored_at DESC"
        )
        # one row per export (as-of date) that held the booking: show it as last known
        booking = warehouse.booking_rows(
            connection, CLEANED_BOOKINGS.name, booking_id, "as_of DESC"
        )
        quarantined = warehouse.booking_rows(
            connection, QUARANTINED_BOOKINGS.name, booking_id, "as_of DESC"
        )
    where = settings.warehouse_location
    if booking.empty:
        detail = (
            f"it was quarantined: {quarantined['reason'].iloc[0]}"
            if not quarantined.empty
            else f"it is not in {CLEANED_BOOKINGS.name}"
        )
        return _refuse(f"unknown booking_id {booking_id} in {where}: {detail}")
    if scored.empty:
        arrival = booking["arrival_date"].iloc[0]
        return _refuse(
            f"booking_id {booking_id} has no prediction in {where}: only bookings "
            f"open at an as-of date are scored (it arrives {arrival:%Y-%m-%d}, status "
            f"{booking['reservation_status'].iloc[0]})"
        )
    prediction = scored.iloc[0].to_dict()
    details = Table(title=f"booking {booking_id}", show_header=False)
    details.add_row("cancel probability", f"[bold]{prediction['cancel_probability']:.3f}[/]")
    details.add_row(
        "flagged",
        f"{'yes' if prediction['predicted_cancel'] else 'no'} (threshold "
        f"{prediction['threshold']:.2f})",
    )
    details.add_row(
        "scored", f"as of {prediction['as_of']:%Y-%m-%d} by model v{prediction['model_version']}"
    )
    row = booking.iloc[0]
    for column in BOOKING_SUMMARY_COLUMNS:
        value = row[column]
        shown = f"{value:%Y-%m-%d}" if isinstance(value, pd.Timestamp) else str(value)
        details.add_row(column, shown.removesuffix(".0"))
    console.print(details)
    stored = prediction.get("reasons")
    if not isinstance(stored, str):
        console.print("no reasons stored for this prediction (scored before reasons existed)")
        return 0
    reasons = Table(title="why: the model's largest contributions")
    for column in ("#", "feature", "value", "direction", "contribution (log-odds)"):
        reasons.add_column(column)
    for rank, reason in enumerate(json.loads(stored), start=1):
        colour = "red" if reason["direction"] == "raises" else "green"
        reasons.add_row(
            str(rank),
            reason["feature"],
            reason["value"],
            f"[{colour}]{reason['direction']} risk[/]",
            f"{reason['contribution']:+.2f}",
        )
    console.print(reasons)
    return 0


def cluster_command(settings: Settings, action: str) -> int:
    """Start, stop or list the cluster's processes (PIDs and logs under the home's cluster/)."""
    from booking_platform.cluster import services

    if action == "down":
        stopped = services.stop_cluster(settings)
        listed = ", ".join(f"{name} ({how})" for name, how in stopped.items())
        console.print(f"stopped {listed or 'nothing (no cluster running)'}")
        return 0
    if action == "status":
        alive = services.running(settings)
        for name, pid in alive.items():
            console.print(f"{name}: pid {pid}")
        console.print(f"{len(alive)} process(es) of {settings.cluster_dir}")
        return 0
    if settings.profile != CLUSTER:
        console.print("[red]error:[/] set BOOKING_PLATFORM_PROFILE=cluster (make cluster does)")
        return 2
    from booking_platform.runtime import prepare_dagster_home

    prepare_dagster_home(settings)
    try:
        started = services.start_cluster(settings)
    except services.ClusterError as error:
        console.print(f"[red]error:[/] {error}", markup=False)
        return 2
    console.print(
        f"cluster up: {', '.join(f'{n} ({p})' for n, p in started.items())}; Dagit "
        f"{settings.cluster.dagit_url}, MLflow {settings.mlflow_tracking_uri}, logs "
        f"{services.logs_dir(settings)}"
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the HTTP service under uvicorn; workers read their settings from the environment."""
    from booking_platform.serving.settings import load_serve_settings
    from booking_platform.serving.workers import run_workers

    try:
        defaults = load_serve_settings()
        # the flags override the environment; every other setting comes from it
        serve_settings = dataclasses.replace(
            defaults,
            challenger_share=defaults.challenger_share
            if args.challenger_share is None
            else args.challenger_share,
            shadow=args.shadow or defaults.shadow,
            poll_seconds=args.poll_seconds or defaults.poll_seconds,
            max_batch=args.max_batch or defaults.max_batch,
        )
    except ValueError as error:
        return _refuse(str(error))
    os.environ.update(serve_settings.to_env())
    return run_workers(
        {
            "app": "booking_platform.serving.app:app_from_env",
            "factory": True,
            "host": args.host,
            "port": args.port,
            # named, not "auto": a missing uvloop or httptools must fail, not halve the rate;
            # httptools with deadlines for a request's headers and body (slow clients)
            "loop": "uvloop",
            "http": "booking_platform.serving.slow_clients:DeadlineHttpToolsProtocol",
            "access_log": False,  # every prediction is in the prediction log already
            "log_level": "warning",
        },
        args.workers,
    )


class _Parser(argparse.ArgumentParser):
    """argparse whose refusal of a command line is one line naming the problem (exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _at_least(lowest: int) -> Callable[[str], int]:
    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = lowest - 1
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {lowest}, got {text!r}")
        return value

    return whole_number


def main(argv: list[str] | None = None) -> int:
    """The command line; every refusal and every unexpected error is one line and exit code 2
    (BOOKING_PLATFORM_TRACEBACK=1 shows the traceback of an unexpected one instead)."""
    try:
        return _main(argv)
    except Exception as error:
        if os.environ.get("BOOKING_PLATFORM_TRACEBACK") == "1":
            raise
        first_line = (str(error).strip().splitlines() or [""])[0]
        return _refuse(f"{type(error).__name__}: {first_line}")


def _main(argv: list[str] | None) -> int:
    parser = _Parser(prog="booking-platform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser(
        "run", help="materialise the whole asset graph and print a summary"
    )
    run_parser.add_argument(
        "--accept-shrink",
        action="store_true",
        help="publish an export even if it shrinks by more than BOOKINGS_MAX_SHRINK",
    )
    predict = commands.add_parser("predict", help="score a CSV/zip of bookings")
    predict.add_argument("--input", required=True, type=Path)
    predict.add_argument(
        "--output", required=True, type=Path, help="the CSV to write; - writes it to stdout"
    )
    predict.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the date the predictions are for (bookings still open that day); "
        "default: each booking at its booking date",
    )
    predict.add_argument(
        "--strict",
        action="store_true",
        help="refuse the whole file (exit 2) when any row is invalid, instead of leaving that "
        "row unscored with its reason",
    )
    latest = commands.add_parser("predictions", help="print the latest predictions")
    latest.add_argument("--limit", type=_at_least(1), default=20)
    replay_parser = commands.add_parser(
        "replay", help="write PMS snapshots of the source into the landing folder"
    )
    replay_parser.add_argument("--as-of", type=date.fromisoformat, help="one snapshot date")
    replay_parser.add_argument("--from", dest="start", type=month_or_date, help="YYYY-MM")
    replay_parser.add_argument("--to", dest="end", type=month_or_date, help="YYYY-MM")
    replay_parser.add_argument(
        "--every", choices=["month"], default="month", help="series step (first of each month)"
    )
    backtest_parser = commands.add_parser(
        "backtest", help="replay month by month under the frozen, monthly and sensor policies"
    )
    backtest_parser.add_argument("--from", dest="start", type=month_or_date, required=True)
    backtest_parser.add_argument("--to", dest="end", type=month_or_date, required=True)
    backtest_parser.add_argument(
        "--seeds",
        type=_at_least(1),
        default=3,
        help="training seeds each policy runs with; the policies are compared on the means",
    )
    backfill_parser = commands.add_parser(
        "backfill", help="run a job as of every landed snapshot in a date range"
    )
    backfill_parser.add_argument("--from", dest="start", type=month_or_date, required=True)
    backfill_parser.add_argument("--to", dest="end", type=month_or_date, required=True)
    backfill_parser.add_argument(
        "--job",
        default="scoring_job",
        choices=["scoring_job", "booking_platform_job", "retraining_job"],
        help="scoring_job ingests and scores (default); booking_platform_job also trains",
    )
    cluster = commands.add_parser(
        "cluster", help="start or stop the cluster profile's processes (make cluster)"
    )
    cluster.add_argument("action", choices=["up", "down", "status"])
    backfill_parser.add_argument(
        "--accept-shrink",
        action="store_true",
        help="publish exports even if they shrink by more than BOOKINGS_MAX_SHRINK",
    )
    demand = commands.add_parser(
        "demand", help="one hotel's nights: expected rooms occupied, intervals, headroom"
    )
    demand.add_argument("--hotel", required=True, help='e.g. "City Hotel"')
    demand.add_argument("--from", dest="start", type=date.fromisoformat, required=True)
    demand.add_argument("--to", dest="end", type=date.fromisoformat, required=True)
    demand.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the forecast made on this date (default: the newest made on or before --from)",
    )
    explain = commands.add_parser("explain", help="a booking, its probability and its reasons")
    explain.add_argument("booking_id", type=int)
    http = commands.add_parser("serve", help="serve predictions over HTTP (FastAPI, uvicorn)")
    http.add_argument("--host", default="127.0.0.1")
    http.add_argument("--port", type=_at_least(0), default=8000)
    http.add_argument(
        "--workers",
        type=_at_least(1),
        default=2,
        help="uvicorn worker processes (2: one per core here)",
    )
    http.add_argument(
        "--challenger-share", type=float, help="share of routing keys for the challenger (0.1)"
    )
    http.add_argument(
        "--shadow", action="store_true", help="score the challenger too, answer with the champion"
    )
    http.add_argument("--poll-seconds", type=float, help="registry alias poll interval (30)")
    http.add_argument("--max-batch", type=_at_least(1), help="most bookings per request (1000)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except ValueError as error:
        return _refuse(str(error))
    if args.command == "run":
        return run_main_job(settings, args.accept_shrink)
    if args.command == "backfill":
        return backfill(settings, args.start, args.end, args.job, args.accept_shrink)
    if args.command == "cluster":
        return cluster_command(settings, args.action)
    if args.command == "backtest":
        from booking_platform.core.snapshots import month_starts

        return backtest(settings, month_starts(args.start, args.end), args.seeds)
    if args.command == "replay":
        return replay(settings, _replay_dates(args, parser))
    if args.command == "serve":
        return serve(args)
    if args.command == "predict":
        return predict_file(settings, args.input, args.output, args.as_of, args.strict)
    if args.command == "explain":
        return explain_booking(settings, args.booking_id)
    if args.command == "demand":
        return show_demand(settings, args.hotel, args.start, args.end, args.as_of)
    return show_predictions(settings, args.limit)


if __name__ == "__main__":
    sys.exit(main())
