"""The production nginx site (envsubst'ed, with TLS) passes `nginx -t`."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.auth.conftest import auth_headers, make_user  # noqa: F401 - shared sign-in fixtures
from tests.e2e.processes import (
    INSTALL_HINT,
    NGINX_DIR,
    nginx_binary,
)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key for ``api.example.test``."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.example.test")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_nginx_production_site_config_passes_nginx_t(tmp_path: Path) -> None:
    """groundwork.conf as deployed (envsubst'ed, shared files in groundwork/, a tls.conf) is valid nginx.

    Only machine paths move into the test folder: logs, cache, certificate.
    """
    if nginx_binary() is None:
        pytest.fail(f"nginx is not installed: {INSTALL_HINT}", pytrace=False)
    nginx_dir = NGINX_DIR
    shared = tmp_path / "groundwork"
    shared.mkdir()
    for name in ("groundwork-http.conf", "groundwork-common.conf", "groundwork-security-headers.conf"):
        (shared / name).symlink_to(nginx_dir / name)
    cert, key = _self_signed(tmp_path)
    tls = (nginx_dir / "tls.conf.example").read_text()
    (shared / "tls.conf").write_text(tls.replace("/etc/nginx/certs/fullchain.pem", str(cert))
                                     .replace("/etc/nginx/certs/privkey.pem", str(key)))
    values = {"GROUNDWORK_UPSTREAM": "127.0.0.1:8000", "GROUNDWORK_STREAM_UPSTREAM": "127.0.0.1:8001",
              "GROUNDWORK_SERVER_NAME": "api.example.test"}
    template = (nginx_dir / "groundwork.conf").read_text()
    site = re.sub(r"\$\{(GROUNDWORK_[A-Z_]+)\}", lambda m: values[m.group(1)], template)
    site = (site.replace("/var/log/nginx/access.log", str(tmp_path / "access.log"))
            .replace("/var/cache/nginx-groundwork", str(tmp_path / "cache")).replace("/var/www/acme", str(tmp_path)))
    (tmp_path / "site.conf").write_text(site)
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nevents {{}}\nhttp {{\n    include site.conf;\n}}\n")

    result = subprocess.run([nginx_binary(), "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"),
                             "-c", str(conf)], capture_output=True, text=True, timeout=30, check=False)

    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr
