"""Confirming webhook events against the API before any handler sees them.

Avaturn documents no webhook signature, so a body's claims may be forged by
whoever learns the receiver's URL. :class:`EventConfirmer` checks each event
against what the API says, and against what a genuine event can hold:

* ``avatar.ready``: the user's avatars are listed (``include_not_ready=True``);
  the avatar must be there with the event's status (``ready``, or ``failed``; an
  event without a status announces a ready avatar);
* ``export.ready`` and ``render.ready`` cannot be read back from the API. The
  avatar must be listed for that user, and the file URL must be ``https`` (or on
  the client's own base URL, scheme, host and port: the emulator), carry no
  credentials, and have a host of ``url_hosts``; a ``ready`` event must carry one;
* an event of a type this version does not know cannot be confirmed: refused.

A contradiction is final: the caller acknowledges the delivery (the sender stops
retrying) and dispatches nothing; it is logged at warning level and counted. An
error reaching the API is not a contradiction: it propagates, and the caller
retries (503 to the sender, or the inbox's next attempt), so no event is
dispatched unconfirmed and none is dropped.

The client is taken through the :class:`ConfirmingClient` protocol, which
:class:`~avaturn_async.AvaturnClient` satisfies: the webhooks layer never
imports the client.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Protocol

import attrs

from .._errors import ConfigurationError, NotFoundError, UnprocessableEntityError
from .._events import AvatarReady, Event, EventStatus, ExportReady, KnownEvent, RenderReady
from ._log import webhook_logger

__all__ = ["Confirmation", "ConfirmingClient", "EventConfirmer", "ListedAvatar"]


class ListedAvatar(Protocol):
    """One item of List User Avatars, as far as confirmation reads it."""

    @property
    def id(self) -> str: ...

    @property
    def status(self) -> object: ...


class _AvatarLister(Protocol):
    async def list(
        self, user_id: str, *, include_not_ready: bool = ...
    ) -> Sequence[ListedAvatar]: ...


class ConfirmingClient(Protocol):
    """What :class:`EventConfirmer` needs from a client; ``AvaturnClient`` has it."""

    @property
    def base_url(self) -> str: ...

    @property
    def avatars(self) -> _AvatarLister: ...


@attrs.frozen(kw_only=True)
class Confirmation:
    """The verdict on one event: ``confirmed``, or why not (``reason``)."""

    confirmed: bool
    reason: str = ""


_CONFIRMED = Confirmation(confirmed=True)


def _parse_hosts(url_hosts: Iterable[str]) -> tuple[frozenset[str], tuple[str, ...]]:
    if isinstance(url_hosts, (str, bytes)):
        raise ConfigurationError("url_hosts must be a list of hosts, e.g. ['files.example.com']")
    names: set[str] = set()
    suffixes: list[str] = []
    for entry in url_hosts:
        text = entry.strip().lower().rstrip(".") if isinstance(entry, str) else ""
        if text.startswith("*.") and re.fullmatch(r"[a-z0-9_.-]+", text[2:]):
            suffixes.append(text[1:])
        elif re.fullmatch(r"[a-z0-9_.-]+", text):
            names.add(text)
        else:
            raise ConfigurationError(
                f"url_hosts: {entry!r} is not a host name or a '*.suffix' "
                "(no scheme, port or path: e.g. 'files.example.com' or '*.example.com')"
            )
    return frozenset(names), tuple(suffixes)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme)
    return (parts.scheme, (parts.hostname or "").rstrip("."), port or default)


def _wire(status: object) -> str | None:
    """A status as its wire string (a known enum member or a kept unknown ``str``)."""
    return None if status is None else str(status)


class EventConfirmer:
    """Confirms events against the API through ``client``; counts its verdicts.

    ``url_hosts`` names the hosts an ``export.ready`` or ``render.ready`` URL may
    point at: host names (any casing) or ``*.example.com`` for any subdomain.
    URLs on the client's base URL (the emulator) are always accepted; pass ``()``
    to accept nothing else. Give the pipeline (``WebhookPipeline(...,
    confirm=confirmer)``) or the inbox worker one confirmer.

    A confirmation costs one List User Avatars call, with the client's retries:
    give it a client with a short timeout (``client.with_options(timeout=5)``) so
    that a sender waiting for the answer is not held long.
    """

    def __init__(self, client: ConfirmingClient, *, url_hosts: Iterable[str]) -> None:
        self._client = client
        self._names, self._suffixes = _parse_hosts(url_hosts)
        self._base_origin = _origin(client.base_url)
        self._counts = {"confirmed": 0, "contradicted": 0}

    def __repr__(self) -> str:
        hosts = sorted(self._names) + [f"*{suffix}" for suffix in self._suffixes]
        return f"EventConfirmer(url_hosts={hosts!r}, counts={self._counts!r})"

    @property
    def counts(self) -> Mapping[str, int]:
        """How many events were ``confirmed`` and ``contradicted`` (a live view)."""
        return MappingProxyType(self._counts)

    async def confirm(self, event: Event) -> Confirmation:
        """The verdict on ``event``; a contradiction is logged and counted.

        Raises what the client raises when the API cannot be asked (a network
        failure, a 5xx after retries, a refused API key): the caller retries.
        """
        verdict = await self._check(event)
        if verdict.confirmed:
            self._counts["confirmed"] += 1
            return verdict
        self._counts["contradicted"] += 1
        avatar = getattr(event, "avatar_id", "-")
        webhook_logger().warning(
            "webhook %s (avatar %s) not dispatched, contradicted: %s",
            event.event,
            avatar,
            verdict.reason,
        )
        return verdict

    async def _check(self, event: Event) -> Confirmation:
        if not isinstance(event, KnownEvent):
            return _refuted(f"an event of type {event.event!r} cannot be confirmed")
        if isinstance(event, (ExportReady, RenderReady)):
            url = event.export_url if isinstance(event, ExportReady) else event.render_url
            problem = self._url_problem(url, event.status)
            if problem is not None:
                return _refuted(problem)
        if event.user_id is None:
            return _refuted("the event names no user_id to confirm it with")
        listed = await self._listed(event.user_id, event.avatar_id)
        if listed is None:
            return _refuted(f"avatar {event.avatar_id} is not listed for user {event.user_id}")
        if isinstance(event, AvatarReady):
            wanted = _wire(event.status) or EventStatus.READY.value
            if _wire(listed.status) != wanted:
                return _refuted(
                    f"avatar {event.avatar_id} is {_wire(listed.status)!r}, not {wanted!r}"
                )
        return _CONFIRMED

    async def _listed(self, user_id: str, avatar_id: str) -> ListedAvatar | None:
        try:
            avatars = await self._client.avatars.list(user_id, include_not_ready=True)
        except (NotFoundError, UnprocessableEntityError):
            return None  # the API does not know (or accept) this user id
        wanted = avatar_id.lower()  # UUIDs: the same in any casing
        return next((item for item in avatars if item.id.lower() == wanted), None)

    def _url_problem(self, url: str | None, status: object) -> str | None:
        """Why the file URL is not acceptable, or ``None``."""
        if url is None:
            ready = _wire(status) == EventStatus.READY.value
            return "a ready event without a file URL" if ready else None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
        except ValueError:
            return "an unreadable file URL"
        host = (parts.hostname or "").rstrip(".")
        if parts.username is not None or parts.password is not None:
            return f"a file URL with credentials (host {host!r})"
        if self._base_origin is not None and _origin(url) == self._base_origin:
            return None
        if parts.scheme != "https":
            return f"a file URL that is not https (host {host!r})"
        if host in self._names or any(host.endswith(suffix) for suffix in self._suffixes):
            return None
        return f"file URL host {host!r} is not in url_hosts"


def _refuted(reason: str) -> Confirmation:
    return Confirmation(confirmed=False, reason=reason)
