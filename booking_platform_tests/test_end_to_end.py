"""The self-driving loop, end to end: `make dev` (webserver + daemon) with the sensors on.

Three monthly snapshots are replayed into the landing folder of a temporary home; Dagit's
GraphQL API must then show the landing runs and a sensor-triggered retraining succeed, a
deliberately weak candidate stopped by the gate with the champion unchanged, and a backfill of
two dates launched the way Dagit's partition dialog launches it. Every process
started here is stopped by its process group id.
"""

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from booking_platform.config import MODEL_NAME
from booking_platform.core import registry
from booking_platform_tests.conftest import REPO_ROOT, SYNTHETIC_ROWS
from booking_platform_tests.dagit_server import running_dagit
from booking_platform_tests.synthetic import make_bookings, write_csv

SNAPSHOTS = ["2017-03-01", "2017-04-01", "2017-05-01"]
WEAK_PARAMS = '{"n_estimators": 3, "num_leaves": 3}'
RUNS_QUERY = """
{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }
"""
LAUNCH = """
mutation($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
  }
}
"""
LOCATION_QUERY = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } } } } }
"""
BACKFILL = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
  }
}
"""
BACKFILL_STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill { status } }
}
"""
STEPS_QUERY = """
query($runId: ID!) { runOrError(runId: $runId) { ... on Run { stepStats { stepKey status } } } }
"""
FINISHED = {"SUCCESS", "FAILURE", "CANCELED"}


class Dagit:
    def __init__(self, url: str, env: dict[str, str]) -> None:
        self.url, self.env = url, env

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            payload = json.load(response)
        assert "errors" not in payload, payload
        return payload["data"]

    def runs(self) -> list[dict]:
        runs = self.graphql(RUNS_QUERY)["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs

    def backfill_status(self, backfill_id: str) -> str:
        backfill = self.graphql(BACKFILL_STATUS, {"id": backfill_id})["partitionBackfillOrError"]
        return backfill["status"]

    def wait_for(self, predicate, what: str, timeout: float = 900) -> list[dict]:  # noqa: ANN001
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = self.runs()
            if predicate(runs):
                return runs
            time.sleep(5)
        pytest.fail(f"timed out waiting for {what}; runs: {self.runs()}")


@pytest.fixture(scope="module")
def dagit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dagit]:
    root = tmp_path_factory.mktemp("e2e")
    source = write_csv(make_bookings(SYNTHETIC_ROWS), root / "bookings.csv")
    env = {
        **os.environ,
        "BOOKING_PLATFORM_HOME": str(root / "home"),
        "BOOKINGS_SOURCE": str(source),
        # the champion of the first snapshot is stale two months later: a freshness retrain
        "CHAMPION_MAX_AGE_DAYS": "45",
    }
    with running_dagit(env, root / "dagster-dev.log", start_seconds=180) as url:
        yield Dagit(url, env)


def _succeeded(runs: list[dict], **tags: str) -> list[dict]:
    return [
        r
        for r in runs
        if r["status"] == "SUCCESS" and all(r["tags"].get(k) == v for k, v in tags.items())
    ]


def test_snapshots_land_retrain_the_gate_holds_and_a_range_backfills(dagit: Dagit) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "booking_platform.cli",
            "replay",
            "--from",
            "2017-03",
            "--to",
            "2017-05",
        ],
        env=dagit.env,
        check=True,
        cwd=REPO_ROOT,
    )

    def landed_and_retrained(runs: list[dict]) -> bool:
        landed = {
            r["tags"].get("dagster/partition")
            for r in _succeeded(runs)
            if "booking_platform/snapshot" in r["tags"]
        }
        retrained = [
            r
            for r in _succeeded(runs)
            if r["jobName"] == "retraining_job"
            and r["tags"].get("booking_platform/retrain_reason") in {"stale", "drift"}
        ]
        return landed == set(SNAPSHOTS) and bool(retrained)

    runs = dagit.wait_for(landed_and_retrained, "three landing runs and a sensor retraining")
    failed = [r for r in runs if r["status"] == "FAILURE"]
    assert not failed, failed
    landing = {
        r["tags"]["dagster/partition"]: r["jobName"]
        for r in runs
        if "booking_platform/snapshot" in r["tags"]
    }
    # the first snapshot trained the first champion; the later ones only ingested and scored
    assert landing == {
        "2017-03-01": "booking_platform_job",
        "2017-04-01": "scoring_job",
        "2017-05-01": "scoring_job",
    }

    registry.use_store(
        f"sqlite:///{Path(dagit.env['BOOKING_PLATFORM_HOME']) / 'mlflow' / 'mlflow.db'}",
        Path(dagit.env["BOOKING_PLATFORM_HOME"]) / "mlflow" / "artifacts",
    )
    champion = registry.load_alias_version(MODEL_NAME)
    assert champion is not None

    (repository,) = dagit.graphql(LOCATION_QUERY)["repositoriesOrError"]["nodes"]
    launched = dagit.graphql(
        LAUNCH,
        {
            "params": {
                "selector": {
                    "repositoryLocationName": repository["location"]["name"],
                    "repositoryName": repository["name"],
                    "jobName": "retraining_job",
                },
                "runConfigData": {
                    # uncalibrated, so the gate's calibration ceiling stops it
                    "ops": {
                        "candidate_model": {
                            "config": {"params_json": WEAK_PARAMS, "calibrate": False}
                        }
                    }
                },
                "executionMetadata": {
                    "tags": [{"key": "dagster/partition", "value": SNAPSHOTS[-1]}]
                },
            }
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    weak_id = launched["run"]["runId"]
    runs = dagit.wait_for(
        lambda runs: any(r["runId"] == weak_id and r["status"] in FINISHED for r in runs),
        "the weak candidate's run",
    )
    (weak,) = [r for r in runs if r["runId"] == weak_id]
    assert weak["status"] == "FAILURE"
    steps = dagit.graphql(STEPS_QUERY, {"runId": weak_id})["runOrError"]["stepStats"]
    statuses = {s["stepKey"]: s["status"] for s in steps}
    assert statuses["candidate_model"] == "SUCCESS"
    assert statuses["candidate_model_promotion_gate"] == "FAILURE"
    assert statuses.get("registered_model") != "SUCCESS"
    assert registry.load_alias_version(MODEL_NAME) == champion

    # Dagit's "Launch backfill" for scoring_job's partitions: one run per date, run by the daemon
    backfill = dagit.graphql(
        BACKFILL,
        {
            "params": {
                "selector": {
                    "partitionSetName": "scoring_job_partition_set",
                    "repositorySelector": {
                        "repositoryLocationName": repository["location"]["name"],
                        "repositoryName": repository["name"],
                    },
                },
                "partitionNames": SNAPSHOTS[1:],
            }
        },
    )["launchPartitionBackfill"]
    assert backfill["__typename"] == "LaunchBackfillSuccess", backfill
    backfill_id = backfill["backfillId"]

    def of_backfill(runs: list[dict]) -> dict[str, dict]:
        return {
            r["tags"]["dagster/partition"]: r
            for r in runs
            if r["tags"].get("dagster/backfill") == backfill_id
        }

    runs = dagit.wait_for(
        lambda runs: sum(r["status"] in FINISHED for r in of_backfill(runs).values()) == 2,
        "the backfill's two runs",
    )
    backfilled = {date: (r["jobName"], r["status"]) for date, r in of_backfill(runs).items()}
    assert backfilled == {d: ("scoring_job", "SUCCESS") for d in SNAPSHOTS[1:]}
    # the daemon marks the backfill complete on its next tick after the last run
    deadline = time.monotonic() + 120
    while (status := dagit.backfill_status(backfill_id)) == "REQUESTED":
        assert time.monotonic() < deadline, "the backfill was never marked complete"
        time.sleep(2)
    assert status in {"COMPLETED", "COMPLETED_SUCCESS"}
