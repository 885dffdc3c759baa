"""Product analytics: ingest into a partitioned event log, roll-ups, queries, push attribution."""
from __future__ import annotations

from typing import Any

import click
from flask import Flask


def init_app(app: Flask) -> None:
    """Erase a deleted account's events; export them with the account."""
    from backend.analytics.account_data import erase_analytics_data, export_analytics_data
    from backend.auth.deletion import register_eraser, register_exporter

    register_exporter("analytics", export_analytics_data)
    register_eraser("analytics", erase_analytics_data)
    app.cli.add_command(analytics_cli)


@click.group("analytics", help="Product analytics maintenance.")
def analytics_cli() -> None:
    """``flask analytics ...``"""


@analytics_cli.command("rebuild-rollups")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d"]), required=True,
              help="first UTC day to rebuild (YYYY-MM-DD)")
def rebuild_rollups(since: Any) -> None:
    """Rebuild user-days, persons' seen times and active counts from the events since a day."""
    from backend.analytics.rollups import rebuild
    from backend.extensions import db

    done = rebuild(db.session, since=since.date())
    db.session.commit()
    click.echo(", ".join(f"{name}: {n}" for name, n in done.items()))
