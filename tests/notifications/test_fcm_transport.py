"""The FCM sender's HTTP/1.1 pool against raw servers answering in the shapes HTTP allows."""
from __future__ import annotations

import asyncio

import pytest

from backend.notifications.fcm.transport import ConnectFailed, Http1Pool, RequestFailed, _parse
from tests.fakes.fcm_server import free_port

OK = b'{"name": "projects/p/messages/1"}'


def test_parse_waits_for_a_body_split_across_segments() -> None:
    buffer = bytearray(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK[:5]))
    assert _parse(buffer, eof=False) is None
    buffer += OK[5:]
    response, keep_alive = _parse(buffer, eof=False)  # type: ignore[misc]
    assert (response.status, response.body, keep_alive, bytes(buffer)) == (200, OK, True, b"")


def test_parse_decodes_chunked_bodies_and_skips_interim_answers() -> None:
    buffer = bytearray(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=1\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n")
    response, keep_alive = _parse(buffer, eof=False)  # type: ignore[misc]
    assert (response.status, response.headers["retry-after"], response.body) == (429, "7", b'{"a": 1}')
    assert keep_alive and not buffer


def test_parse_honours_connection_close_and_bodies_ended_by_eof() -> None:
    closing = bytearray(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}")
    assert _parse(closing, eof=False)[1] is False  # type: ignore[index]
    until_eof = bytearray(b"HTTP/1.1 503 Service Unavailable\r\n\r\nbusy")
    assert _parse(until_eof, eof=False) is None
    response, keep_alive = _parse(until_eof, eof=True)  # type: ignore[misc]
    assert (response.status, response.body, keep_alive) == (503, b"busy", False)


def test_parse_rejects_what_is_not_http() -> None:
    with pytest.raises(ValueError):
        _parse(bytearray(b"SSH-2.0-OpenSSH\r\n\r\n"), eof=False)


async def _serve(answers: list[bytes], seen: list[bytes]) -> asyncio.Server:
    """A raw server: each connection reads requests and writes the next answer (then maybe closes)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while answers:
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length")))
            seen.append(head + await reader.readexactly(length))
            answer = answers.pop(0)
            writer.write(answer)
            await writer.drain()
            if b"Connection: close" in answer or b"Content-Length" not in answer and b"chunked" not in answer:
                break
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def test_pool_reuses_a_connection_and_reopens_one_the_server_closed() -> None:
    async def scenario() -> tuple[list[int], list[bytes], int]:
        seen: list[bytes] = []
        answers = [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(OK), OK),
                   b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
                   b"HTTP/1.1 404 Not Found\r\n\r\ngone"]
        connections = 0
        server = await _serve(answers, seen)
        port = server.sockets[0].getsockname()[1]
        pool = Http1Pool(f"http://127.0.0.1:{port}/v1/projects/p/messages:send", limit=1, timeout=5)
        head = pool.head({"Authorization": "Bearer t", "Content-Type": "application/json"})
        statuses = []
        for body in (b"{1}", b"{2}", b"{3}"):
            before = len(pool._idle)
            statuses.append((await pool.post(head, body)).status)
            connections += before == 0
        await pool.close()
        server.close()
        return statuses, seen, connections

    statuses, seen, connections = asyncio.run(scenario())
    assert statuses == [200, 200, 404]
    assert connections == 2  # the first connection served two requests; the server closed it after the second
    assert seen[0].startswith(b"POST /v1/projects/p/messages:send HTTP/1.1\r\nHost: 127.0.0.1:")
    assert b"\r\nAuthorization: Bearer t\r\n" in seen[0] and seen[0].endswith(b"Content-Length: 3\r\n\r\n{1}")


def test_pool_reports_refused_connections_and_lost_answers_apart() -> None:
    async def scenario() -> tuple[Exception, Exception]:
        refused = Http1Pool(f"http://127.0.0.1:{free_port()}/x", limit=1, timeout=5)
        with pytest.raises(ConnectFailed) as not_sent:
            await refused.post(refused.head({}), b"{}")
        server = await _serve([b"HTTP/1.1 200 OK\r\nContent-Le"], [])  # the answer breaks off
        pool = Http1Pool(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/x", limit=1, timeout=5)
        with pytest.raises(RequestFailed) as maybe_sent:
            await pool.post(pool.head({}), b"{}")
        server.close()
        return not_sent.value, maybe_sent.value

    not_sent, maybe_sent = asyncio.run(scenario())
    assert "Error" in str(not_sent) and "connection lost" in str(maybe_sent)
