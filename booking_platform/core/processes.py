"""Which processes run, read from Linux /proc in one place: whether the process that ran
something is still running (defs/dead_runs.py marks runs whose process is gone as failed), the
start time a PID file records beside a PID (the cluster's services), and what is left alive in a
process group or session (the cluster's and `make dev`'s shutdowns). Elsewhere only existence
is known."""

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


def start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when it is gone or a zombie:
    stored beside a PID, it tells the process from a later one that reuses the PID."""
    fields = _proc_stat(pid)
    return None if fields is None or fields[0] in ("Z", "X") else fields[19]


def live_processes(*, group: int | None = None, session: int | None = None) -> list[int]:
    """PIDs of the live processes (zombies excluded) of process group `group` and/or session
    `session`."""
    alive = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        fields = _proc_stat(int(stat.parent.name))
        if fields is None or fields[0] in ("Z", "X"):
            continue
        # after the state: ppid, process group, session
        if (group is None or int(fields[2]) == group) and (
            session is None or int(fields[3]) == session
        ):
            alive.append(int(stat.parent.name))
    return alive


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
