"""A run whose process was killed is marked failed; a live one is left alone (real instance)."""

import logging
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg
from dagster._core.storage.tags import GRPC_INFO_TAG

from booking_platform.defs.dead_runs import WORKER_PID_TAG, dead_run_sensor


def _start_stuck_run(dagster_home: Path) -> subprocess.Popen:
    """A process executing a run in process (as the CLI does), stuck in its only step."""
    code = textwrap.dedent(
        f"""
        import time
        import dagster as dg
        from booking_platform.defs.dead_runs import in_process_tags

        @dg.op
        def slow_step():
            print("started", flush=True)
            time.sleep(600)

        @dg.job
        def stuck():
            slow_step()

        with dg.DagsterInstance.from_config({str(dagster_home)!r}) as instance:
            stuck.execute_in_process(instance=instance, tags=in_process_tags())
        """
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "started"
    return process


def test_the_sensor_fails_a_run_whose_process_is_gone_and_leaves_a_live_one(
    tmp_path: Path,
) -> None:
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        killed, alive = _start_stuck_run(tmp_path), _start_stuck_run(tmp_path)
        try:
            killed.send_signal(signal.SIGKILL)
            killed.wait(timeout=30)
            runs = {int(r.tags[WORKER_PID_TAG]): r for r in instance.get_runs()}
            assert {r.status for r in runs.values()} == {dg.DagsterRunStatus.STARTED}

            tick = dead_run_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
            dead, live = runs[killed.pid], runs[alive.pid]
            assert f"the process executing this run (PID {killed.pid}" in tick.skip_message
            assert instance.get_run_by_id(dead.run_id).status == dg.DagsterRunStatus.FAILURE
            assert instance.get_run_by_id(live.run_id).status == dg.DagsterRunStatus.STARTED
            failure = instance.get_records_for_run(
                dead.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
            ).records[0]
            assert "is gone: killed or crashed" in failure.event_log_entry.dagster_event.message

            again = dead_run_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
            assert again.skip_message == "every unfinished run's process is alive"
        finally:
            for process in (killed, alive):
                process.kill()
                process.wait(timeout=30)


def _report_run_start(instance: dg.DagsterInstance, run: dg.DagsterRun, pid: int) -> None:
    """The RUN_START event a launched run's own process writes, with that process's PID (the
    run's status is not moved: the moment between the two writes is the one under test)."""
    event = dg.DagsterEvent(
        event_type_value=dg.DagsterEventType.RUN_START.value, job_name=run.job_name, pid=pid
    )
    instance.store_event(
        dg.EventLogEntry(
            error_info=None,
            level=logging.DEBUG,
            user_message="",
            run_id=run.run_id,
            timestamp=time.time(),
            dagster_event=event,
            job_name=run.job_name,
        )
    )


def test_a_launched_run_whose_process_started_after_it_was_queued_is_alive(
    tmp_path: Path,
) -> None:
    """A queued run is created long before the code server starts its process: a live process
    younger than the run is its worker, not a reused PID (the cluster test once saw a live
    retraining failed this way, between its RUN_START event and its status update)."""

    @dg.op
    def step() -> None: ...

    @dg.job
    def launched() -> None:
        step()

    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        tags = {GRPC_INFO_TAG: '{"host": "localhost"}'}
        runs = [instance.create_run_for_job(launched, tags=tags) for _ in range(2)]
        time.sleep(2)  # the workers start after the runs were queued
        workers = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])]
        workers.append(subprocess.Popen([sys.executable, "-c", "pass"]))
        try:
            workers[1].wait(timeout=30)  # the second run's process is gone
            for run, worker in zip(runs, workers, strict=True):
                _report_run_start(instance, run, worker.pid)

            tick = dead_run_sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
            assert f"(PID {workers[1].pid}" in tick.skip_message
            assert f"(PID {workers[0].pid}" not in tick.skip_message
            statuses = [instance.get_run_by_id(run.run_id).status for run in runs]
            assert statuses == [dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.FAILURE]
        finally:
            workers[0].kill()
            workers[0].wait(timeout=30)
