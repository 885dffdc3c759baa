"""The FCM sender's pool over TLS, as it talks to fcm.googleapis.com: the server's certificate is
verified against the trusted roots and its name, and a connection is kept for the next request."""
from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from backend.notifications.fcm.transport import ConnectFailed, Http1Pool

OK = b'{"name": "projects/p/messages/1"}'


def _self_signed(directory: Path, name: str) -> tuple[Path, Path]:
    """A certificate for ``name`` (and 127.0.0.1) signed by its own key: (certificate, key) files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - datetime.timedelta(minutes=5))
                   .not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                               x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                   .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


async def _serve_tls(cert_file: Path, key_file: Path, seen: list[bytes]) -> asyncio.Server:
    """Answers every request on a connection with 200 and keeps the connection open."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                seen.append(head + await reader.readexactly(length))
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(OK), OK))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)


def test_pool_verifies_the_servers_certificate_and_keeps_the_connection(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    cert_file, key_file = _self_signed(tmp_path, "localhost")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))  # the trusted roots: this server's own certificate

    async def scenario() -> tuple[list[int], list[bytes], int]:
        seen: list[bytes] = []
        server = await _serve_tls(cert_file, key_file, seen)
        pool = Http1Pool(f"https://localhost:{server.sockets[0].getsockname()[1]}/v1/projects/p/messages:send",
                         limit=1, timeout=5)
        head = pool.head({"Authorization": "Bearer t", "Content-Type": "application/json"})
        statuses, opened = [], 0
        for body in (b'{"a": 1}', b'{"a": 2}'):
            opened += not pool._idle
            statuses.append((await pool.post(head, body)).status)
        await pool.close()
        server.close()
        return statuses, seen, opened

    statuses, seen, opened = asyncio.run(scenario())
    assert statuses == [200, 200]
    assert opened == 1  # both requests went over one TLS connection
    assert seen[1].startswith(b"POST /v1/projects/p/messages:send HTTP/1.1\r\nHost: localhost:")
    assert seen[1].endswith(b'Content-Length: 8\r\n\r\n{"a": 2}')


@pytest.mark.parametrize("trusted", ["none", "other name"])
def test_pool_refuses_a_server_it_cannot_verify_before_sending_anything(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        trusted: str) -> None:
    cert_file, key_file = _self_signed(tmp_path, "localhost" if trusted == "none" else "fcm.example")
    other, _ = _self_signed(tmp_path, "someone-else")
    # Trusting nothing of this server, or trusting its certificate while it is named for another host.
    monkeypatch.setenv("SSL_CERT_FILE", str(other if trusted == "none" else cert_file))

    async def scenario() -> tuple[Exception, list[bytes]]:
        seen: list[bytes] = []
        server = await _serve_tls(cert_file, key_file, seen)
        pool = Http1Pool(f"https://localhost:{server.sockets[0].getsockname()[1]}/x", limit=1, timeout=5)
        with pytest.raises(ConnectFailed) as refused:
            await pool.post(pool.head({}), b"{}")
        server.close()
        return refused.value, seen

    refused, seen = asyncio.run(scenario())
    assert "SSLCertVerificationError" in str(refused) or "certificate verify failed" in str(refused)
    assert seen == []  # nothing was sent: the engine may resend it without doubt
