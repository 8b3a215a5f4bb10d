"""``WebhookSender``: signed webhook deliveries to your own receiver, for tests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import aiohttp
import attrs

from ..webhooks import Event, WebhookVerifier
from ._webhooks import make_webhook_secret, sign_webhook

__all__ = ["WebhookSender"]


@attrs.frozen(kw_only=True)
class WebhookSender:
    """Signs and POSTs webhook deliveries the way Avaturn (and the emulator) would.

    Give your receiver ``sender.verifier()`` (or ``sender.secret``), then
    ``await sender.deliver(url, make_avatar_ready())`` and assert on the answer. The
    secret is fresh for every sender (``make_webhook_secret()``) unless given; it is
    never shown in the repr.
    """

    secret: str = attrs.field(factory=make_webhook_secret, repr=False)

    def verifier(self) -> WebhookVerifier:
        """A :class:`~avaturn_async.webhooks.WebhookVerifier` that accepts this sender."""
        return WebhookVerifier(self.secret)

    def sign(
        self,
        payload: Mapping[str, Any] | Event | bytes,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
    ) -> tuple[bytes, dict[str, str]]:
        """``(body, headers)`` of a signed delivery, as :func:`sign_webhook` makes it."""
        return sign_webhook(payload, self.secret, msg_id=msg_id, timestamp=timestamp)

    async def deliver(
        self,
        url: str,
        payload: Mapping[str, Any] | Event | bytes,
        *,
        msg_id: str | None = None,
        timestamp: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> int:
        """POST a signed delivery to ``url`` (redirects not followed); returns the status.

        ``headers`` are added to (or replace) the signed ones, e.g. to test a bad
        signature.
        """
        body, signed = self.sign(payload, msg_id=msg_id, timestamp=timestamp)
        signed.update(headers or {})
        async with aiohttp.ClientSession() as session, session.post(
            url, data=body, headers=signed, allow_redirects=False
        ) as response:
            await response.read()
            return response.status
