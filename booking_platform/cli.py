"""The `booking-platform` command: run the main job, score a file, show and explain
predictions, show net demand per night, replay snapshots, backfill, backtest, serve predictions
over HTTP."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import uuid
from datetime import date
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import track
from rich.table import Table

from booking_platform.config import MODEL_NAME, Settings, load_settings
from booking_platform.core import registry, warehouse
from booking_platform.core.backtest import plot_backtest, run_backtest, summary_table
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.features import SCORED_ON
from booking_platform.core.net_demand import read_nights
from booking_platform.core.retraining import RetrainingPolicy
from booking_platform.core.scoring import score_bookings
from booking_platform.core.snapshots import (
    month_starts,
    parse_month_or_date,
    snapshot_as_of,
    write_snapshot,
)
from booking_platform.core.source import (
    OUTCOME_COLUMNS,
    RawSource,
    SourceError,
    read_bookings,
    resolve_source,
)
from booking_platform.core.training import SEED

console = Console()
REPO_ROOT = Path(__file__).resolve().parent.parent


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME under the data home, with the project's dagster.yaml (instance settings)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _execute(instance, job, as_of: str, run_id: str | None = None):  # noqa: ANN001, ANN202
    """Run `job` in process as of `as_of` (its partition, added if new); Dagit sees the run."""
    from booking_platform.defs.partitions import as_of_partitions

    instance.add_dynamic_partitions(as_of_partitions.name, [as_of])
    # the CLI prints its own summary instead of Dagster's per-event log; Dagit keeps it all
    return job.execute_in_process(
        instance=instance,
        partition_key=as_of,
        run_id=run_id,
        raise_on_error=False,
        run_config=QUIET,
    )


def _step_errors(result) -> list[str]:  # noqa: ANN001
    """The failing assets' own errors (e.g. which file and column), not Dagster's wrapper."""
    errors = []
    for event in result.all_events:
        if event.is_step_failure and event.step_failure_data.error:
            error = event.step_failure_data.error
            errors.append(f"{event.step_key}: {(error.cause or error).message.strip()}")
    return errors


def backfill(settings: Settings, start: date, end: date, job_name: str) -> int:
    """Run `job_name` as of every landed snapshot (and known partition) in [start, end].

    Dates run oldest first; a failing date is reported and the next one still runs.
    """
    import dagster as dg

    from booking_platform.definitions import build_definitions
    from booking_platform.defs.partitions import as_of_partitions

    prepare_dagster_home(settings)
    job = build_definitions(settings).resolve_job_def(job_name)
    landing = settings.landing_dir
    landed = {
        d for p in (landing.iterdir() if landing.is_dir() else []) if (d := snapshot_as_of(p))
    }
    failures = 0
    with dg.DagsterInstance.get() as instance:
        known = {
            date.fromisoformat(k) for k in instance.get_dynamic_partitions(as_of_partitions.name)
        }
        dates = sorted(d for d in landed | known if start <= d <= end)
        if not dates:
            console.print(f"[red]error:[/] no snapshot in {landing} and no partition in range")
            return 2
        for as_of in track(dates, description=f"{job_name} backfill", console=console):
            result = _execute(instance, job, as_of.isoformat())
            if result.success:
                console.print(f"{as_of}: [green]succeeded[/] (run {result.run_id})")
            else:
                failures += 1
                console.print(f"{as_of}: [red]failed[/] (run {result.run_id})")
                for error in _step_errors(result):
                    console.print(f"  {error}", markup=False, soft_wrap=True)
    console.print(f"{len(dates) - failures} of {len(dates)} date(s) succeeded")
    return 1 if failures else 0


def run_main_job(settings: Settings) -> int:
    """Materialise the whole asset graph in the instance under the data home; print a summary."""
    import dagster as dg

    from booking_platform.definitions import build_definitions
    from booking_platform.defs.jobs import MAIN_JOB_NAME
    from booking_platform.progress import job_step_count, run_progress

    prepare_dagster_home(settings)
    console.print(
        f"[bold]booking_platform[/] as of {settings.as_of}, source {settings.source}, "
        f"home {settings.home}"
    )
    job = build_definitions(settings).resolve_job_def(MAIN_JOB_NAME)
    run_id = str(uuid.uuid4())
    with (
        dg.DagsterInstance.get() as instance,
        run_progress(instance, run_id, job_step_count(job), console),
    ):
        result = _execute(instance, job, str(settings.as_of), run_id)
    metadata: dict[str, dict[str, object]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata[materialization.asset_key.to_user_string()] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    gate = [
        e.asset_check_evaluation_data
        for e in result.all_events
        if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ]
    _print_summary(settings, metadata, [g for g in gate if g.check_name == "promotion_gate"])
    if not result.success:
        failed = [e.step_key for e in result.all_events if e.is_step_failure]
        console.print(f"[red]run {result.run_id} failed[/] at {failed}")
        for error in _step_errors(result):
            console.print(error, markup=False, soft_wrap=True)
        return 1
    return 0


def _print_summary(settings: Settings, metadata: dict[str, dict[str, object]], gate: list) -> None:
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
        verdict = "[green]PASSED[/]" if evaluation.passed else "[red]FAILED[/]"
        table.add_row("promotion gate", f"{verdict}: {evaluation.description}")
    model = metadata.get("registered_model")
    if model:
        table.add_row(
            "champion",
            f"{model['model_name']} v{model['champion_version']} "
            f"(previous: {model['previous_champion_version']})",
        )
    drift = metadata.get("drift_report")
    if drift:
        table.add_row("drift share", f"{drift['drift_share']:.2f}, report {drift['report']}")
    scored = metadata.get("batch_predictions")
    if scored:
        table.add_row("predictions", f"{scored['rows']:,} rows -> {scored['table']}")
    console.print(table)
    console.print(
        f"Dagit: [bold]make dev[/] then http://127.0.0.1:3000   MLflow UI: "
        f"[bold].venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri} "
        f"--host 127.0.0.1 --port 5000[/]"
    )


def predict_file(
    settings: Settings, input_path: Path, output_path: Path, as_of: date | None = None
) -> int:
    """Score a bookings file with the champion: one output row per input row, in input order,
    each booking asked about as still open on `as_of`, or at its booking date without one."""
    try:
        source = read_bookings(input_path, require_outcomes=False)
    except (SourceError, OSError) as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    # outcome columns may come along with the bookings; scoring ignores them entirely
    result = clean_bookings(source.frame.drop(columns=list(OUTCOME_COLUMNS), errors="ignore"))
    if len(result.quarantined):
        detail = result.quarantined.head(10).apply(
            lambda row: f"  booking_id {row['booking_id']}: {row['reason']}", axis=1
        )
        console.print(
            f"[red]error:[/] {input_path}: {len(result.quarantined)} row(s) cannot be scored:\n"
            + "\n".join(detail)
        )
        return 2
    registry.use_store(settings.mlflow_tracking_uri, settings.mlflow_artifact_root)
    champion = registry.load_alias(MODEL_NAME)
    if champion is None:
        console.print("[red]error:[/] no champion model yet: run `make run` first")
        return 2
    bookings = result.cleaned
    if as_of is not None:
        bookings = bookings.assign(**{SCORED_ON: pd.Timestamp(as_of)})
    scores = score_bookings(champion.model, bookings, champion.version)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scores[["booking_id", "cancel_probability", "predicted_cancel", "model_version"]].to_csv(
        output_path, index=False
    )
    console.print(f"wrote {len(scores):,} predictions to {output_path} (model v{champion.version})")
    return 0


def show_predictions(settings: Settings, limit: int) -> int:
    if not settings.warehouse_url and not settings.warehouse_path.exists():
        console.print("[red]error:[/] no warehouse yet: run `make run` first")
        return 2
    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        latest = warehouse.latest_predictions(connection, limit)
    if latest.empty:
        console.print("no predictions yet: run `make run` first")
        return 0
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
    return 0


def _read_configured_source(settings: Settings) -> RawSource | None:
    """The configured export, or None after printing why it cannot be read."""
    try:
        return read_bookings(resolve_source(settings.source, settings.cache_dir))
    except (SourceError, OSError) as error:
        console.print(f"[red]error:[/] {error}")
        return None


def replay(settings: Settings, dates: list[date]) -> int:
    """Write PMS snapshots of the configured source into the landing folder, oldest first."""
    source = _read_configured_source(settings)
    if source is None:
        return 2
    for as_of in track(dates, description="writing snapshots", console=console):
        path = write_snapshot(source.frame, as_of, settings.landing_dir)
        console.print(f"{as_of}: {path}")
    return 0


def backtest(settings: Settings, months: list[date], seeds: int) -> int:
    """Replay `months` under the three policies; write the table, plot and backtest.json."""
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


def show_demand(settings: Settings, hotel: str, start: date, end: date, as_of: date | None) -> int:
    """Print one hotel's nights from the net_demand table (core/net_demand.py `read_nights`)."""
    if start > end:
        console.print(f"[red]error:[/] --from {start} is after --to {end}")
        return 2
    if not settings.warehouse_url and not settings.warehouse_path.exists():
        console.print("[red]error:[/] no warehouse yet: run `make run` first")
        return 2
    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        try:
            as_of, nights = read_nights(connection, hotel, start, end, as_of)
        except LookupError as error:
            console.print(f"[red]error:[/] {error}")
            return 2
    table = Table(
        title=f"{hotel}: rooms per night from the bookings on the books on {as_of} "
        "(bookings made later are not counted)",
        caption=f"capacity: {nights['capacity_source'].iloc[0]}; headroom: rooms that can "
        f"still be sold with a walk risk under {nights['walk_risk'].iloc[0]:.0%}"
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


def _replay_dates(args: argparse.Namespace) -> list[date]:
    if args.as_of is not None:
        return [args.as_of]
    if args.start is None or args.end is None or args.start > args.end:
        raise SystemExit("replay needs --as-of DATE, or --from DATE --to DATE with from <= to")
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
    if not settings.warehouse_url and not settings.warehouse_path.exists():
        console.print("[red]error:[/] no warehouse yet: run `make run` first")
        return 2
    with warehouse.connect(settings.warehouse_location, read_only=True) as connection:
        scored = warehouse.booking_rows(
            connection, "predictions", booking_id, "as_of DESC, scored_at DESC"
        )
        # one row per export (as-of date) that held the booking: show it as last known
        booking = warehouse.booking_rows(connection, "cleaned_bookings", booking_id, "as_of DESC")
        quarantined = warehouse.booking_rows(
            connection, "quarantined_bookings", booking_id, "as_of DESC"
        )
    where = settings.warehouse_location
    if booking.empty:
        detail = (
            f"it was quarantined: {quarantined['reason'].iloc[0]}"
            if not quarantined.empty
            else "it is not in cleaned_bookings"
        )
        console.print(f"[red]error:[/] unknown booking_id {booking_id} in {where}: {detail}")
        return 2
    if scored.empty:
        arrival = booking["arrival_date"].iloc[0]
        console.print(
            f"[red]error:[/] booking_id {booking_id} has no prediction in {where}: only bookings "
            f"open at an as-of date are scored (it arrives {arrival:%Y-%m-%d}, status "
            f"{booking['reservation_status'].iloc[0]})"
        )
        return 2
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


def serve(args: argparse.Namespace) -> int:
    """Run the HTTP service under uvicorn; workers read their settings from the environment."""
    from booking_platform.serving.settings import ServeSettings, load_serve_settings
    from booking_platform.serving.workers import run_workers

    defaults = load_serve_settings()
    try:
        serve_settings = ServeSettings(
            challenger_share=defaults.challenger_share
            if args.challenger_share is None
            else args.challenger_share,
            shadow=args.shadow or defaults.shadow,
            poll_seconds=args.poll_seconds or defaults.poll_seconds,
            max_batch=args.max_batch or defaults.max_batch,
            max_body_bytes=defaults.max_body_bytes,
            log_flush_seconds=defaults.log_flush_seconds,
        )
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    os.environ.update(serve_settings.to_env())
    return run_workers(
        {
            "app": "booking_platform.serving.app:app_from_env",
            "factory": True,
            "host": args.host,
            "port": args.port,
            # named, not "auto": a missing uvloop or httptools must fail, not halve the rate
            "loop": "uvloop",
            "http": "httptools",
            "access_log": False,  # every prediction is in the prediction log already
            "log_level": "warning",
        },
        args.workers,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="booking-platform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="materialise the whole asset graph and print a summary")
    predict = commands.add_parser("predict", help="score a CSV/zip of bookings")
    predict.add_argument("--input", required=True, type=Path)
    predict.add_argument("--output", required=True, type=Path)
    predict.add_argument(
        "--as-of",
        type=date.fromisoformat,
        help="the date the predictions are for (bookings still open that day); "
        "default: each booking at its booking date",
    )
    latest = commands.add_parser("predictions", help="print the latest predictions")
    latest.add_argument("--limit", type=int, default=20)
    replay_parser = commands.add_parser(
        "replay", help="write PMS snapshots of the source into the landing folder"
    )
    replay_parser.add_argument("--as-of", type=date.fromisoformat, help="one snapshot date")
    replay_parser.add_argument("--from", dest="start", type=parse_month_or_date, help="YYYY-MM")
    replay_parser.add_argument("--to", dest="end", type=parse_month_or_date, help="YYYY-MM")
    replay_parser.add_argument(
        "--every", choices=["month"], default="month", help="series step (first of each month)"
    )
    backtest_parser = commands.add_parser(
        "backtest", help="replay month by month under the frozen, monthly and sensor policies"
    )
    backtest_parser.add_argument("--from", dest="start", type=parse_month_or_date, required=True)
    backtest_parser.add_argument("--to", dest="end", type=parse_month_or_date, required=True)
    backtest_parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="training seeds each policy runs with; the policies are compared on the means",
    )
    backfill_parser = commands.add_parser(
        "backfill", help="run a job as of every landed snapshot in a date range"
    )
    backfill_parser.add_argument("--from", dest="start", type=parse_month_or_date, required=True)
    backfill_parser.add_argument("--to", dest="end", type=parse_month_or_date, required=True)
    backfill_parser.add_argument(
        "--job",
        default="scoring_job",
        choices=["scoring_job", "booking_platform_job", "retraining_job"],
        help="scoring_job ingests and scores (default); booking_platform_job also trains",
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
    http.add_argument("--port", type=int, default=8000)
    http.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (2: one per core here)"
    )
    http.add_argument(
        "--challenger-share", type=float, help="share of routing keys for the challenger (0.1)"
    )
    http.add_argument(
        "--shadow", action="store_true", help="score the challenger too, answer with the champion"
    )
    http.add_argument("--poll-seconds", type=float, help="registry alias poll interval (30)")
    http.add_argument("--max-batch", type=int, help="most bookings per request (1000)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "run":
        return run_main_job(settings)
    if args.command == "backfill":
        return backfill(settings, args.start, args.end, args.job)
    if args.command == "backtest":
        return backtest(settings, month_starts(args.start, args.end), args.seeds)
    if args.command == "replay":
        return replay(settings, _replay_dates(args))
    if args.command == "serve":
        return serve(args)
    if args.command == "predict":
        return predict_file(settings, args.input, args.output, args.as_of)
    if args.command == "explain":
        return explain_booking(settings, args.booking_id)
    if args.command == "demand":
        return show_demand(settings, args.hotel, args.start, args.end, args.as_of)
    return show_predictions(settings, args.limit)


if __name__ == "__main__":
    sys.exit(main())
