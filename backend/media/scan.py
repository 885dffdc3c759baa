"""Optional malware scan of every upload through clamd's INSTREAM protocol.

Off unless MEDIA_CLAMD_ADDRESS is set (``unix:/run/clamav/clamd.ctl`` or ``host:3310``).
The original is streamed in chunks; clamd answers ``stream: OK`` or ``stream: <name>
FOUND``. A found signature fails the item (``malware_found``); clamd not answering is
a transient outage: the job is retried like a storage outage.
"""
from __future__ import annotations

import socket
import struct
from pathlib import Path

from backend.media.errors import MediaRejected

CHUNK = 64 * 1024
TIMEOUT_S = 60.0


class ScannerUnavailable(RuntimeError):
    """clamd could not be reached or gave no verdict; try again later."""


def _connect(address: str) -> socket.socket:
    if address.startswith("unix:"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: str | tuple[str, int] = address.removeprefix("unix:")
    else:
        host, _, port = address.rpartition(":")
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        target = (host.strip("[]"), int(port))
    sock.settimeout(TIMEOUT_S)
    sock.connect(target)
    return sock


def scan_file(path: Path, *, address: str) -> str | None:
    """The signature clamd finds in ``path``, or None when clean (raises ScannerUnavailable)."""
    try:
        with _connect(address) as sock, path.open("rb") as data:
            sock.sendall(b"zINSTREAM\0")
            while chunk := data.read(CHUNK):
                sock.sendall(struct.pack(">I", len(chunk)) + chunk)
            sock.sendall(struct.pack(">I", 0))
            reply = b""
            while not reply.endswith(b"\0"):
                part = sock.recv(4096)
                if not part:
                    break
                reply += part
    except OSError as exc:
        raise ScannerUnavailable(f"clamd at {address}: {exc}") from exc
    answer = reply.rstrip(b"\0").decode(errors="replace").strip()
    if answer.endswith("OK"):
        return None
    if answer.endswith("FOUND"):
        return answer.removeprefix("stream:").removesuffix("FOUND").strip()
    raise ScannerUnavailable(f"clamd gave no verdict: {answer[:200]!r}")  # e.g. size limit exceeded


def check_upload(path: Path, *, address: str) -> None:
    """Refuse the upload when clamd finds a signature in it (no-op when scanning is off)."""
    if not address:
        return
    found = scan_file(path, address=address)
    if found:
        raise MediaRejected(f"malware_found: {found}")
