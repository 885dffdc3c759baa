"""Operator commands registered on the Flask CLI."""
from __future__ import annotations

import re
from pathlib import Path

import click
from flask import Flask

from backend.config import config_table
from backend.operations.backup import BackupError, create_backup, restore_backup

_MARKERS = re.compile(r"(<!-- config-table:start -->\n).*?(<!-- config-table:end -->)", re.S)


def write_config_table(readme: Path) -> bool:
    """Replace the table between the README's markers; True when it changed."""
    text = readme.read_text()
    updated = _MARKERS.sub(lambda m: m.group(1) + config_table() + "\n" + m.group(2), text)
    if updated != text:
        readme.write_text(updated)
    return updated != text


def register_cli(app: Flask) -> None:
    """Attach Groundwork's commands to ``app.cli``."""

    @app.cli.command("config-table")
    @click.option("--write", "readme", type=click.Path(exists=True, path_type=Path),
                  help="update the table in this README instead of printing it")
    def print_config_table(readme: Path | None) -> None:
        """Print (or write into the README) the table of every setting."""
        if readme is None:
            click.echo(config_table())
        else:
            click.echo("updated" if write_config_table(readme) else "already current")

    @app.cli.group("backup")
    def backup() -> None:
        """Back up the database and object storage into a folder, or restore one into empty ones."""

    @backup.command("create")
    @click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
    def backup_create(folder: Path) -> None:
        """Dump the database and copy every stored object into FOLDER (new or empty), with a manifest."""
        from backend.extensions import db
        from backend.media.storage import get_storage

        try:
            manifest = create_backup(engine=db.engine, database_url=app.config["DATABASE_URL"], folder=folder,
                                     storage=get_storage(app))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"backed up revision {manifest.alembic_revision}, "
                   f"{sum(manifest.row_counts.values())} rows in {len(manifest.row_counts)} tables and "
                   f"{len(manifest.objects)} objects, to {folder}")

    @backup.command("restore")
    @click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
    def backup_restore(folder: Path) -> None:
        """Restore FOLDER into this app's (empty) database and store; check both against the manifest."""
        from backend.extensions import db
        from backend.media.storage import get_storage

        try:
            manifest = restore_backup(engine=db.engine, database_url=app.config["DATABASE_URL"], folder=folder,
                                      storage=get_storage(app))
        except BackupError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"restored revision {manifest.alembic_revision} from {manifest.created_at}, "
                   f"{sum(manifest.row_counts.values())} rows and {len(manifest.objects)} objects match the manifest")

    @app.cli.command("outbox")
    @click.option("--to", "recipient", help="only mails to this address")
    @click.option("--limit", default=5, show_default=True, help="how many of the newest mails")
    def print_outbox(recipient: str | None, limit: int) -> None:
        """Print the newest mails the outbox backend kept (MAIL_BACKEND=outbox), links included."""
        from backend.common.mail import list_outbox
        from backend.extensions import db

        for mail in list_outbox(db.session, recipient=recipient, limit=limit).items:
            click.echo(f"--- {mail.created_at:%Y-%m-%d %H:%M:%S} to {mail.recipient}: {mail.subject}")
            click.echo(f"{mail.body_text}\n")
