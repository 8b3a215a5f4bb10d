"""``avaturn webhooks``: send a sample event to a receiver, or verify a captured delivery.

::

    avaturn webhooks send avatar.ready|export.ready|render.ready --to URL
        [--avatar-id ID] [--user-id ID] [--render-id ID] [--status ready|failed]
        [--file-url URL] [--secret WHSEC | --unsigned] [--token TOKEN]
        [--token-header NAME] [-H 'Name: value' ...] [--timeout SECONDS]
    avaturn webhooks verify [BODY_FILE|-] [-H 'Name: value' ...] [--url URL]
        [--secret WHSEC | --token TOKEN [--token-header NAME] [--token-query NAME]
         | --unsigned] [--tolerance SECONDS]

``send`` signs with ``--secret`` (or ``$AVATURN_WEBHOOK_SECRET``) as Standard
Webhooks, or sends the event unsigned (``--unsigned``, as Avaturn documents its
webhooks; a ``--token`` alone also means unsigned), posts it once without following
redirects (as webhook senders do), and prints the receiver's answer. ``verify``
reads a body and its headers as captured and prints the typed event, or why it was
refused. Secrets and tokens are never printed; URLs are printed without their query.

Exit codes: 0 a 2xx answer (``send``) or a verified delivery (``verify``); 1 any
other answer, no answer, or a refused delivery; 2 bad usage.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from .._errors import ConfigurationError
from .._exitcodes import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from .._redact import redact_url
from ._argtypes import positive_float

__all__ = ["add_webhooks_parser", "run_webhooks_command"]

_EVENTS = ("avatar.ready", "export.ready", "render.ready")
_SECRET_ENV = "AVATURN_WEBHOOK_SECRET"
_ANSWER_SHOWN = 2000
"""Characters of the receiver's answer printed; the rest is cut."""


def _header(text: str) -> tuple[str, str]:
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise argparse.ArgumentTypeError("expected 'Name: value'")
    return name.strip(), value.strip()


def _add_auth_options(parser: argparse.ArgumentParser, *, verify: bool) -> None:
    unsigned = "only parse the body" if verify else "as Avaturn documents its webhooks"
    token = "check this one instead of a signature" if verify else "sent in --token-header"
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--secret", help=f"Standard Webhooks secret (whsec_...); default ${_SECRET_ENV}"
    )
    mode.add_argument("--unsigned", action="store_true", help="no signature: " + unsigned)
    parser.add_argument("--token", help="shared token: " + token)
    parser.add_argument("--token-header", default="x-avaturn-token", help="default x-avaturn-token")
    parser.add_argument(
        "-H",
        "--header",
        type=_header,
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="a request header (repeatable)",
    )


def add_webhooks_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "webhooks",
        help="send a sample webhook to a receiver, or verify a captured delivery",
        description="Send a sample event to a webhook receiver (signed, unsigned or with "
        "a token) and print its answer; or verify a captured delivery and print its event.",
    )
    actions = parser.add_subparsers(dest="webhooks_command", required=True, metavar="ACTION")

    send = actions.add_parser("send", help="POST a sample event and print the answer")
    send.add_argument("event", choices=_EVENTS, metavar="EVENT", help=" | ".join(_EVENTS))
    send.add_argument("--to", required=True, metavar="URL", help="the receiver's URL")
    send.add_argument("--avatar-id", help="default: a random UUID")
    send.add_argument("--user-id", help="default: a random user id")
    send.add_argument("--render-id", help="render.ready only; default: a random UUID")
    send.add_argument("--status", default="ready", help="ready (default) or failed")
    send.add_argument("--file-url", help="export_url / render_url (default: a sample URL)")
    send.add_argument("--timeout", type=positive_float, default=10.0, metavar="SECONDS")
    _add_auth_options(send, verify=False)

    verify = actions.add_parser("verify", help="check a captured delivery; print its event")
    verify.add_argument(
        "body", nargs="?", default="-", metavar="BODY_FILE", help="the raw body; - for stdin"
    )
    verify.add_argument("--url", help="the request's URL (its query may carry the token)")
    verify.add_argument(
        "--token-query", metavar="NAME", help="also read the token from this query parameter"
    )
    age = "accepted age of webhook-timestamp (default 300; raise it for old captures)"
    verify.add_argument(
        "--tolerance", type=positive_float, default=300.0, metavar="SECONDS", help=age
    )
    _add_auth_options(verify, verify=True)


async def run_webhooks_command(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out if out is not None else sys.stdout
    try:
        if args.webhooks_command == "send":
            return await _send(args, out)
        return _verify(args, out)
    except ConfigurationError as exc:
        print(f"avaturn webhooks: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _secret(args: argparse.Namespace) -> str | None:
    """The signing secret, or ``None`` for an unsigned delivery."""
    if args.unsigned:
        return None
    secret: str | None = args.secret or os.environ.get(_SECRET_ENV) or None
    if secret is None and args.token is None:
        raise ConfigurationError(
            f"no signing secret: pass --secret, set {_SECRET_ENV}, or choose --unsigned "
            "(or --token alone) for an unsigned delivery"
        )
    return secret


def _sample_event(args: argparse.Namespace) -> Any:
    from ..testing import make_avatar_ready, make_export_ready, make_render_ready

    ids = {"avatar_id": args.avatar_id, "user_id": args.user_id, "status": args.status}
    if args.event == "avatar.ready":
        return make_avatar_ready(**ids)
    url = {} if args.file_url is None else {args.event.replace(".ready", "_url"): args.file_url}
    if args.event == "export.ready":
        return make_export_ready(**ids, **url)
    return make_render_ready(**ids, render_id=args.render_id, **url)


def _delivery(args: argparse.Namespace) -> tuple[bytes, dict[str, str], str]:
    """(body, headers, how it is authenticated) of the delivery ``send`` makes."""
    from ..testing import event_to_bytes, sign_webhook

    event = _sample_event(args)
    secret = _secret(args)
    if secret is not None:
        body, headers = sign_webhook(event, secret)
        how = "signed"
    else:
        body, headers = event_to_bytes(event), {"content-type": "application/json"}
        how = "unsigned"
    if args.token is not None:
        headers[args.token_header] = args.token
        how += f", token in {args.token_header}"
    headers.update(dict(args.header))
    return body, headers, how


async def _send(args: argparse.Namespace, out: TextIO) -> int:
    import aiohttp

    body, headers, how = _delivery(args)
    shown = redact_url(args.to)
    print(f"POST {shown} {args.event} ({how})", file=out)
    print(body.decode(), file=out)
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(args.to, data=body, headers=headers, allow_redirects=False) as answer,
        ):
            text = (await answer.read()).decode("utf-8", "replace")
            status, reason, location = answer.status, answer.reason, answer.headers.get("location")
    except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
        print(f"avaturn webhooks: no answer from {shown}: {type(exc).__name__}: {exc}", file=out)
        return EXIT_FAILED
    print(f"-> {status} {reason or ''}".rstrip(), file=out)
    if text:
        print(text[:_ANSWER_SHOWN] + ("..." if len(text) > _ANSWER_SHOWN else ""), file=out)
    if location is not None and 300 <= status < 400:
        print(
            f"redirected to {redact_url(location)}: webhook senders do not follow redirects, "
            "so this receiver loses every delivery (serve the exact URL)",
            file=out,
        )
    return EXIT_OK if 200 <= status < 300 else EXIT_FAILED


def _read_body(source: str) -> bytes:
    if source == "-":
        return sys.stdin.buffer.read()
    try:
        with open(source, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigurationError(f"cannot read {source}: {exc.strerror or exc}") from None


def _verifier(args: argparse.Namespace) -> Any:
    """The verifier ``args`` ask for, or ``None`` to parse only (``--unsigned``)."""
    from ..webhooks import SharedTokenVerifier, WebhookVerifier

    if args.unsigned:
        return None
    if args.token is not None and args.secret is None:
        return SharedTokenVerifier(args.token, args.token_header, query_param=args.token_query)
    secret = args.secret or os.environ.get(_SECRET_ENV)
    if not secret:
        raise ConfigurationError(
            f"nothing to verify with: pass --secret (or set {_SECRET_ENV}), --token, "
            "or --unsigned to parse only"
        )
    return WebhookVerifier(secret, tolerance=timedelta(seconds=args.tolerance))


def _query(url: str | None) -> Mapping[str, str]:
    if url is None:
        return {}
    # A repeated name: its first value counts, as in the receivers.
    return dict(reversed(parse_qsl(urlsplit(url).query, keep_blank_values=True)))


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    from .. import webhooks

    verifier = _verifier(args)
    body = _read_body(args.body)
    headers = dict(args.header)
    try:
        if verifier is None:
            event = webhooks.parse_event(body)
        else:
            event = verifier.verify_and_parse(body, headers, query=_query(args.url))
    except webhooks.WebhookVerificationError as exc:
        print(f"refused ({exc.reason}): {exc}", file=out)
        return EXIT_FAILED
    except (webhooks.WebhookParseError, webhooks.WebhookPayloadTooLargeError) as exc:
        print(f"refused (malformed_payload): {exc}", file=out)
        return EXIT_FAILED
    if verifier is None:
        print(f"parsed, NOT authenticated (--unsigned) (no verifier): {event!r}", file=out)
    else:
        print(f"verified ({verifier.mode}): {event!r}", file=out)
    return EXIT_OK
