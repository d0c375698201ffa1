"""A run whose process was killed is marked failed; a live one is left alone (real instance)."""

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg

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
