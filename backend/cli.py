"""Operator commands registered on the Flask CLI."""
from __future__ import annotations

import click
from flask import Flask

from backend.config import config_table


def register_cli(app: Flask) -> None:
    """Attach Groundwork's commands to ``app.cli``."""

    @app.cli.command("config-table")
    def print_config_table() -> None:
        """Print the configuration table (Markdown) that the README carries."""
        click.echo(config_table())
