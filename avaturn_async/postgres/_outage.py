"""One warning line per database outage, not one traceback per failed connection.

During an outage every pooled operation, every reconnect of the listener and
every lease renewal fails, each in its own task. Each reports to the
connector's :class:`OutageLog`; the first failure logs one ``WARNING`` line
(no traceback: the cause is named), the first success after it one ``INFO``
line, and everything in between is counted, not printed. A failure within
:data:`SETTLING` seconds of the end of an outage belongs to it (a restarting
server may answer one connection and refuse the next): it is not a new one.
"""

from __future__ import annotations

import logging
import time

from ._connect import one_line

__all__ = ["OutageLog", "logger"]

logger = logging.getLogger("avaturn_async.postgres")
SETTLING = 5.0


class OutageLog:
    """Tracks whether the database at ``label`` (a redacted DSN) is reachable."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.outages: int = 0
        """Outages seen so far (one per stretch of failures)."""
        self.failures: int = 0
        """Failed operations and connects, over every outage."""
        self._down_since: float | None = None
        self._ended = -SETTLING  # when the last outage ended (monotonic)

    @property
    def down(self) -> bool:
        """An operation failed for a transient reason and none has succeeded since."""
        return self._down_since is not None

    def failed(self, exc: BaseException) -> None:
        """A transient failure: warn if it starts an outage."""
        self.failures += 1
        if self._down_since is not None:
            return
        self._down_since = now = time.monotonic()
        if now - self._ended < SETTLING:
            return  # the same outage, settling
        self.outages += 1
        logger.warning(
            "PostgreSQL at %s is unavailable (%s); retrying until it is back",
            self.label,
            one_line(exc),
        )

    def succeeded(self) -> None:
        """An operation succeeded: an outage in progress is over."""
        if self._down_since is None:
            return
        self._ended = time.monotonic()
        lasted = self._ended - self._down_since
        self._down_since = None
        logger.info("PostgreSQL at %s is back after %.1f s", self.label, lasted)
