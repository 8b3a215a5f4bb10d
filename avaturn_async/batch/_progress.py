"""Live progress for the onboarding command.

A rich progress bar when the output is a terminal and ``rich`` (the optional
``cli`` extra) is installed; otherwise a plain line every few seconds, which
suits logs and CI. Both are callables taking the running summary, as
:func:`~avaturn_async.batch.onboard`'s ``progress`` argument expects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from ._summary import OnboardingSummary

__all__ = ["PlainProgress", "ProgressMode", "progress_reporter"]

ProgressMode = Literal["auto", "rich", "plain", "none"]
Reporter = Callable[[OnboardingSummary], None]


def _counts(summary: OnboardingSummary) -> str:
    return (
        f"ready {summary.ready}, done before {summary.skipped}, failed {summary.failed}, "
        f"invalid {summary.invalid}; {summary.rows_per_second:.1f} rows/s"
    )


def _short_counts(summary: OnboardingSummary) -> str:
    # Short enough for an 80-column terminal next to the bar.
    return (
        f"ok {summary.ready} skip {summary.skipped} fail {summary.failed} "
        f"bad {summary.invalid} {summary.rows_per_second:.0f}/s"
    )


class PlainProgress:
    """Prints a progress line at most every ``interval`` seconds."""

    def __init__(
        self,
        out: TextIO,
        total: int | None,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._total = total
        self._interval = interval
        self._clock = clock
        self._last = clock()

    def __call__(self, summary: OnboardingSummary) -> None:
        now = self._clock()
        if now - self._last < self._interval:
            return
        self._last = now
        of = f"/{self._total}" if self._total is not None else ""
        print(f"onboard: {summary.done}{of} rows: {_counts(summary)}", file=self._out, flush=True)


def _rich_progress(out: TextIO, total: int | None) -> tuple[Any, Reporter] | None:
    """A started rich ``Progress`` and its reporter, or ``None`` without rich."""
    try:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
    except ImportError:
        return None
    progress = Progress(
        TextColumn("onboard"),
        BarColumn(bar_width=20),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[counts]}"),
        console=Console(file=out),
        transient=False,
    )
    task = progress.add_task("onboard", total=total, counts="")

    def report(summary: OnboardingSummary) -> None:
        progress.update(task, completed=summary.done, counts=_short_counts(summary))

    progress.start()
    return progress, report


@contextmanager
def progress_reporter(
    out: TextIO, total: int | None, mode: ProgressMode = "auto", *, interval: float = 5.0
) -> Iterator[Reporter | None]:
    """The reporter for ``mode``; ``auto`` picks rich on a terminal, plain lines otherwise."""
    if mode == "none":
        yield None
        return
    rich = None
    if mode == "rich" or (mode == "auto" and out.isatty()):
        rich = _rich_progress(out, total)
    if rich is None:
        yield PlainProgress(out, total, interval=interval)
        return
    progress, report = rich
    try:
        yield report
    finally:
        progress.stop()
