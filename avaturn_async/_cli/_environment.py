"""Clients for the onboarding command: against Avaturn (polling, or fed by a
webhook receiver) or against an embedded emulator with its webhooks looped back.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from .._adaptive import AdaptiveConcurrency, RateLimitGate
from .._client import AvaturnClient
from .._errors import ConfigurationError
from .._hub import EventHub
from .._pacing import RateBudget
from ..webhooks import InMemoryIdempotencyStore, WebhookPipeline, WebhookRouter, WebhookVerifier
from ..webhooks.aiohttp import serve_webhooks

if TYPE_CHECKING:
    from ..testing import AvaturnEmulator

__all__ = ["emulated_client", "remote_client"]

# Bounded like the hub: a receiver's memory must not grow with the rows.
_REMEMBERED_EVENTS = 4096


def _receiving(secret: str) -> tuple[EventHub, WebhookPipeline]:
    """An event hub, and the pipeline feeding it the deliveries signed with ``secret``."""
    hub = EventHub(remember=_REMEMBERED_EVENTS)
    router = WebhookRouter()
    hub.attach(router)
    store = InMemoryIdempotencyStore(max_entries=_REMEMBERED_EVENTS)
    return hub, WebhookPipeline(WebhookVerifier(secret), router, store=store)


@asynccontextmanager
async def remote_client(
    *,
    webhook_port: int | None = None,
    webhook_host: str = "0.0.0.0",
    webhook_secret: str | None = None,
    max_concurrency: int = 16,
    gate: RateLimitGate | None = None,
    rate_limit: float | RateBudget | None = None,
) -> AsyncIterator[tuple[AvaturnClient, str | None]]:
    """A client configured from the environment, and the receiver's URL: with
    ``webhook_port``, a receiver there feeds the client's event hub (the secret
    verifies the deliveries); without, ``None`` and waiting polls. ``gate``
    shares the client's rate-limit pauses (with the other workers of a batch);
    ``rate_limit`` paces its API requests."""
    hub, receiver = None, None
    if webhook_port is not None:
        if not webhook_secret:
            raise ConfigurationError(
                "--webhook-port needs the webhook signing secret in AVATURN_WEBHOOK_SECRET"
            )
        hub, pipeline = _receiving(webhook_secret)
        receiver = serve_webhooks(pipeline, host=webhook_host, port=webhook_port)
    adaptive = AdaptiveConcurrency(gate=gate)
    async with AvaturnClient(
        max_concurrency=max_concurrency, event_hub=hub, adaptive=adaptive, rate_limit=rate_limit
    ) as client:
        if receiver is None:
            yield client, None
            return
        async with receiver as server:
            yield client, server.url


@asynccontextmanager
async def emulated_client(
    *,
    webhook_port: int = 0,
    processing_delay: float = 0.05,
    max_concurrency: int = 16,
    state_file: str | os.PathLike[str] | None = None,
    gate: RateLimitGate | None = None,
    rate_limit: float | RateBudget | None = None,
) -> AsyncIterator[tuple[AvaturnClient, AvaturnEmulator, str]]:
    """A client of an embedded :class:`AvaturnEmulator`, the emulator, and the URL of
    the embedded receiver its signed webhooks go to, on 127.0.0.1 (a free port unless
    ``webhook_port``).

    With ``state_file``, the emulator keeps its users and avatars there (every
    change written before it is answered), so a later run, even after the process
    was killed, talks to the same service: the journal's ids still exist.
    """
    from ..testing import AvaturnEmulator, make_webhook_secret

    secret = make_webhook_secret()
    hub, pipeline = _receiving(secret)
    async with (
        serve_webhooks(pipeline, port=webhook_port) as server,
        AvaturnEmulator(
            webhook_url=server.url,
            webhook_secret=secret,
            processing_delay=processing_delay,
            export_delay=processing_delay,
            render_delay=processing_delay,
            state_file=state_file,
        ) as emulator,
        AvaturnClient(
            api_key=emulator.api_key,
            base_url=emulator.base_url,
            event_hub=hub,
            max_concurrency=max_concurrency,
            adaptive=AdaptiveConcurrency(gate=gate),
            rate_limit=rate_limit,
        ) as client,
    ):
        yield client, emulator, server.url
