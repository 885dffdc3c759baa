"""Operator commands registered on the Flask CLI."""
from __future__ import annotations

import re
from pathlib import Path

import click
from flask import Flask

from backend.config import config_table

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
