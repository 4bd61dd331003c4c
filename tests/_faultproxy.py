"""A TCP proxy on loopback that breaks the network on command (no Toxiproxy here).

``blackhole()``: connections stay open, no byte moves either way and new ones
reach nothing (reading stops, so nothing is buffered without bound);
``heal()`` resumes. ``reset_all()`` aborts every connection with a RST, both
sides. ``refuse()`` resets new connections at once; ``allow()`` undoes it.
``accepted`` / ``refused`` count connections; ``open`` is those held now.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from typing import cast
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_CHUNK = 64 * 1024
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST


def _transport(writer: asyncio.StreamWriter) -> asyncio.Transport:
    return cast("asyncio.Transport", writer.transport)  # a socket's: reads and writes


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close *writer*'s socket at once with a RST, dropping what is buffered."""
    if writer.transport.is_closing():
        return
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family != socket.AF_UNIX:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
    writer.transport.abort()


class _Link:
    """An accepted client connection and, once made, its upstream connection."""

    __slots__ = ("client", "upstream")

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None

    def writers(self) -> list[asyncio.StreamWriter]:
        return [w for w in (self.client, self.upstream) if w is not None]


class FaultProxy:
    """``async with FaultProxy(host, port) as proxy``: 127.0.0.1:proxy.port -> host:port.

    *host* may be a Unix-socket directory (as in libpq): ``host/.s.PGSQL.<port>``.
    """

    def __init__(self, host: str, port: int) -> None:
        self.target_host = host
        self.target_port = port
        self.host = "127.0.0.1"
        self.port = 0
        self.accepted = 0
        self.refused = 0
        self._server: asyncio.Server | None = None
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self._links: set[_Link] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> FaultProxy:
        """Listen on 127.0.0.1, on a port the kernel picks."""
        self._server = await asyncio.start_server(self._handle, self.host, 0, limit=_CHUNK)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    @property
    def open(self) -> int:
        """Connections currently accepted and not yet closed."""
        return len(self._links)

    def dsn(self, dsn: str) -> str:
        """Return the URL *dsn* with its host and port replaced by the proxy's."""
        p = urlsplit(dsn)
        user = p.netloc.rpartition("@")[0]
        query = urlencode([(k, v) for k, v in parse_qsl(p.query) if k not in ("host", "port")])
        netloc = f"{user}@{self.host}:{self.port}" if user else f"{self.host}:{self.port}"
        return urlunsplit((p.scheme, netloc, p.path, query, p.fragment))

    def blackhole(self) -> None:
        """Stop forwarding in both directions; keep every connection open."""
        self._flowing.clear()
        for link in self._links:
            for writer in link.writers():
                _transport(writer).pause_reading()

    def heal(self) -> None:
        """Resume forwarding on held connections, and for new ones."""
        self._flowing.set()
        for link in self._links:
            for writer in link.writers():
                if not writer.transport.is_closing():
                    _transport(writer).resume_reading()

    def reset_all(self) -> None:
        """Abort every current connection, both sides, with a RST."""
        for link in list(self._links):
            for writer in link.writers():
                _abort(writer)

    def refuse(self) -> None:
        """Reset every new connection as soon as it is accepted."""
        self._refusing = True

    def allow(self) -> None:
        """Forward new connections again (the reverse of ``refuse``)."""
        self._refusing = False

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        if self._refusing or self._server is None:
            self.refused += 1
            _abort(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = _Link(writer)
        self._links.add(link)
        if not self._flowing.is_set():
            _transport(writer).pause_reading()
        pumps: list[asyncio.Task[None]] = []
        try:
            await self._flowing.wait()  # a black hole lets no SYN through either
            if self.target_host.startswith("/"):
                path = f"{self.target_host}/.s.PGSQL.{self.target_port}"
                up_reader, up_writer = await asyncio.open_unix_connection(path, limit=_CHUNK)
            else:
                up_reader, up_writer = await asyncio.open_connection(
                    self.target_host, self.target_port, limit=_CHUNK
                )
            link.upstream = up_writer
            if not self._flowing.is_set():
                _transport(up_writer).pause_reading()
            pumps = [
                asyncio.create_task(self._pump(reader, up_writer)),
                asyncio.create_task(self._pump(up_reader, writer)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        except OSError:
            _abort(writer)
        except asyncio.CancelledError:
            # aclose() cancelled it; end quietly (asyncio logs a handler
            # task that ends cancelled as an error).
            if self._server is not None:
                raise
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for w in link.writers():
                w.close()  # after a peer's EOF: flush what is left, then FIN
            self._links.discard(link)
            self._tasks.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await self._flowing.wait()
            data = await reader.read(_CHUNK)
            if not data:
                return
            await self._flowing.wait()  # blackholed meanwhile: hold this one chunk
            writer.write(data)
            await writer.drain()

    async def aclose(self) -> None:
        """Stop listening, abort every connection, and wait for every task to end."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
        self.reset_all()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
