"""The webhook path's logger, looked up (and :mod:`logging` imported) when something
is logged: see the webhook path's cold start in ARCHITECTURE.md.
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
