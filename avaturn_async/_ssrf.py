"""Downloads that cannot be pointed inside your network (server-side request forgery).

A render or export URL arrives in a webhook body; with an unsigned sender, whoever
knows the receiver's URL chooses it. ``client.download()`` therefore refuses, before
connecting, a host that is or resolves to an address outside the public internet,
as OWASP's SSRF Prevention Cheat Sheet advises:

* the *resolved* addresses are checked at connect time, by :class:`GuardedResolver`
  on the connection pool that downloads use: every address aiohttp connects to
  passes through it, and that pool keeps no DNS cache, so an answer that changes
  between a check and the connection (DNS rebinding) cannot slip by;
* an IP address written in the URL never reaches a resolver, so each hop's host is
  checked before its request; legacy numeric forms (``127.1``, ``2130706433``) are
  refused outright;
* an IPv4 address carried inside an IPv6 one (``::ffff:127.0.0.1``, 6to4, NAT64,
  Teredo) is judged as that IPv4 address;
* redirects are followed here, one hop at a time, each checked like the first; a
  redirect from ``https`` to ``http`` is refused;
* through a proxy, the local resolver sees only the proxy's name (the proxy looks
  the target up), so each hop's host is resolved here and checked before the
  request, a pre-flight check: the proxy may still resolve it differently a moment
  later (DNS rebinding), and a host that cannot be resolved here is refused rather
  than handed to the proxy unchecked. The proxies themselves (configured by you)
  are not checked.

Allowed anyway: the hosts named in ``allowed_download_hosts`` (a name, ``*.suffix``,
an address or a network), and the addresses of the client's own base URL (the
emulator on 127.0.0.1 serves its files there). The client hands its
:class:`DownloadGuard` to the transport in a context variable, so a transport that
wraps :class:`~avaturn_async.AiohttpTransport` keeps the client's policy.
"""

from __future__ import annotations

import contextvars
import ipaddress
import re
import socket
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from typing import TypeAlias

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ._download_errors import DownloadError
from ._errors import ConfigurationError, UnsafeURLError
from ._network import NetworkSettings

__all__ = ["DownloadGuard", "DownloadPool", "address_kind", "guarding", "open_download"]

IPAddress: TypeAlias = "ipaddress.IPv4Address | ipaddress.IPv6Address"
IPNetwork: TypeAlias = "ipaddress.IPv4Network | ipaddress.IPv6Network"

MAX_REDIRECTS = 10
"""Redirects followed per download, as aiohttp's own default."""

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
# What inet_aton reads as an IPv4 address although ipaddress does not: 127.1, 0x7f.1,
# 2130706433. getaddrinfo resolves them, so they are refused rather than resolved.
_LEGACY_NUMERIC = re.compile(r"[0-9a-fx.]+", re.IGNORECASE)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo client, NAT64)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_kind(address: IPAddress) -> str | None:
    """What kind of non-public address ``address`` is, or ``None`` for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            kind = address_kind(inner)
            return None if kind is None else f"{kind} (IPv4 inside IPv6)"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local (the cloud metadata range)"
    if address.is_multicast:
        return "multicast"
    if address.is_unspecified:
        return "unspecified"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "not globally routable"
    return None


def _parse_address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])  # a zone id is not the address
    except ValueError:
        return None


def _parse_allowed(
    entries: Iterable[str],
) -> tuple[frozenset[str], tuple[str, ...], tuple[IPNetwork, ...]]:
    """Names, ``*.suffix`` suffixes (kept as ``.suffix``) and networks of the allow-list."""
    if isinstance(entries, (str, bytes)):
        raise ConfigurationError(
            "allowed_download_hosts must be a list of hosts, e.g. ['files.example.com']"
        )
    names: set[str] = set()
    suffixes: list[str] = []
    networks: list[IPNetwork] = []
    for entry in entries:
        if not isinstance(entry, str) or not entry.strip():
            raise ConfigurationError(f"allowed_download_hosts: {entry!r} is not a host name")
        text = entry.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            if text.startswith("*.") and "*" not in text[2:]:
                suffixes.append(text[1:])
            elif re.fullmatch(r"[a-z0-9_.-]+", text):
                names.add(text)
            else:
                raise ConfigurationError(
                    f"allowed_download_hosts: {entry!r} is neither a host name, a '*.suffix', "
                    "an IP address nor a network"
                ) from None
    return frozenset(names), tuple(suffixes), tuple(networks)


class DownloadGuard:
    """Which hosts and addresses a client's downloads may reach.

    ``allowed_hosts`` entries are host names (exact, any casing), ``*.example.com``
    (any subdomain), IP addresses or networks (``10.1.0.0/16``). ``base_url`` is the
    client's: downloads may reach the addresses it is on.
    """

    __slots__ = ("_base_addresses", "_base_host", "_names", "_networks", "_suffixes")

    def __init__(self, allowed_hosts: Iterable[str] = (), *, base_url: str | None = None) -> None:
        self._names, self._suffixes, self._networks = _parse_allowed(allowed_hosts)
        host = None if base_url is None else yarl.URL(base_url).raw_host
        self._base_host = host.lower().rstrip(".") if host else None
        self._base_addresses: frozenset[IPAddress] | None = None

    def __repr__(self) -> str:
        allowed = sorted(self._names) + [f"*{s}" for s in self._suffixes]
        allowed += [str(network) for network in self._networks]
        return f"DownloadGuard(allowed_hosts={allowed!r}, base_host={self._base_host!r})"

    def host_allowed(self, host: str) -> bool:
        """``host`` is named in the allow-list (its addresses are then not checked)."""
        name = host.lower().rstrip(".")
        return name in self._names or any(name.endswith(suffix) for suffix in self._suffixes)

    def _address_allowed(self, address: IPAddress) -> bool:
        inner = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        return any(
            candidate.version == network.version and candidate in network
            for candidate in (address, inner)
            if candidate is not None
            for network in self._networks
        )

    async def _base(self, resolver: AbstractResolver) -> frozenset[IPAddress]:
        """The addresses the base URL is on (looked up once, when first needed)."""
        if self._base_addresses is not None:
            return self._base_addresses
        host = self._base_host
        if host is None:
            return frozenset()
        literal = _parse_address(host)
        if literal is not None:
            found: frozenset[IPAddress] = frozenset({literal})
        else:
            try:
                results = await resolver.resolve(host, 0, family=socket.AF_UNSPEC)
            except OSError:
                return frozenset()  # not cached: looked up again next time
            parsed = (_parse_address(result["host"]) for result in results)
            found = frozenset(address for address in parsed if address is not None)
        self._base_addresses = found
        return found

    async def check_address(self, host: str, text: str, resolver: AbstractResolver) -> None:
        """Raise :class:`UnsafeURLError` unless ``host``'s address ``text`` may be reached."""
        address = _parse_address(text)
        if address is None:
            raise _refused(host, text, "unreadable")
        kind = address_kind(address)
        if kind is None or self._address_allowed(address):
            return
        if address in await self._base(resolver):
            return
        raise _refused(host, str(address), kind)

    async def check_host(
        self, host: str, resolver: AbstractResolver, *, resolve: bool = False
    ) -> None:
        """Check a URL's host before its request: IP literals here, names at connect time;
        with ``resolve`` (a proxy will connect to it: the pool never sees it), names here too."""
        if self.host_allowed(host):
            return
        if _parse_address(host) is not None:
            await self.check_address(host, host, resolver)
            return
        if _LEGACY_NUMERIC.fullmatch(host):
            try:
                socket.inet_aton(host)
            except OSError:
                pass  # not an address after all: a name, resolved and checked
            else:
                raise _refused(host, None, "non-canonical numeric")
        if not resolve:
            return
        try:
            results = await resolver.resolve(host, 0, family=socket.AF_UNSPEC)
        except OSError:
            raise UnsafeURLError(
                f"download refused: {host!r} cannot be resolved here to check it before the "
                f"proxy connects to it. If this host is yours, allow it: "
                f"AvaturnClient(allowed_download_hosts=[{host!r}])",
                host=host,
            ) from None
        for result in results:
            await self.check_address(host, result["host"], resolver)

    async def check_resolved(
        self, host: str, addresses: Iterable[str], resolver: AbstractResolver
    ) -> None:
        """Check every address ``host`` resolved to: one bad address refuses the host."""
        if self.host_allowed(host):
            return
        for address in addresses:
            await self.check_address(host, address, resolver)


def _refused(host: str, address: str | None, kind: str) -> UnsafeURLError:
    if address is None or address == host:
        where = f"{host!r} is a {kind} address"
    else:
        where = f"{host!r} resolves to {address}, a {kind} address"
    return UnsafeURLError(
        f"download refused before connecting: {where}. If this host is yours, allow it: "
        f"AvaturnClient(allowed_download_hosts=[{host!r}])",
        host=host,
        address=address,
    )


_STRICT = DownloadGuard()
_ACTIVE: contextvars.ContextVar[DownloadGuard | None] = contextvars.ContextVar(
    "avaturn_download_guard", default=None
)


def active_guard() -> DownloadGuard:
    """The guard of the download running in this task: its client's, else the strictest."""
    return _ACTIVE.get() or _STRICT


@contextmanager
def guarding(guard: DownloadGuard) -> Iterator[None]:
    """Make ``guard`` the policy of the downloads started in this block (this task)."""
    token = _ACTIVE.set(guard)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


class GuardedResolver(AbstractResolver):
    """Resolves with ``inner``, then refuses the host unless every address may be reached.

    ``proxies`` (``(host, port)`` pairs) are the configured proxies: not checked.
    """

    def __init__(
        self, inner: AbstractResolver, proxies: frozenset[tuple[str, int | None]] = frozenset()
    ) -> None:
        self.inner = inner
        self.proxies = proxies

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self.inner.resolve(host, port, family)
        if (host, port) not in self.proxies:
            await active_guard().check_resolved(host, [r["host"] for r in results], self.inner)
        return results

    async def close(self) -> None:
        await self.inner.close()


class DownloadPool:
    """The connections downloads use: a guarded resolver and no DNS cache.

    Separate from the API's pool, so that a name the API calls resolved (unchecked,
    and cached) is never reused by a download. ``resolver`` is aiohttp's default
    unless given (a seam for tests and custom DNS); ``network`` gives the proxies
    and the TLS context, the same as the API's pool.
    """

    def __init__(
        self, *, limit: int, resolver: AbstractResolver | None, network: NetworkSettings
    ) -> None:
        inner = resolver if resolver is not None else DefaultResolver()
        self.resolver = GuardedResolver(inner, network.proxy_endpoints())
        self.network = network
        connector = network.connector(limit=limit, resolver=self.resolver, use_dns_cache=False)
        self.session = aiohttp.ClientSession(connector=connector, raise_for_status=False)

    async def aclose(self) -> None:
        await self.session.close()
        await self.resolver.close()


def _next_hop(current: yarl.URL, location: str) -> yarl.URL:
    target = current.join(yarl.URL(location))
    if target.scheme not in ("http", "https"):
        raise UnsafeURLError(
            f"download refused: redirected to a {target.scheme or 'relative'!r} URL",
            host=target.raw_host or "",
        )
    if current.scheme == "https" and target.scheme == "http":
        raise UnsafeURLError(
            f"download refused: redirected from https to http (host {target.raw_host!r})",
            host=target.raw_host or "",
        )
    return target


@asynccontextmanager
async def open_download(
    pool: DownloadPool,
    url: yarl.URL | str,
    *,
    headers: Mapping[str, str],
    timeout: aiohttp.ClientTimeout,
    shown: str,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """GET ``url`` through ``pool``, following redirects, each hop's host checked first.

    Yields the first answer that is not a redirect; ``shown`` (the URL without its
    query) names the download in errors.
    """
    guard, resolver, target = active_guard(), pool.resolver.inner, url
    for _ in range(MAX_REDIRECTS + 1):
        current = target if isinstance(target, yarl.URL) else yarl.URL(target)
        proxy = pool.network.proxy_for(current)
        await guard.check_host(current.raw_host or "", resolver, resolve=proxy is not None)
        https = current.scheme == "https"
        routing = {"headers": headers} if proxy is None else proxy.arguments(https, headers)
        async with pool.session.get(
            target, timeout=timeout, allow_redirects=False, **routing
        ) as answer:
            location = answer.headers.get("Location") if answer.status in _REDIRECTS else None
            if location is None:
                yield answer
                return
        target = _next_hop(current, location)
    raise DownloadError(f"more than {MAX_REDIRECTS} redirects", path=shown)
