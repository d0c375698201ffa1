"""The `booking-platform` command: run the main job, score a file, show the latest predictions,
serve predictions over HTTP."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from booking_platform.config import MODEL_NAME, Settings, load_settings
from booking_platform.core import registry, warehouse
from booking_platform.core.cleaning import clean_bookings
from booking_platform.core.scoring import score_bookings
from booking_platform.core.source import OUTCOME_COLUMNS, SourceError, read_bookings

console = Console()
REPO_ROOT = Path(__file__).resolve().parent.parent


def prepare_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME under the data home, with the project's dagster.yaml (instance settings)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def run_main_job(settings: Settings) -> int:
    """Materialise the whole asset graph in the instance under the data home; print a summary."""
    import dagster as dg

    from booking_platform.definitions import build_definitions
    from booking_platform.defs.jobs import MAIN_JOB_NAME

    prepare_dagster_home(settings)
    console.print(
        f"[bold]booking_platform[/] as of {settings.as_of}, source {settings.source}, "
        f"home {settings.home}"
    )
    job = build_definitions(settings).resolve_job_def(MAIN_JOB_NAME)
    with dg.DagsterInstance.get() as instance, console.status("running the asset graph..."):
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            # the summary below replaces Dagster's per-event console log; Dagit keeps it all
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )
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
        for event in result.all_events:
            if event.is_step_failure and event.step_failure_data.error:
                error = event.step_failure_data.error
                # the asset's own error (e.g. which file and column), not Dagster's wrapper
                console.print((error.cause or error).message.strip(), markup=False)
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


def predict_file(settings: Settings, input_path: Path, output_path: Path) -> int:
    """Score a bookings file with the champion: one output row per input row, in input order."""
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
    scores = score_bookings(champion.model, result.cleaned, champion.version)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    scores[["booking_id", "cancel_probability", "predicted_cancel", "model_version"]].to_csv(
        output_path, index=False
    )
    console.print(f"wrote {len(scores):,} predictions to {output_path} (model v{champion.version})")
    return 0


def show_predictions(settings: Settings, limit: int) -> int:
    if not settings.warehouse_path.exists():
        console.print("[red]error:[/] no warehouse yet: run `make run` first")
        return 2
    with warehouse.connect(settings.warehouse_path, read_only=True) as connection:
        latest = warehouse.latest_predictions(connection, limit)
    if latest.empty:
        console.print("no predictions yet: run `make run` first")
        return 0
    table = Table(title=f"latest predictions (as of {latest['as_of'].iloc[0]:%Y-%m-%d})")
    for column in ("booking_id", "cancel_probability", "predicted_cancel", "model_version"):
        table.add_column(column)
    for row in latest.itertuples():
        table.add_row(
            str(row.booking_id),
            f"{row.cancel_probability:.3f}",
            str(row.predicted_cancel),
            row.model_version,
        )
    console.print(table)
    return 0


def serve(args: argparse.Namespace) -> int:
    """Run the HTTP service under uvicorn; workers read their settings from the environment."""
    import uvicorn

    from booking_platform.serving.settings import ServeSettings, load_serve_settings

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
        )
    except ValueError as error:
        console.print(f"[red]error:[/] {error}")
        return 2
    os.environ.update(serve_settings.to_env())
    uvicorn.run(
        "booking_platform.serving.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        access_log=False,  # every prediction is in the prediction log already
        log_level="warning",
        # uvicorn kills a worker that misses a 5 s ping; on 2 busy cores a worker importing
        # MLflow or unpickling a model can miss it, and the restarts never end
        timeout_worker_healthcheck=60,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="booking-platform", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="materialise the whole asset graph and print a summary")
    predict = commands.add_parser("predict", help="score a CSV/zip of bookings")
    predict.add_argument("--input", required=True, type=Path)
    predict.add_argument("--output", required=True, type=Path)
    latest = commands.add_parser("predictions", help="print the latest predictions")
    latest.add_argument("--limit", type=int, default=20)
    http = commands.add_parser("serve", help="serve predictions over HTTP (FastAPI, uvicorn)")
    http.add_argument("--host", default="127.0.0.1")
    http.add_argument("--port", type=int, default=8000)
    http.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
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
    if args.command == "serve":
        return serve(args)
    if args.command == "predict":
        return predict_file(settings, args.input, args.output)
    return show_predictions(settings, args.limit)


if __name__ == "__main__":
    sys.exit(main())
