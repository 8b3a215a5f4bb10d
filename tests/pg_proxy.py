"""A TCP proxy in front of a real PostgreSQL server, for faults no server setting makes.

``PgProxy`` forwards bytes both ways on 127.0.0.1 and reads the server's side
as PostgreSQL protocol messages (a type byte and a length), so that a test can:

* lose the answer of one statement after it committed: :meth:`PgProxy.lose_answer_to`
  arms a byte string found in the statement's text (sent when asyncpg prepares
  it); the first connection that sends it has everything from its
  ``CommandComplete`` on withheld, and is cut at the ``ReadyForQuery`` that follows
  (the implicit transaction has committed by then);
* behave like a pooler in transaction mode that cannot carry ``LISTEN``:
  ``drop_notifications = True`` swallows every ``NotificationResponse``.

Connect through :meth:`PgProxy.dsn` (``sslmode=disable``: the proxy reads the
server's messages, which TLS would hide).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import urlsplit, urlunsplit

__all__ = ["PgProxy"]


class _Link:
    """One proxied connection."""

    def __init__(self, proxy: PgProxy) -> None:
        self.proxy = proxy
        self.doomed = False
        self.withholding = False
        self.writers: list[asyncio.StreamWriter] = []

    def cut(self) -> None:
        for writer in self.writers:
            writer.transport.abort()


class PgProxy:
    def __init__(self, upstream_dsn: str) -> None:
        self.upstream_dsn = upstream_dsn
        parts = urlsplit(upstream_dsn)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 5432
        self.port = 0
        self.drop_notifications = False
        self.dropped_notifications = 0
        self.answers_lost = 0
        self._marker: bytes | None = None
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()

    async def start(self) -> PgProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    def dsn(self) -> str:
        parts = urlsplit(self.upstream_dsn)
        netloc = parts.netloc.rsplit("@", 1)
        user = f"{netloc[0]}@" if len(netloc) == 2 else ""
        query = "&".join(q for q in (parts.query, "sslmode=disable") if q)
        return urlunsplit((parts.scheme, f"{user}127.0.0.1:{self.port}", parts.path, query, ""))

    def lose_answer_to(self, marker: bytes) -> None:
        """Lose the answer of the next statement whose text holds ``marker``."""
        self._marker = marker

    async def aclose(self) -> None:
        for link in list(self._links):
            link.cut()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(self)
        try:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            writer.transport.abort()
            return
        link.writers = [writer, up_writer]
        self._links.add(link)
        try:
            await asyncio.gather(
                self._client_to_server(link, reader, up_writer),
                self._server_to_client(link, up_reader, writer),
            )
        finally:
            self._links.discard(link)
            link.cut()

    async def _client_to_server(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                marker = self._marker
                if marker is not None and marker in data:
                    self._marker = None
                    link.doomed = True
                writer.write(data)
                await writer.drain()
        link.cut()

    async def _server_to_client(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        with contextlib.suppress(OSError, ConnectionError, asyncio.IncompleteReadError):
            while True:
                header = await reader.readexactly(5)
                kind, length = header[:1], struct.unpack("!I", header[1:])[0]
                message = header + await reader.readexactly(length - 4)
                if kind == b"A" and self.drop_notifications:
                    self.dropped_notifications += 1
                    continue
                if link.doomed and kind == b"C":
                    link.withholding = True
                if link.withholding:
                    if kind == b"Z":  # committed: the answer is lost with the connection
                        self.answers_lost += 1
                        link.cut()
                        return
                    continue
                writer.write(message)
                await writer.drain()
        link.cut()
