"""Where the client's connections go: proxies, TLS, and network errors that say where.

* ``proxy="http://user:pass@host:port"`` sends every request (API calls, photo
  uploads, downloads) through that proxy, whatever the environment says.
* Otherwise, with ``trust_env=True`` (the default, as in requests and httpx),
  ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``ALL_PROXY`` (any casing; the lower-case one
  first) choose the proxy by the target's scheme, and ``NO_PROXY`` lists the hosts
  reached directly: ``*``, names (``example.com`` also covers its subdomains;
  ``.example.com`` only them), ``host:port``, IP addresses and networks
  (``10.0.0.0/8``). As Go's ``ProxyFromEnvironment`` does, ``localhost`` and
  loopback addresses never go through an environment proxy: the emulator on
  127.0.0.1 keeps working on a machine with a proxy set for everything.
* ``ssl=`` (an ``ssl.SSLContext``: a private CA, a client certificate) is used for
  every connection, the API's pool and the downloads' alike.

Only ``http://`` proxies are supported (they tunnel ``https://`` targets with
``CONNECT``), as in aiohttp; a SOCKS or ``https://`` proxy given explicitly is a
:class:`ConfigurationError`, one found in the environment is ignored with a warning.
A proxy's credentials go in a ``Proxy-Authorization`` header and never appear in
a repr, a log line or an error: :class:`Proxy` shows ``http://***@host:port``.

:func:`network_error` turns aiohttp's exceptions into ours, each naming the host
and port it failed to reach (the proxy's, when the proxy failed).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import os
from collections.abc import Mapping
from ssl import SSLContext
from typing import Any
from urllib.request import getproxies_environment

import aiohttp
import attrs
import yarl
from aiohttp.abc import AbstractResolver

from ._errors import (
    CertificateError,
    ConfigurationError,
    ConnectError,
    ConnectionLostError,
    RequestTimeoutError,
    TransportError,
)
from ._redact import redact_userinfo

__all__ = ["NetworkSettings", "NoProxy", "Proxy", "network_error", "parse_proxy", "read_network"]

logger = logging.getLogger("avaturn_async")

_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@attrs.frozen
class Proxy:
    """One HTTP proxy: its URL without credentials, and the header that carries them."""

    url: yarl.URL
    headers: Mapping[str, str] | None = attrs.field(default=None, eq=False)

    def __repr__(self) -> str:
        credentials = "***@" if self.headers else ""
        return f"Proxy('{self.url.scheme}://{credentials}{self.url.host}:{self.url.port}')"

    @property
    def where(self) -> str:
        """``host:port``, for messages."""
        return f"{self.url.host}:{self.url.port}"

    def arguments(self, https: bool, headers: Mapping[str, str]) -> dict[str, Any]:
        """aiohttp's arguments for one request through this proxy (``headers``: the request's).

        The credentials ride in ``Proxy-Authorization``: on the ``CONNECT`` request
        for an ``https://`` target, on the request itself for an ``http://`` one
        (as aiohttp's deprecated ``proxy_auth`` would put them).
        """
        if self.headers is None:
            return {"proxy": self.url, "headers": headers}
        if https:
            return {"proxy": self.url, "headers": headers, "proxy_headers": self.headers}
        return {"proxy": self.url, "headers": {**headers, **self.headers}}


def parse_proxy(text: str) -> Proxy:
    """A proxy URL (``http://user:pass@host:port``; ``host:port`` means ``http://``)."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigurationError("proxy must be a URL such as 'http://proxy.internal:3128'")
    text = text.strip()
    shown = redact_userinfo(text if "://" in text else f"http://{text}")
    try:
        url = yarl.URL(text if "://" in text else f"http://{text}")
    except ValueError:
        raise ConfigurationError(f"proxy {shown!r} is not a URL") from None
    if url.scheme != "http" or not url.host:
        raise ConfigurationError(
            f"proxy {shown!r} is not supported: give an http:// proxy (it tunnels https:// "
            "targets with CONNECT); aiohttp speaks neither SOCKS nor https:// to a proxy"
        )
    headers = None
    if url.user is not None:
        pair = f"{url.user}:{url.password or ''}".encode()
        headers = {"Proxy-Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}
    return Proxy(url.origin(), headers)


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None


@attrs.frozen
class NoProxy:
    """``NO_PROXY``: the hosts reached directly although an environment proxy is set."""

    everything: bool = False
    names: tuple[tuple[str, int | None], ...] = ()
    """``(suffix, port)``: ``example.com`` matches it and its subdomains, ``.example.com``
    only these; a port limits the entry to it."""
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def parse(cls, value: str) -> NoProxy:
        names: list[tuple[str, int | None]] = []
        networks = []
        for entry in (part.strip().lower() for part in value.replace(" ", ",").split(",")):
            if not entry:
                continue
            if entry == "*":
                return cls(everything=True)
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
                names.append((host.removeprefix("*"), int(port) if port.isdigit() else None))
        return cls(names=tuple(names), networks=tuple(networks))

    def matches(self, host: str, port: int | None) -> bool:
        if self.everything:
            return True
        address = _address(host)
        if address is not None and any(
            address.version == network.version and address in network for network in self.networks
        ):
            return True
        name = host.lower().rstrip(".")
        for suffix, only_port in self.names:
            below = suffix if suffix.startswith(".") else f".{suffix}"  # its subdomains
            if only_port in (None, port) and (name == suffix or name.endswith(below)):
                return True
        return False


@attrs.frozen
class NetworkSettings:
    """A client's proxies and TLS context: where each URL's connection goes."""

    proxy: Proxy | None = None
    """Given explicitly (``proxy=``): used for every URL."""
    environment: Mapping[str, Proxy] = attrs.field(factory=dict)
    """From the environment: by scheme (``http``, ``https``, ``all``)."""
    no_proxy: NoProxy = NoProxy()
    ssl: SSLContext | None = None

    @property
    def uses_proxies(self) -> bool:
        return self.proxy is not None or bool(self.environment)

    @property
    def ssl_argument(self) -> SSLContext | bool:
        """What aiohttp's ``ssl=`` takes: the context, or ``True`` (default verification)."""
        return True if self.ssl is None else self.ssl

    def proxy_for(self, url: yarl.URL) -> Proxy | None:
        """The proxy a request to ``url`` goes through, or ``None`` for a direct connection."""
        if self.proxy is not None:
            return self.proxy
        if not self.environment:
            return None
        host = url.host or ""
        address = _address(host)  # loopback never goes through a proxy from the environment
        loopback = host.lower() in _LOOPBACK_NAMES if address is None else address.is_loopback
        if loopback or self.no_proxy.matches(host, url.port):
            return None
        return self.environment.get(url.scheme) or self.environment.get("all")

    def proxy_endpoints(self) -> frozenset[tuple[str, int | None]]:
        """``(host, port)`` of every proxy: the downloads' guard lets these through."""
        proxies = [self.proxy, *self.environment.values()]
        return frozenset((p.url.host or "", p.url.port) for p in proxies if p is not None)

    def connector(
        self, *, limit: int, resolver: AbstractResolver | None = None, use_dns_cache: bool = True
    ) -> aiohttp.TCPConnector:
        return aiohttp.TCPConnector(
            limit=limit,
            limit_per_host=0,
            resolver=resolver,
            use_dns_cache=use_dns_cache,
            ssl=self.ssl_argument,
        )


def _environment_proxies(environ: Mapping[str, str]) -> tuple[dict[str, Proxy], NoProxy]:
    found = getproxies_environment() if environ is os.environ else _lowered(environ)
    proxies: dict[str, Proxy] = {}
    for scheme in ("http", "https", "all"):
        value = found.get(scheme)
        if not value:
            continue
        try:
            proxies[scheme] = parse_proxy(value)
        except ConfigurationError as refused:
            logger.warning("ignoring %s_PROXY from the environment: %s", scheme.upper(), refused)
    return proxies, NoProxy.parse(found.get("no", ""))


def _lowered(environ: Mapping[str, str]) -> dict[str, str]:
    """``getproxies_environment`` for a mapping other than ``os.environ`` (tests)."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if name.upper() == name and name.lower() in environ:
            continue  # the lower-case spelling wins, as in urllib
        if name.lower().endswith("_proxy") and value:
            found[name.lower()[: -len("_proxy")]] = value
    return found


def read_network(
    *,
    proxy: str | None,
    trust_env: bool,
    ssl_context: SSLContext | None,
    environ: Mapping[str, str] | None = None,
) -> NetworkSettings:
    """The settings of ``AvaturnClient(proxy=, trust_env=, ssl=)``; the environment is read now."""
    if not isinstance(trust_env, bool):
        raise ConfigurationError("trust_env must be True or False")
    if ssl_context is not None and not isinstance(ssl_context, SSLContext):
        raise ConfigurationError("ssl must be an ssl.SSLContext (ssl.create_default_context())")
    explicit = None if proxy is None else parse_proxy(proxy)
    if explicit is not None or not trust_env:
        return NetworkSettings(proxy=explicit, ssl=ssl_context)
    proxies, no_proxy = _environment_proxies(os.environ if environ is None else environ)
    return NetworkSettings(environment=proxies, no_proxy=no_proxy, ssl=ssl_context)


# ---------------------------------------------------------------- errors


def _connect_failure(
    exc: aiohttp.ClientConnectorError, method: str, path: str, target: str
) -> TransportError:
    at = f"{exc.host}:{exc.port}"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cause = exc.certificate_error
        reason = getattr(cause, "verify_message", None) or str(cause)
        message = f"the TLS certificate of {at} was refused: {reason}"
        return CertificateError(
            message, reason=reason, method=method, path=path, host=exc.host, port=exc.port
        )
    reason = exc.os_error.strerror or type(exc.os_error).__name__
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        message = f"cannot connect to proxy {at} (for {target}): {reason}"
    elif isinstance(exc, aiohttp.ClientSSLError):
        message = f"TLS handshake with {at} failed: {reason}"
    elif isinstance(exc, asyncio.TimeoutError):
        message = f"timed out connecting to {at}"
    else:
        message = f"cannot connect to {at}: {reason}"
    return ConnectError(message, method=method, path=path, host=exc.host, port=exc.port)


def network_error(
    exc: aiohttp.ClientError | asyncio.TimeoutError,
    *,
    method: str,
    path: str,
    url: yarl.URL | str,
    proxy: Proxy | None = None,
    total: float | None = None,
) -> TransportError:
    """Our error for aiohttp's, naming the host and port it failed to reach.

    Split by what the failure says about the server having seen the request
    (see ``_retry``); ``total`` is the time limit that ran out, for a bare timeout.
    """
    url = url if isinstance(url, yarl.URL) else yarl.URL(url)
    host, port, target = url.host or "", url.port, f"{url.host}:{url.port}"
    via = f" through proxy {proxy.where}" if proxy is not None else ""
    kind: type[TransportError] = RequestTimeoutError
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connect_failure(exc, method, path, target)
    # Order matters: ConnectionTimeoutError is a ServerTimeoutError but the server never saw us.
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        kind, message = ConnectError, f"timed out connecting to {target}{via}"
    elif isinstance(exc, aiohttp.ClientHttpProxyError) and proxy is not None:
        kind = ConnectError
        message = f"proxy {proxy.where} refused to connect to {target}: {exc.status} {exc.message}"
        host, port = proxy.url.host or "", proxy.url.port
    elif isinstance(exc, aiohttp.ServerTimeoutError):
        message = f"timed out waiting for {target}{via} to answer"
    elif not isinstance(exc, aiohttp.ClientError):  # the whole call's time ran out
        within = f" within {total:g} s" if total is not None else ""
        message = f"no answer from {target}{via}{within}"
    elif isinstance(
        exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientOSError)
    ):
        kind = ConnectionLostError
        message = f"connection to {target}{via} lost ({type(exc).__name__})"
    else:
        kind = TransportError
        message = f"HTTP client error with {target}{via} ({type(exc).__name__})"
    return kind(message, method=method, path=path, host=host, port=port)
