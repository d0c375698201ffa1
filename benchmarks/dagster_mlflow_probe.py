"""What dagster-mlflow's `mlflow_tracking` resource does to an MLflow store (docs/design.md).

Materialises one asset that logs a nested run under the resource's run, in a fresh sqlite store
in a temporary directory, then prints where the experiment keeps its artifacts and each run's
name, status and parent. Not a timing.

    .venv/bin/python benchmarks/dagster_mlflow_probe.py
"""

import os
import tempfile
import warnings
from pathlib import Path

import dagster as dg
import mlflow
from dagster_mlflow import mlflow_tracking


@dg.asset(required_resource_keys={"mlflow"})
def probe() -> None:
    with mlflow.start_run(run_name="candidate", nested=True):
        mlflow.log_metric("x", 1)


def main() -> None:
    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as scratch:
        os.chdir(scratch)  # the resource's experiment puts its artifacts where it is started
        uri = f"sqlite:///{Path(scratch) / 'mlflow.db'}"
        resource = mlflow_tracking.configured(
            {"experiment_name": "probe", "mlflow_tracking_uri": uri}
        )
        with dg.instance_for_test() as instance:
            assert dg.materialize(
                [probe], instance=instance, resources={"mlflow": resource}
            ).success
        mlflow.set_tracking_uri(uri)
        experiment = mlflow.get_experiment_by_name("probe")
        print(f"working directory: {os.getcwd()}")
        print(f"experiment artifact location: {experiment.artifact_location}")
        for _, run in mlflow.search_runs([experiment.experiment_id]).iterrows():
            parent = run.get("tags.mlflow.parentRunId") or "-"
            print(f"run {run['tags.mlflow.runName']!r}: {run['status']}, parent {parent}")


if __name__ == "__main__":
    main()
