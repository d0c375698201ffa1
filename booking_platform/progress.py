"""Progress a person can follow for long commands (rich), fed by Dagster's own events.

`run_progress` shows one Dagster run step by step: which step is running, a line with the time of
each finished step, a bar over all steps. `task_progress` is a plain bar for loops of work (e.g.
one run per as-of date in a replay or a backtest); the two nest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import monotonic
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

if TYPE_CHECKING:  # `predict` shows task_progress and must not wait for Dagster to import
    import dagster as dg


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


@contextmanager
def task_progress(
    description: str, total: int, console: Console | None = None
) -> Iterator[Callable[[str], None]]:
    """A bar over `total` units; call the yielded `advance(label)` after each one."""
    console = console or Console()
    with _progress(console) as progress:
        task = progress.add_task(description, total=total)

        def advance(label: str) -> None:
            progress.console.print(f"[green]done[/] {label}")
            progress.advance(task)

        yield advance


def job_step_count(job: dg.JobDefinition) -> int:
    """Steps of an asset job run in process: one per op of its graph. Counting assets and checks
    instead ended the main job's bar at 20/23: the checks of one `multi_asset_check`
    (batch_predictions_checks) run as one step."""
    return len(job.graph.nodes)


class StepListener:
    """Turns a run's step events into progress lines; give it to instance.add_event_listener."""

    def __init__(self, progress: Progress, task: int) -> None:
        self.progress, self.task = progress, task
        self.started: dict[str, float] = {}
        self.failed: list[str] = []

    def __call__(self, entry: dg.EventLogEntry) -> None:
        import dagster as dg

        event = entry.dagster_event
        if event is None or event.step_key is None:
            return
        step, kind = event.step_key, event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self.started[step] = monotonic()
            self.progress.update(self.task, description=f"running [bold]{step}[/]")
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            seconds = monotonic() - self.started.get(step, monotonic())
            ok = kind == dg.DagsterEventType.STEP_SUCCESS
            if not ok:
                self.failed.append(step)
            mark = "[green]done[/]" if ok else "[red]FAILED[/]"
            self.progress.console.print(f"{mark} {step} ({seconds:.1f} s)")
            self.progress.advance(self.task)
        elif kind == dg.DagsterEventType.STEP_SKIPPED:
            self.progress.console.print(f"[yellow]skipped[/] {step}")
            self.progress.advance(self.task)


@contextmanager
def run_progress(
    instance: dg.DagsterInstance,
    run_id: str,
    total_steps: int,
    console: Console | None = None,
    description: str = "starting",
) -> Iterator[StepListener]:
    """Follow the run `run_id` (start it inside the block, with that run id) on `instance`."""
    console = console or Console()
    with _progress(console) as progress:
        task = progress.add_task(description, total=total_steps)
        listener = StepListener(progress, task)
        instance.add_event_listener(run_id, listener)
        yield listener
        progress.update(task, description="finished" if not listener.failed else "failed")
