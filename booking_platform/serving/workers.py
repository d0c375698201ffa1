"""Run the service's uvicorn workers, each listening on a socket of its own (SO_REUSEPORT).

uvicorn's own supervisor shares one listening socket between its workers, and whichever worker
wakes first accepts every connection waiting on it. With a few long-lived connections (wrk's four,
each posting 1,000-booking batches) one worker often took all of them while the other idled, and
the batch rate halved: 78k against 130-151k rows/s in `benchmarks/serving.py`. Here every worker
binds its own socket to the same port and the kernel spreads new connections over the listening
ones by a hash of the client's address and port. A worker starts listening only once the app's
startup has loaded the models, so until then the kernel sends connections to the ready workers.

SO_REUSEPORT would as gladly let a second server join the port: while the first one's workers
were still loading their models, nothing was bound yet, and a second `serve` started a second
later passed the port check and served beside it. The supervisor therefore holds an exclusive
lock per port (a file under the temporary directory) for as long as it serves.
"""

from __future__ import annotations

import fcntl
import logging
import multiprocessing
import os
import re
import signal
import socket
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from booking_platform.serving.metrics import multiprocess_directory

# What the service is doing while it starts (loading, compiling, listening), for the person who
# started it: model_store.py logs to a child of this logger, core/compiled_trees.py to its own.
log = logging.getLogger("booking_platform.serving")
PROGRESS_LOGGERS = (log, logging.getLogger("booking_platform.core.compiled_trees"))


def show_progress() -> None:
    """The service's own lines on stderr, one per step, with the time and the process: uvicorn's
    logging configuration (log level warning) covers only its own loggers."""
    if log.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("%(asctime)s serve[%(process)d] %(message)s", "%H:%M:%S")
    )
    for logger in PROGRESS_LOGGERS:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def address(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Server(uvicorn.Server):
    """uvicorn's server, saying when this worker listens (after the app's startup loaded the
    models): uvicorn says nothing at log level warning, and with sockets passed in, nothing."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            log.info("listening on %s", address(self.config.host, self.config.port))


def _bound_socket(host: str, port: int, *, shared: bool) -> socket.socket:
    """Bound, not yet listening: uvicorn listens on it after the app's startup."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _serve_one_worker(config_kwargs: dict[str, Any]) -> None:
    config = uvicorn.Config(**config_kwargs)
    config.configure_logging()
    show_progress()
    try:
        sock = _bound_socket(config.host, config.port, shared=True)
    except OSError as error:
        print(f"error: cannot bind {config.host}:{config.port}: {error}", file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    _Server(config).run(sockets=[sock])


class PortTaken(Exception):
    pass


def port_lock_path(port: int) -> Path:
    return Path(tempfile.gettempdir()) / f"booking-platform-serve-{port}.lock"


def lock_port(port: int) -> int:
    """An open file descriptor holding the port's exclusive lock (released when it is closed,
    or when the process ends however it ends); PortTaken names the holder's PID."""
    path = port_lock_path(port)
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(handle, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(handle)
        raise PortTaken(f"another booking-platform server (pid {holder}) serves it") from None
    os.ftruncate(handle, 0)
    os.pwrite(handle, str(os.getpid()).encode(), 0)
    return handle


def run_workers(config_kwargs: dict[str, Any], workers: int) -> int:
    """Serve with `workers` processes until SIGINT or SIGTERM; restart a worker that dies.

    Returns the exit status: 0 after a signal, STARTUP_FAILURE when a worker could not start
    (the app, or the port, would fail the same way on every restart) or the port is taken."""
    host, port = config_kwargs["host"], config_kwargs["port"]
    try:
        lock = lock_port(port)
    except (PortTaken, OSError) as error:
        print(f"error: cannot serve on {host}:{port}: {error}", file=sys.stderr)
        return STARTUP_FAILURE
    show_progress()
    log.info(
        "starting %d worker(s) for %s; each listens once it has loaded the models",
        workers,
        address(host, port),
    )
    try:
        return _supervise(config_kwargs, workers)
    finally:
        os.close(lock)


def _supervise(config_kwargs: dict[str, Any], workers: int) -> int:
    host, port = config_kwargs["host"], config_kwargs["port"]
    try:
        # SO_REUSEPORT would let a second server started on a busy port quietly take half of
        # its connections; a plain bind first fails on any port already served
        _bound_socket(host, port, shared=False).close()
    except OSError as error:
        print(f"error: cannot serve on {host}:{port}: {error}", file=sys.stderr)
        return STARTUP_FAILURE
    with multiprocess_directory():  # the workers' metrics, summed at each scrape
        return _supervise_workers(config_kwargs, workers)


def _supervise_workers(config_kwargs: dict[str, Any], workers: int) -> int:
    if workers == 1:
        _serve_one_worker(config_kwargs)
        return 0
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    for handled in (signal.SIGINT, signal.SIGTERM):
        signal.signal(handled, lambda *_: stop.set())

    def start() -> multiprocessing.process.BaseProcess:
        process = spawn.Process(target=_serve_one_worker, args=(config_kwargs,))
        process.start()
        return process

    processes = [start() for _ in range(workers)]
    status = 0
    while not stop.wait(0.5):
        for index, process in enumerate(processes):
            if process.is_alive() or stop.is_set():
                continue
            if process.exitcode == STARTUP_FAILURE:
                status = STARTUP_FAILURE
                stop.set()
            else:
                processes[index] = start()
    for process in processes:
        if process.is_alive():
            os.kill(process.pid, signal.SIGTERM)  # each worker writes its waiting predictions
    for process in processes:
        process.join()
    return status


TCP_STATES = {"0A": "LISTEN", "01": "ESTABLISHED"}  # the kernel's codes in /proc/net/tcp


def sockets_by_worker(parent: int, port: int) -> dict[int, dict[str, str]]:
    """What each worker of the server `parent` holds on `port`, read from /proc (Linux): for
    every child process with TCP sockets there, their states ("LISTEN", "ESTABLISHED", else the
    kernel's code) by socket inode. Children without any (multiprocessing's resource tracker, a
    worker still loading its models) are left out. The tests and
    benchmarks/connection_placement.py see through it where connections land."""
    states = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port:
            states[fields[9]] = TCP_STATES.get(fields[3], fields[3])
    by_worker = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # the name in brackets may hold spaces; the parent's PID is the 2nd field after it
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) != parent:
                continue
            links = [os.readlink(fd) for fd in (stat.parent / "fd").iterdir()]
        except (FileNotFoundError, ProcessLookupError):  # exited meanwhile
            continue
        inodes = [m.group(1) for m in map(re.compile(r"socket:\[(\d+)\]").fullmatch, links) if m]
        held = {inode: states[inode] for inode in inodes if inode in states}
        if held:
            by_worker[int(stat.parent.name)] = held
    return by_worker
