"""The ``avaturn`` command line: ``demo``, ``emulator``, ``onboard``, ``inbox``, ``webhooks``.

Exit codes: 0 success, 1 the work failed, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from .._exitcodes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from .._version import __version__

if TYPE_CHECKING:
    from ..testing import RateLimit

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="avaturn", description="Tools of the avaturn_async SDK for the Avaturn API."
    )
    parser.add_argument("--version", action="version", version=f"avaturn_async {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run the whole flow against an embedded emulator (no API key, no network)",
    )
    demo.add_argument("--quiet", action="store_true", help="print only the summary lines")
    demo.add_argument(
        "--rows", type=int, default=24, help="people in the sample batch (0 skips it)"
    )

    emulator = commands.add_parser("emulator", help="serve the Avaturn emulator until Ctrl-C")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8080)
    emulator.add_argument("--api-key", default="emulator-key")
    emulator.add_argument("--webhook-url", default=None, help="POST webhooks here")
    emulator.add_argument(
        "--unsigned-webhooks",
        action="store_true",
        help="send webhooks unsigned, as Avaturn documents them",
    )
    emulator.add_argument(
        "--webhook-token",
        metavar="TOKEN",
        help="add ?token=TOKEN to --webhook-url (a SharedTokenVerifier's query_param='token')",
    )
    emulator.add_argument("--processing-delay", type=float, default=1.0, metavar="SECONDS")
    emulator.add_argument(
        "--rate-limit", type=float, default=None, metavar="R",
        help="admit at most R API requests per second (a fixed one-second window); "
        "the rest are answered 429 with Retry-After",
    )

    from ._onboard import add_onboard_parser

    add_onboard_parser(commands)

    from ._inbox import add_inbox_parser

    add_inbox_parser(commands)

    from ._webhooks import add_webhooks_parser

    add_webhooks_parser(commands)
    return parser


def _rate_limit(rate: float) -> RateLimit:
    """R requests per second as a fixed window: whole requests per (1 s or longer)."""
    from ..testing import RateLimit

    if not rate > 0:
        raise SystemExit("avaturn emulator: error: --rate-limit must be positive")
    if rate >= 1 and float(rate).is_integer():
        return RateLimit(requests=int(rate), per=1.0)
    return RateLimit(requests=1, per=1.0 / rate)


async def _serve_emulator(args: argparse.Namespace) -> int:
    from ..testing import AvaturnEmulator

    limit = None if args.rate_limit is None else _rate_limit(args.rate_limit)
    webhook_url = args.webhook_url
    if args.webhook_token and not webhook_url:
        print("avaturn emulator: --webhook-token needs --webhook-url", file=sys.stderr)
        return EXIT_USAGE
    if webhook_url and args.webhook_token:
        from urllib.parse import quote

        joiner = "&" if "?" in webhook_url else "?"
        webhook_url = f"{webhook_url}{joiner}token={quote(args.webhook_token, safe='')}"
    emulator = AvaturnEmulator(
        rate_limit=limit,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        webhook_url=webhook_url,
        sign_webhooks=not args.unsigned_webhooks,
        processing_delay=args.processing_delay,
        render_delay=args.processing_delay,
        export_delay=args.processing_delay,
    )
    await emulator.start()
    print(f"Avaturn emulator on {emulator.base_url} (API key {emulator.api_key!r}); Ctrl-C stops")
    print(f"  AVATURN_BASE_URL={emulator.base_url} AVATURN_API_KEY={emulator.api_key}")
    if webhook_url:
        from .._redact import redact_url

        signing = "unsigned" if args.unsigned_webhooks else f"secret {emulator.webhook_secret!r}"
        token = ", with the token in the query" if args.webhook_token else ""
        print(f"  webhooks to {redact_url(webhook_url)}, {signing}{token}")
    if limit is not None:
        print(f"  rate limit: {limit.requests} API requests per {limit.per:g} s (429 past it)")
    sys.stdout.flush()
    await emulator.serve_forever()
    return EXIT_OK


async def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        from ._demo import run_demo

        return await run_demo(quiet=args.quiet, rows=args.rows)
    if args.command == "emulator":
        return await _serve_emulator(args)
    if args.command == "onboard":
        from ._onboard import run_onboard_command

        return await run_onboard_command(args)
    if args.command == "inbox":
        from ._inbox import run_inbox_command

        return await run_inbox_command(args)
    if args.command == "webhooks":
        from ._webhooks import run_webhooks_command

        return await run_webhooks_command(args)
    raise AssertionError(f"unhandled command {args.command}")  # pragma: no cover


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
