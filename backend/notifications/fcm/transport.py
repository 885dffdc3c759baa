"""A lean HTTP/1.1 keep-alive pool for FCM's one request shape: POST a prebuilt JSON body.

Profiled in the B3 worker (py-spy), aiohttp's general client (URL and header objects,
cookie jar, tracing hooks, timer contexts, stream readers) cost more CPU per message than
the whole rest of the push path. FCM sends need none of that: one host, one path, the
same headers, a small JSON answer. This pool writes each request as one buffer (header
block cached per access token), parses the status line, the few headers the sender reads
and a Content-Length or chunked body, and keeps the connection for the next request.

What the sender must know survives: ``ConnectFailed`` means nothing was sent (safe to
retry); ``RequestFailed`` (connection lost, timeout) means the request may have arrived.
"""
from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["ConnectFailed", "Http1Pool", "RequestFailed", "Response"]


class ConnectFailed(Exception):
    """No connection could be opened: the request was never sent."""


class RequestFailed(Exception):
    """The connection broke or timed out after the request was (perhaps) sent."""


@dataclass(frozen=True, slots=True)
class Response:
    """What the sender reads of an answer: status, the headers (lower-case names) and the body."""

    status: int
    headers: dict[str, str]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; at most one request at a time (no pipelining)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[Response, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            try:
                parsed = _parse(self.buffer, eof=False)
            except ValueError as exc:
                waiter.set_exception(RequestFailed(f"bad response: {exc}"))
                self.close()
                return
            if parsed is not None:
                waiter.set_result(parsed)

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            try:  # a body delimited by the end of the connection
                parsed = _parse(self.buffer, eof=True) if self.buffer else None
            except ValueError:
                parsed = None
            if parsed is not None:
                waiter.set_result(parsed)
            else:
                waiter.set_exception(RequestFailed(f"connection lost: {exc or 'closed by the server'}"))

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _parse(buffer: bytearray, *, eof: bool) -> tuple[Response, bool] | None:
    """One complete response taken off ``buffer`` with its keep-alive flag, or None if incomplete."""
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(buffer[:end]).decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ValueError(f"status line {lines[0][:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            del buffer[:end + 4]
            continue
        break
    start = end + 4
    keep_alive = headers.get("connection", "").lower() != "close" and parts[0] != "HTTP/1.0"
    if status in (204, 304):
        body, used = b"", start
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        chunked = _chunked(buffer, start)
        if chunked is None:
            return None
        body, used = chunked
    elif "content-length" in headers:
        length = int(headers["content-length"])
        if len(buffer) < start + length:
            return None
        body, used = bytes(buffer[start:start + length]), start + length
    elif eof:  # delimited by the connection's end
        body, used, keep_alive = bytes(buffer[start:]), len(buffer), False
    else:
        return None
    del buffer[:used]
    return Response(status, headers, body), keep_alive and not buffer


def _chunked(buffer: bytearray, start: int) -> tuple[bytes, int] | None:
    """The decoded chunked body from ``start`` and where it ends, or None if incomplete."""
    body = bytearray()
    at = start
    while True:
        line_end = buffer.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(bytes(buffer[at:line_end]).split(b";", 1)[0].strip() or b"x", 16)
        at = line_end + 2
        if size == 0:
            trailer_end = buffer.find(b"\r\n\r\n", at - 2)  # no trailers: the CRLF right after
            return (bytes(body), trailer_end + 4) if trailer_end >= 0 else None
        if len(buffer) < at + size + 2:
            return None
        body += buffer[at:at + size]
        at += size + 2


class Http1Pool:
    """POSTs to one URL over at most ``limit`` keep-alive connections of the running loop."""

    def __init__(self, url: str, *, limit: int, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported FCM endpoint {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        default_port = (parts.scheme == "https" and self.port == 443) or (parts.scheme == "http" and self.port == 80)
        self.authority = self.host if default_port else f"{self.host}:{self.port}"
        self.timeout = timeout
        self._idle: list[_Connection] = []
        self._slots = asyncio.Semaphore(limit)

    def head(self, headers: dict[str, str]) -> bytes:
        """The request's header block up to ``Content-Length: `` (build it once per header set)."""
        lines = [f"POST {self.path} HTTP/1.1", f"Host: {self.authority}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        return ("\r\n".join(lines) + "\r\nContent-Length: ").encode("latin-1")

    async def post(self, head: bytes, body: bytes) -> Response:
        """Send one request (``head`` from :meth:`head`) and read its answer, within ``timeout``."""
        async with self._slots:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout
            connection = await self._connection(loop, deadline)
            waiter: asyncio.Future[tuple[Response, bool]] = loop.create_future()
            connection.waiter = waiter
            timer = loop.call_at(deadline, _expire, waiter)
            try:
                connection.transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))  # type: ignore[union-attr]
                response, keep_alive = await waiter
            except BaseException:
                connection.close()  # a late answer must not be read as the next request's
                raise
            finally:
                timer.cancel()
                connection.waiter = None
            if keep_alive and not connection.closed:
                self._idle.append(connection)
            else:
                connection.close()
            return response

    async def _connection(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not connection.closed:
                return connection
        try:
            async with asyncio.timeout_at(deadline):
                _transport, protocol = await loop.create_connection(
                    _Connection, self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None)
        except (OSError, TimeoutError, ssl.SSLError) as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc}") from exc
        return protocol

    async def close(self) -> None:
        """Close the idle connections (those in use close when their request ends)."""
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _expire(waiter: asyncio.Future[tuple[Response, bool]]) -> None:
    if not waiter.done():
        waiter.set_exception(RequestFailed("timeout"))
