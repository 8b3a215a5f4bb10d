"""The webhook path's logger, looked up when something is logged.

Importing :mod:`logging` costs a cold-starting receiver about 2 ms; a receiver
that logs nothing on its way to the first answer should not pay it at import.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import logging

__all__ = ["LOGGER_NAME", "webhook_logger"]

LOGGER_NAME = "avaturn_async.webhooks"


@functools.cache  # the same Logger every time: logging keeps one per name
def webhook_logger() -> logging.Logger:
    """The ``avaturn_async.webhooks`` logger (``logging`` is imported on first call)."""
    import logging

    return logging.getLogger(LOGGER_NAME)
