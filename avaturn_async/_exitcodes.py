"""The exit codes of every ``avaturn`` command, defined once."""

from __future__ import annotations

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE"]

EXIT_OK = 0
"""Success: for ``onboard``, every row of the manifest is ready (or exported)."""
EXIT_FAILED = 1
"""The command ran but the work failed: for ``onboard``, some rows failed or were
rejected (see ``--status``); for ``inbox``, a replay was refused."""
EXIT_USAGE = 2
"""Bad usage: unreadable input, missing configuration, a refused API key."""
EXIT_INTERRUPTED = 130
"""Interrupted (Ctrl-C, SIGTERM); rerun the same command to resume."""
