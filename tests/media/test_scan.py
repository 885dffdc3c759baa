"""Malware scan through a real clamd (Debian's clamav-daemon) on a one-signature database."""
from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from backend.extensions import db
from backend.media.models import Media
from backend.media.processing import MAX_ATTEMPTS, run_processing
from backend.media.scan import ScannerUnavailable
from tests.media.samples import jpeg
from tests.waiting import wait_for

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


def _answers(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            sock.sendall(b"zPING\0")
            return sock.recv(16).startswith(b"PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def clamd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """clamd on a private socket, knowing only the EICAR test file (freshclam cannot reach its mirrors here)."""
    binary = shutil.which("clamd") or "/usr/sbin/clamd"
    if not Path(binary).exists():
        pytest.fail("clamd is not installed: run `make system-deps` (Debian's clamav-daemon)")
    folder = tmp_path_factory.mktemp("clamd")
    (folder / "db").mkdir()
    (folder / "db" / "groundwork-test.hdb").write_text(
        f"{hashlib.md5(EICAR, usedforsecurity=False).hexdigest()}:{len(EICAR)}:Groundwork.Test.EICAR\n")
    sock = folder / "clamd.sock"
    (folder / "clamd.conf").write_text(
        f"DatabaseDirectory {folder / 'db'}\nLocalSocket {sock}\nForeground yes\nLogFile {folder / 'clamd.log'}\n"
        f"TemporaryDirectory {folder}\nStreamMaxLength 50M\n")
    process = subprocess.Popen([binary, "-c", str(folder / "clamd.conf")], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(sock), timeout=60, every=0.2, what="clamd to answer PING")
        yield f"unix:{sock}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_upload_with_a_known_signature_fails_as_malware(app, client, headers, upload, run_media_jobs, clamd,
                                                        monkeypatch):
    monkeypatch.setitem(app.config, "MEDIA_CLAMD_ADDRESS", clamd)
    infected = upload(EICAR)
    clean = upload(jpeg())
    run_media_jobs()
    failed = client.get(f"/v1/media/{infected['id']}", headers=headers).get_json()
    assert failed["status"] == "failed"
    assert failed["failure_reason"].startswith("malware_found: Groundwork.Test.EICAR")
    assert client.get(f"/v1/media/{clean['id']}", headers=headers).get_json()["status"] == "ready"


def test_scanner_outage_is_retried_then_fails_with_a_reason(app, upload, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "MEDIA_CLAMD_ADDRESS", f"unix:{tmp_path / 'nobody-listens.sock'}")
    media_id = uuid.UUID(upload(jpeg())["id"])
    with app.test_request_context():
        with pytest.raises(ScannerUnavailable):
            run_processing(db.session, media_id=media_id)  # the job fails: RQ retries it
        assert db.session.get(Media, media_id).status == "pending"  # back in line for the retry
        db.session.execute(update(Media).where(Media.id == media_id).values(attempts=MAX_ATTEMPTS - 1))
        db.session.commit()
        assert run_processing(db.session, media_id=media_id) == "failed"
        db.session.expire_all()
        assert db.session.get(Media, media_id).failure_reason == "scanner_unavailable"
