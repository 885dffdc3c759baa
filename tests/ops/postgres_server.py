"""An embedded PostgreSQL of a test's own (pgserver), so stopping it disturbs nobody."""
from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pgserver._commands import pg_ctl

from backend.embedded import postgres_server


class OwnPostgres:
    """A started server with stop/start as an operator would do them (``pg_ctl``)."""

    def __init__(self, server) -> None:  # noqa: ANN001 - pgserver's PostgresServer
        self.server = server

    @property
    def url(self) -> str:
        return self.server.get_uri()

    def running(self) -> bool:
        info = self.server.get_postmaster_info()
        return info is not None and info.is_running()

    def stop(self) -> None:
        """A fast shutdown: open transactions are rolled back, connections cut."""
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user)

    def start(self) -> None:
        self.server.ensure_postgres_running()


@contextmanager
def own_postgres_server() -> Iterator[OwnPostgres]:
    """Start one under a fresh folder; stop it and remove the folder afterwards.

    The folder is outside pytest's tmp tree: as root, pgserver runs postgres as its own
    user, and pytest resets /tmp/pytest-of-root to 0700 at each session, locking it out.
    """
    base = Path(tempfile.mkdtemp(prefix="gw-outage-"))
    base.chmod(0o755)
    own = OwnPostgres(postgres_server(base / "pg", stop_on_exit=False))
    try:
        yield own
    finally:
        if own.running():
            own.stop()
        shutil.rmtree(base, ignore_errors=True)
