"""Whether a process that ran something is still running: the liveness half of recovering from
a killed run (defs/dead_runs.py marks runs whose process is gone as failed). Linux /proc gives
the process state and start time; elsewhere only existence is known."""

from __future__ import annotations

import os
from pathlib import Path


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0], start time is [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise OSError("no btime in /proc/stat")


def process_running(pid: int, started_by: float | None = None) -> bool:
    """Whether process `pid` runs now and is the one that did (it started no later than
    `started_by`, a Unix time, when given: a process started after it merely reuses the PID).
    A zombie (killed, not yet reaped by its parent) is not running."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: it exists
    fields = _proc_stat(pid)
    if fields is None:
        return True  # no /proc here: existence is all that is known
    if fields[0] in ("Z", "X"):
        return False
    if started_by is not None:
        started = _boot_time() + int(fields[19]) / os.sysconf("SC_CLK_TCK")
        if started > started_by + 1:  # /proc's start time has clock-tick resolution
            return False
    return True
