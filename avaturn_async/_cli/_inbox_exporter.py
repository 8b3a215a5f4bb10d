"""``avaturn inbox --db DB --metrics-port P``: a standing exporter for one inbox.

Like celery-exporter for a Celery broker: one small process per inbox serves its
gauges (deliveries by status, the dead letters among them, the age of the oldest
pending delivery), read from the database on each scrape, until SIGTERM or
Ctrl-C. It starts even while the database is down (``/readyz`` answers 503
until it is back); a database that holds no inbox is a usage error.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from typing import TextIO

import anyio

from .._errors import ConfigurationError, StorageError
from .._exitcodes import EXIT_OK, EXIT_USAGE
from .._redact import redact_location
from ..webhooks import InboxError, WebhookInbox
from ._metrics_server import install_prometheus, serving_metrics

__all__ = ["run_exporter"]


def _usage(message: str) -> int:
    print(f"avaturn inbox: {message}", file=sys.stderr)
    return EXIT_USAGE


async def _until_stopped() -> None:
    """Return on SIGINT or SIGTERM (the way Kubernetes stops a pod)."""
    if sys.platform == "win32":  # pragma: no cover - no signal receiver there
        await anyio.sleep_forever()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _open(inbox: WebhookInbox, shown: str) -> str | None:
    """Open ``inbox`` now if its database answers; the problem that makes it unusable,
    if any (an unreachable database is not one: the exporter waits for it)."""
    try:
        with anyio.fail_after(10):
            await inbox.__aenter__()
    except (InboxError, ConfigurationError) as exc:
        return str(exc)
    except (StorageError, TimeoutError) as exc:
        print(f"avaturn inbox: {shown} does not answer yet ({exc}); serving anyway, "
              "/readyz answers 503 until it does", file=sys.stderr)  # fmt: skip
    return None


async def run_exporter(
    args: argparse.Namespace, open_inbox: Callable[[str], WebhookInbox], out: TextIO
) -> int:
    """Serve the metrics of the inbox at ``args.db`` until stopped; the exit code."""
    if args.replay or args.replay_dead or args.purge_older_than is not None:
        return _usage("--metrics-port runs an exporter: replay and purge in another run")
    shown = redact_location(args.db)
    try:
        install_prometheus("avaturn-inbox")
        inbox = open_inbox(args.db)
    except (InboxError, ConfigurationError) as exc:
        return _usage(str(exc))
    try:
        problem = await _open(inbox, shown)
        if problem is not None:
            return _usage(problem)

        checks = {"inbox": inbox.ping}
        async with serving_metrics(args.metrics_host, args.metrics_port, checks) as url:
            print(f"avaturn inbox: metrics of {shown} on {url}/metrics "
                  "(also /healthz, /readyz); Ctrl-C or SIGTERM stops", file=out)  # fmt: skip
            out.flush()
            with inbox.reporting_metrics():
                await _until_stopped()
    finally:
        with anyio.CancelScope(shield=True):
            await inbox.aclose()
    return EXIT_OK
