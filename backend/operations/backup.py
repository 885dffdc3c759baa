"""Backups an operator can restore: the database by pg_dump, object storage beside it, and
a manifest to check both against.

A backup is a folder: ``database.dump`` (pg_dump's custom format, restorable table by
table), ``objects/`` (every object of the store, see ``backup_objects``) and
``manifest.json`` (when, which schema revision, how many rows each table held, the
dump's SHA-256, each object's size and SHA-256). A restore checks every checksum before
writing anything, goes into an empty database and store only, then checks the schema
revision and every table's row count against the manifest, so a restore that silently
lost rows or files fails loudly instead of serving.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from backend.operations.backup_objects import ObjectBackupError, ObjectStore, copy_in, copy_out, sha256_of, verify

DUMP_NAME = "database.dump"
MANIFEST_NAME = "manifest.json"


class BackupError(RuntimeError):
    """A backup or restore that cannot go on, with the reason an operator can act on."""


@dataclass(frozen=True)
class Manifest:
    """What a backup holds, written beside it and checked after a restore."""

    created_at: str
    alembic_revision: str
    row_counts: dict[str, int]
    database_sha256: str
    objects: dict[str, dict] = field(default_factory=dict)  # key → size, sha256, content_type

    def write(self, folder: Path) -> None:
        (folder / MANIFEST_NAME).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            return cls(**json.loads((folder / MANIFEST_NAME).read_text()))
        except (OSError, ValueError, TypeError) as exc:
            raise BackupError(f"{folder} holds no readable {MANIFEST_NAME}: {exc}") from exc


def create_backup(*, engine: sa.Engine, database_url: str, folder: Path, storage: ObjectStore | None = None
                  ) -> Manifest:
    """Dump the database (then copy ``storage``'s objects) into ``folder`` (new or empty); write the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    if any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: a backup goes into a folder of its own")
    dump = folder / DUMP_NAME
    tool = pg_tool("pg_dump", engine)
    # The dump and the manifest's row counts come from one exported snapshot, so a backup
    # of a live instance still matches its manifest exactly.
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn, conn.begin():
        snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
        _run(database_url, tool, "--format=custom", "--no-owner", "--no-privileges",
             f"--snapshot={snapshot}", f"--file={dump}")
        manifest = Manifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            alembic_revision=_revision(conn),
            row_counts=row_counts(conn),
            database_sha256=sha256_of(dump),
        )
    if storage is not None:
        try:
            manifest = replace(manifest, objects=copy_out(storage, folder))
        except (ObjectBackupError, RuntimeError) as exc:  # StorageError is a RuntimeError
            raise BackupError(f"could not copy the object store: {exc}") from exc
    manifest.write(folder)
    return manifest


def restore_backup(*, engine: sa.Engine, database_url: str, folder: Path, storage: ObjectStore | None = None
                   ) -> Manifest:
    """Restore ``folder`` into the empty database behind ``engine`` (and its objects into
    ``storage``); check both against the manifest."""
    manifest = Manifest.read(folder)
    dump = folder / DUMP_NAME
    if not dump.is_file() or sha256_of(dump) != manifest.database_sha256:
        raise BackupError(f"{dump} is missing or does not match the manifest's checksum")
    if manifest.objects and storage is None:
        raise BackupError(f"the backup holds {len(manifest.objects)} objects and no store was given")
    try:
        verify(folder, manifest.objects)
    except ObjectBackupError as exc:
        raise BackupError(str(exc)) from exc
    if sa.inspect(engine).get_table_names():
        raise BackupError("the target database is not empty: restore into a fresh database")
    if manifest.objects:
        try:
            copy_in(storage, folder, manifest.objects)  # first: resumable, unlike the database
        except (ObjectBackupError, RuntimeError) as exc:
            raise BackupError(f"could not restore the object store: {exc}") from exc
    _run(database_url, pg_tool("pg_restore", engine), "--no-owner", "--no-privileges", "--exit-on-error",
         "--single-transaction", str(dump))
    engine.dispose()  # the pool's view of the catalogue predates the restore
    with engine.connect() as conn:
        revision, restored = _revision(conn), row_counts(conn)
    if revision != manifest.alembic_revision or restored != manifest.row_counts:
        lost = {t: (n, restored.get(t)) for t, n in manifest.row_counts.items() if restored.get(t) != n}
        raise BackupError(f"restored database differs from the manifest: {lost or 'schema revision'}")
    return manifest


def row_counts(conn: sa.Connection) -> dict[str, int]:
    """Exact row count of every ordinary and partitioned table in the public schema."""
    names = conn.execute(sa.text(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition "
        "ORDER BY c.relname")).scalars().all()
    count = sa.func.count()
    return {name: conn.execute(sa.select(count).select_from(sa.table(name))).scalar_one() for name in names}


def pg_tool(name: str, engine: sa.Engine) -> str:
    """The newest ``pg_dump``/``pg_restore`` at hand (PATH, the pgserver wheel), if new enough.

    pg_dump refuses a server newer than itself, so the tool's major version must be at
    least the server's.
    """
    with engine.connect() as conn:
        server_major = int(conn.execute(sa.text("SHOW server_version_num")).scalar_one()) // 10000
    found = sorted(((_major(path), path) for path in _candidates(name)), reverse=True)
    if not found or found[0][0] < server_major:
        have = ", ".join(f"{path} ({major})" for major, path in found) or "none"
        raise BackupError(f"{name} {server_major} or newer is needed for this server; found: {have}")
    return found[0][1]


def _candidates(name: str) -> list[str]:
    paths = [shutil.which(name)]
    try:
        import pgserver  # the embedded PostgreSQL's own client tools (dev machines, tests)

        paths.append(str(Path(pgserver.__file__).parent / "pginstall" / "bin" / name))
    except ImportError:
        pass
    return [p for p in dict.fromkeys(paths) if p and Path(p).is_file()]


def _major(path: str) -> int:
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout  # noqa: S603
    match = re.search(r"(\d+)(?:\.\d+)?", output)
    return int(match.group(1)) if match else 0


def _revision(conn: sa.Connection) -> str:
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar_one()


def _run(database_url: str, *args: str) -> None:
    """Run a PostgreSQL client tool against ``database_url``, the password out of its argv."""
    url = sa.make_url(database_url)
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    target = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    result = subprocess.run([*args, f"--dbname={target}"], capture_output=True, text=True, env=env)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed ({result.returncode}): {result.stderr.strip()}")
