"""``AVATURN_LOG=debug`` or ``AVATURN_LOG=info``: the SDK's logs on standard error, no code.

As ``OPENAI_LOG`` does for openai-python: read once, when ``avaturn_async`` is
first imported. The handler goes on the ``avaturn_async`` logger (its children,
``avaturn_async.webhooks`` and the rest, included) and leaves the root logger
alone. Every line is passed through ``_redact.redact_secrets`` after formatting,
tracebacks included, so a URL's signature or credentials and a ``Bearer`` token
never reach the terminal even if a message or an exception carried one. Any
other value is ignored with a one-line note on standard error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping

from ._redact import redact_secrets

__all__ = ["ENVIRONMENT_VARIABLE", "RedactingFormatter", "log_to_stderr_from_environment"]

ENVIRONMENT_VARIABLE = "AVATURN_LOG"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_FORMAT = "[%(asctime)s %(levelname)s %(name)s] %(message)s"


class RedactingFormatter(logging.Formatter):
    """A formatter whose output never holds URL queries, URL credentials or bearer tokens."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_secrets(super().format(record))


def log_to_stderr_from_environment(environ: Mapping[str, str]) -> logging.Handler | None:
    """Add a standard-error handler at ``$AVATURN_LOG``'s level; the handler, or ``None``."""
    value = environ.get(ENVIRONMENT_VARIABLE, "").strip().lower()
    if not value:
        return None
    level = _LEVELS.get(value)
    if level is None:
        note = f"avaturn_async: {ENVIRONMENT_VARIABLE}={value!r} ignored (use debug or info)"
        print(note, file=sys.stderr)
        return None
    logger = logging.getLogger("avaturn_async")
    for handler in logger.handlers:
        if isinstance(handler.formatter, RedactingFormatter):
            return handler  # already set up (the package imported again in a test)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter(_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler
