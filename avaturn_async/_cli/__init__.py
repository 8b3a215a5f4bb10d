"""The ``avaturn`` command line: ``demo``, ``emulator``, ``onboard``, ``inbox``, ``webhooks``.

Exit codes: 0 success, 1 the work failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any

import anyio

from .._exitcodes import EXIT_FAILED, EXIT_INTERRUPTED
from .._version import __version__

__all__ = ["main"]


_COMMANDS = ("demo", "emulator", "onboard", "inbox", "webhooks")


def _command(name: str) -> Any:
    """Subcommand ``name`` lives in ``_<name>.py``, with ``add_<name>_parser(commands)`` and
    ``run_<name>_command(args)``; imported only when the command line needs it."""
    return importlib.import_module(f"{__name__}._{name}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avaturn", description="Tools of the avaturn_async SDK for the Avaturn API."
    )
    parser.add_argument("--version", action="version", version=f"avaturn_async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo", help="run the whole flow against an embedded emulator (no API key, no network)"
    )
    demo.add_argument("--quiet", action="store_true", help="print only the summary lines")
    demo.add_argument(
        "--rows", type=int, default=24, help="people in the sample batch (0 skips it)"
    )
    for name in _COMMANDS[1:]:
        getattr(_command(name), f"add_{name}_parser")(commands)
    return parser


async def _run(args: argparse.Namespace) -> int:
    code: int = await getattr(_command(args.command), f"run_{args.command}_command")(args)
    return code


def _pipe_closed(exc: BaseException) -> bool:
    """Whether ``exc`` is the reader of our output going away (``... | head``)."""
    group: object = getattr(exc, "exceptions", None)  # a task group's exception group
    if isinstance(group, tuple) and group:
        return all(isinstance(inner, BaseException) and _pipe_closed(inner) for inner in group)
    return isinstance(exc, BrokenPipeError)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = anyio.run(_run, args)
        sys.stdout.flush()  # here, not at exit, where a closed pipe is a traceback
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BaseException as exc:
        if not _pipe_closed(exc):
            raise
        # The Python docs' recipe (signal module, "Note on SIGPIPE"): what is left
        # to flush goes nowhere, and the exit is quiet, as a C program's would be.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILED
    return code
