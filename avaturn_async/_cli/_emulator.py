"""``avaturn emulator``: serve the emulator until Ctrl-C, for any client to point at.

The options are ``AvaturnEmulator``'s main arguments under their command-line
names, each with its default in ``--help``. A port already in use, an unreadable
certificate or a bad value is one line on standard error and exit code 2.
"""

from __future__ import annotations

import argparse
import errno
import ssl
import sys
from typing import Any

from .._errors import ConfigurationError
from .._exitcodes import EXIT_OK, EXIT_USAGE
from ._argtypes import checked

__all__ = ["add_emulator_parser", "run_emulator_command"]


def _per_second(rate: float) -> tuple[int, float]:
    """R requests per second as a fixed window: whole requests per (1 s or longer)."""
    if rate >= 1 and float(rate).is_integer():
        return int(rate), 1.0
    return 1, 1.0 / rate


def _rate(text: str) -> tuple[int, float]:
    """``R`` (requests per second) or ``REQUESTS/SECONDS`` (``100/1``): a fixed window."""
    requests, slash, per = text.partition("/")
    try:
        parsed = (int(requests), float(per or "1")) if slash else _per_second(float(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is neither R nor REQUESTS/SECONDS") from None
    if parsed[0] < 1 or not parsed[1] > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 1 request per a positive time")
    return parsed


_seconds = checked(float, lambda v: v >= 0, "{text!r} is negative", name="seconds")


_DEFAULT = " (default: %(default)s)"


def _delay(group: Any, flag: str, default: float | None, help: str) -> None:
    group.add_argument(flag, type=_seconds, default=default, metavar="SECONDS", help=help)


def add_emulator_parser(commands: Any) -> None:
    emulator = commands.add_parser(
        "emulator",
        help="serve the Avaturn emulator until Ctrl-C",
        description="Serve a local, stateful Avaturn emulator (all endpoints, uploads, "
        "webhooks) until Ctrl-C. Point a client at the base URL it prints.",
    )
    where = emulator.add_argument_group("where it listens")
    where.add_argument("--host", default="127.0.0.1", help="address to listen on" + _DEFAULT)
    where.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one" + _DEFAULT)
    cert = "serve HTTPS with this certificate (PEM); needs --tls-key"
    where.add_argument("--tls-cert", metavar="FILE", help=cert)
    where.add_argument("--tls-key", metavar="FILE", help="the certificate's private key (PEM)")
    _add_api_options(emulator.add_argument_group("the API"))
    timing = emulator.add_argument_group("timing")
    same = " (default: the processing delay)"
    ready = "seconds before an uploaded avatar is ready" + _DEFAULT
    _delay(timing, "--processing-delay", 1.0, ready)
    _delay(timing, "--render-delay", None, "seconds before a render is done" + same)
    _delay(timing, "--export-delay", None, "seconds before an export is done" + same)
    hold = "hold every API request this long before answering"
    _delay(timing, "--response-delay", 0.0, hold + _DEFAULT)
    _add_webhook_options(emulator.add_argument_group("webhooks"))


def _add_api_options(api: Any) -> None:
    key = "the only bearer key accepted" + _DEFAULT
    api.add_argument("--api-key", default="emulator-key", help=key)
    api.add_argument(
        "--rate-limit",
        type=_rate,
        metavar="R|REQUESTS/SECONDS",
        help="admit at most this many API requests (R per second, or REQUESTS/SECONDS, a "
        "fixed window) and answer the rest 429 with Retry-After (default: no limit)",
    )
    size = "size of every exported .glb file" + _DEFAULT
    api.add_argument("--export-size", type=int, default=4096, metavar="BYTES", help=size)
    api.add_argument(
        "--no-require-customization",
        dest="require_customization",
        action="store_false",
        help="let avatars whose customization was never set be rendered and exported "
        "(by default they answer 409, an emulator assumption)",
    )
    api.add_argument(
        "--state-file",
        metavar="PATH",
        help="keep the state in this SQLite file, so a restart is the same service "
        "(default: memory only)",
    )


def _add_webhook_options(hooks: Any) -> None:
    recorded = "POST webhooks here (default: none, events are only recorded)"
    hooks.add_argument("--webhook-url", metavar="URL", help=recorded)
    hooks.add_argument(
        "--webhook-secret",
        metavar="SECRET",
        help="Standard Webhooks secret to sign with, whsec_<base64> (default: the "
        "emulator's fixed test secret, printed at start)",
    )
    unsigned = "send webhooks unsigned, as Avaturn documents them"
    hooks.add_argument("--unsigned-webhooks", action="store_true", help=unsigned)
    token = "add ?token=TOKEN to --webhook-url (a SharedTokenVerifier's query_param='token')"
    hooks.add_argument("--webhook-token", metavar="TOKEN", help=token)
    attempts = "attempts per event, the first included" + _DEFAULT
    hooks.add_argument("--webhook-max-attempts", type=int, default=4, metavar="N", help=attempts)
    doubled = "first wait before a retry, doubled each time" + _DEFAULT
    _delay(hooks, "--webhook-retry-delay", 0.05, doubled)


def _usage_error(message: str) -> int:
    print(f"avaturn emulator: {message}", file=sys.stderr)
    return EXIT_USAGE


def _webhook_url(args: argparse.Namespace) -> str | None:
    url: str | None = args.webhook_url
    if url and args.webhook_token:
        from urllib.parse import quote

        joiner = "&" if "?" in url else "?"
        url = f"{url}{joiner}token={quote(args.webhook_token, safe='')}"
    return url


def _server_tls(args: argparse.Namespace) -> ssl.SSLContext | None:
    if args.tls_cert is None and args.tls_key is None:
        return None
    if args.tls_cert is None or args.tls_key is None:
        raise ConfigurationError("--tls-cert and --tls-key go together")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(f"cannot load the TLS certificate and key: {exc}") from None
    return context


def _emulator(args: argparse.Namespace) -> Any:
    from ..testing import AvaturnEmulator, RateLimit

    delay, rate = args.processing_delay, args.rate_limit
    return AvaturnEmulator(
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        webhook_url=_webhook_url(args),
        webhook_secret=args.webhook_secret,
        sign_webhooks=not args.unsigned_webhooks,
        webhook_max_attempts=args.webhook_max_attempts,
        webhook_retry_delay=args.webhook_retry_delay,
        processing_delay=delay,
        render_delay=delay if args.render_delay is None else args.render_delay,
        export_delay=delay if args.export_delay is None else args.export_delay,
        response_delay=args.response_delay,
        require_customization=args.require_customization,
        export_size=args.export_size,
        rate_limit=None if rate is None else RateLimit(requests=rate[0], per=rate[1]),
        state_file=args.state_file,
        ssl=_server_tls(args),
    )


async def run_emulator_command(args: argparse.Namespace) -> int:
    if args.webhook_token and not args.webhook_url:
        return _usage_error("--webhook-token needs --webhook-url")
    try:
        emulator = _emulator(args)
        await emulator.start()
    except ConfigurationError as refused:
        return _usage_error(str(refused))
    except OSError as exc:
        busy = exc.errno == errno.EADDRINUSE
        reason = "the port is already in use" if busy else (exc.strerror or str(exc))
        return _usage_error(f"cannot listen on {args.host}:{args.port}: {reason}")
    print(f"Avaturn emulator on {emulator.base_url} (API key {emulator.api_key!r}); Ctrl-C stops")
    print(f"  AVATURN_BASE_URL={emulator.base_url} AVATURN_API_KEY={emulator.api_key}")
    if emulator.webhook_url:
        from .._redact import redact_url

        signing = "unsigned" if args.unsigned_webhooks else f"secret {emulator.webhook_secret!r}"
        token = ", with the token in the query" if args.webhook_token else ""
        print(f"  webhooks to {redact_url(emulator.webhook_url)}, {signing}{token}")
    limit = emulator.rate_limit
    if limit is not None:
        print(f"  rate limit: {limit.requests} API requests per {limit.per:g} s (429 past it)")
    sys.stdout.flush()
    await emulator.serve_forever()
    return EXIT_OK
