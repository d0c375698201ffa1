"""The /proc reader on real processes: a child in a session of its own, alive then gone."""

import os
import signal
import subprocess
import sys

from booking_platform.core.processes import live_processes, process_running, start_ticks


def test_a_session_is_seen_alive_then_gone() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
    )
    try:
        # a new session leads a new process group: both name the child alone
        assert live_processes(session=child.pid) == [child.pid]
        assert live_processes(group=child.pid) == [child.pid]
        assert start_ticks(child.pid) is not None
        assert process_running(child.pid)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
    assert live_processes(session=child.pid) == []
    assert start_ticks(child.pid) is None
    assert not process_running(child.pid)
