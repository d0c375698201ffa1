"""A 12-month backfill, embedded (sequential, in process) against the cluster (Celery workers).

Both profiles first run the main job as of the month before the range (a champion to score
with), then time, one after the other:
  (a) `booking-platform backfill --job scoring_job` over the months, and
  (b) `booking-platform backfill --job booking_platform_job` over the same months.
Figures: wall time, runs per minute, and for the cluster the Celery dispatch cost per step from
the event log: queue wait (submitted -> a worker takes it) and worker set-up (taken -> the step
starts: loading the instance and the execution plan). The load average and the CPU that other
processes used are printed beside them: on a shared 2-core machine they inflate everything.

    flock /tmp/bench.lock .venv/bin/python benchmarks/cluster_backfill.py [--months 12]

Needs PostgreSQL and RabbitMQ on 127.0.0.1 and `rabbitmqctl` (a vhost of its own).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import dagster as dg
from _common import DEFAULT_SOURCE, cpu_snapshot, others_cpu_line, source_parser
from dateutil.relativedelta import relativedelta
from rich.console import Console
from rich.table import Table

from booking_platform.cluster.scratch import ScratchCluster, missing_services, running
from booking_platform.cluster.scratch import scratch_cluster as scratch
from booking_platform.config import load_settings
from booking_platform.core.snapshots import month_starts
from booking_platform.defs.jobs import MAIN_JOB_NAME, SCORING_JOB_NAME
from booking_platform.defs.partitions import as_of_partitions

console = Console()
JOBS = (SCORING_JOB_NAME, MAIN_JOB_NAME)
# what would move the embedded profile's runs off the embedded stores
CLUSTER_VARIABLES = {"MLFLOW_TRACKING_URI", "BOOKING_PLATFORM_WAREHOUSE_URL", "DAGSTER_HOME"}


@contextmanager
def _instance(env: dict[str, str]) -> Iterator[dg.DagsterInstance]:
    """The instance a CLI started with `env` uses (DAGSTER_HOME and the storage URL)."""
    settings = load_settings(env)
    saved = dict(os.environ)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)
    os.environ["BOOKING_PLATFORM_DAGSTER_STORAGE_URL"] = settings.cluster.dagster_storage_url
    try:
        with dg.DagsterInstance.get() as instance:
            yield instance
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _month(text: str) -> date:
    return date.fromisoformat(f"{text}-01")


def _timed_backfills(cluster: ScratchCluster, months: list[date]) -> dict[str, dict]:
    """Main job as of the month before, then each job's backfill over `months`, timed."""
    first = cluster.cli("run")
    if first.returncode != 0:
        raise RuntimeError(f"the main job failed:\n{first.stdout}\n{first.stderr}")
    with _instance(cluster.env) as instance:
        instance.add_dynamic_partitions(as_of_partitions.name, [str(m) for m in months])
    results = {}
    for job in JOBS:
        started, load = time.monotonic(), os.getloadavg()[0]
        cpu = cpu_snapshot()
        done = cluster.cli(
            "backfill", "--from", f"{months[0]:%Y-%m}", "--to", f"{months[-1]:%Y-%m}", "--job", job
        )
        wall = time.monotonic() - started
        _, others = others_cpu_line(cpu, wall)
        results[job] = {
            "wall_seconds": wall,
            "runs_per_minute": len(months) / wall * 60,
            "succeeded": done.returncode == 0,
            "load_average_at_start": load,
            "others_cpu": others,
            "output_tail": done.stdout[-500:],
        }
    return results


def _dispatch_costs(cluster: ScratchCluster) -> dict[str, float]:
    """Per step of every run: submitted -> taken by a worker -> step started (seconds)."""
    waits, setups, steps = [], [], 0
    with _instance(cluster.env) as instance:
        for record in instance.get_run_records():
            submitted, taken, started = {}, {}, {}
            for entry in instance.all_logs(record.dagster_run.run_id):
                event, step = entry.dagster_event, entry.step_key
                if event is None or step is None:
                    continue
                message = event.message or ""
                if message.startswith("Submitting celery task"):
                    submitted[step] = entry.timestamp
                elif event.event_type == dg.DagsterEventType.ENGINE_EVENT and (
                    "in celery worker" in message
                ):
                    taken.setdefault(step, entry.timestamp)
                elif event.event_type == dg.DagsterEventType.STEP_START:
                    started.setdefault(step, entry.timestamp)
            for step in submitted.keys() & taken.keys() & started.keys():
                steps += 1
                waits.append(taken[step] - submitted[step])
                setups.append(started[step] - taken[step])
    return {
        "steps": steps,
        "queue_wait_median": statistics.median(waits),
        "queue_wait_p90": statistics.quantiles(waits, n=10)[-1],
        "worker_setup_median": statistics.median(setups),
        "worker_setup_p90": statistics.quantiles(setups, n=10)[-1],
    }


def main() -> None:
    parser = source_parser(__doc__)
    parser.add_argument("--from", dest="start", default="2016-08", help="first month, YYYY-MM")
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=Path("test-artifacts/cluster_backfill.json"))
    args = parser.parse_args()
    if missing := missing_services():
        raise SystemExit(f"cannot run the cluster here: {missing}")
    start = _month(args.start)
    months = month_starts(start, start + relativedelta(months=args.months - 1))
    first_as_of = str(start - relativedelta(months=1))
    source = Path(args.source or DEFAULT_SOURCE)
    report: dict[str, object] = {"months": [str(m) for m in months], "source": str(source)}
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as scratch_dir:
        root = Path(scratch_dir)
        env = {"BOOKINGS_AS_OF": first_as_of, "CHAMPION_MAX_AGE_DAYS": "100000"}
        embedded_env = {
            **{k: v for k, v in os.environ.items() if k not in CLUSTER_VARIABLES},
            **env,
            "BOOKING_PLATFORM_HOME": str(root / "embedded"),
            "BOOKINGS_SOURCE": str(source),
            "BOOKING_PLATFORM_PROFILE": "embedded",
        }
        embedded = ScratchCluster(embedded_env, load_settings(embedded_env), vhost="")
        console.print("embedded: main job, then the backfills, one run after the other")
        report["embedded"] = _timed_backfills(embedded, months)
        cluster_env = {**env, "BOOKING_PLATFORM_WORKERS": str(args.workers)}
        with scratch(root / "cluster", source, cluster_env) as cluster, running(cluster):
            console.print(f"cluster: {args.workers} workers, same runs through the queue")
            report["cluster"] = _timed_backfills(cluster, months)
            report["dispatch"] = _dispatch_costs(cluster)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2))
    table = Table(title=f"{len(months)}-month backfill, {months[0]} .. {months[-1]}")
    for column in ("job", "profile", "wall (s)", "runs/min", "ok", "load avg", "other CPU"):
        table.add_column(column)
    for job in JOBS:
        for profile in ("embedded", "cluster"):
            row = report[profile][job]
            table.add_row(
                job,
                profile,
                f"{row['wall_seconds']:.0f}",
                f"{row['runs_per_minute']:.2f}",
                "yes" if row["succeeded"] else "NO",
                f"{row['load_average_at_start']:.1f}",
                row["others_cpu"],
            )
    console.print(table)
    dispatch = report["dispatch"]
    console.print(
        f"Celery dispatch per step over {dispatch['steps']} steps: queue wait median "
        f"{dispatch['queue_wait_median']:.2f} s (p90 {dispatch['queue_wait_p90']:.2f} s), "
        f"worker set-up median {dispatch['worker_setup_median']:.2f} s "
        f"(p90 {dispatch['worker_setup_p90']:.2f} s)"
    )
    console.print(f"written to {args.output}")


if __name__ == "__main__":
    main()
