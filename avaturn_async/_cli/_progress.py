"""Live progress for the onboarding command.

A rich progress bar when the output is a terminal and ``rich`` (the optional
``cli`` extra) is installed; otherwise a plain line every few seconds, which
suits logs and CI. Both are callables taking the running summary, as
:func:`~avaturn_async.batch.onboard`'s ``progress`` argument expects. Both show
the time left (rich's own estimate; the plain line's is
:attr:`OnboardingSummary.eta`) and the counts in the words of the final report:
ready, already done, failed, invalid.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, TextIO

from ..batch import OnboardingSummary

__all__ = ["PlainProgress", "ProgressMode", "progress_reporter"]

ProgressMode = Literal["auto", "rich", "plain", "none"]
Reporter = Callable[[OnboardingSummary], None]


def format_duration(seconds: float) -> str:
    """``1:02:03``, ``2:03``: as rich shows elapsed and remaining time."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _counts(summary: OnboardingSummary) -> str:
    others = f", by other runs {summary.elsewhere}" if summary.elsewhere else ""
    return (
        f"ready {summary.ready}, already done {summary.already_done}, "
        f"failed {summary.failed}, invalid {summary.invalid}{others}; "
        f"{summary.rows_per_second:.1f} rows/s"
    )


def _short_counts(summary: OnboardingSummary) -> str:
    # The same words, zeros left out, to fit next to the bar.
    words = ("already done", "failed", "invalid", "by other runs")
    counts = (summary.already_done, summary.failed, summary.invalid, summary.elsewhere)
    shown = [f"{word} {count}" for word, count in zip(words, counts, strict=True) if count]
    return ", ".join([f"ready {summary.ready}", *shown])


class PlainProgress:
    """Prints a progress line at most every ``interval`` seconds."""

    def __init__(
        self,
        out: TextIO,
        total: int | None,
        *,
        interval: float = 5.0,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self._out = out
        self._total = total
        self._interval = interval
        self._now = now
        self._last = now()

    def __call__(self, summary: OnboardingSummary) -> None:
        now = self._now()
        if now - self._last < self._interval:
            return
        self._last = now
        of = f"/{self._total}" if self._total is not None else ""
        left_s = summary.seconds_left(self._total)
        left = "" if left_s is None else f"; {format_duration(left_s)} left"
        line = f"onboard: {summary.done}{of} rows: {_counts(summary)}{left}"
        print(line, file=self._out, flush=True)


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
            TimeRemainingColumn,
        )
    except ImportError:
        return None
    progress = Progress(
        TextColumn("onboard"),
        BarColumn(bar_width=10),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(compact=True),
        TextColumn("left:"),
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
