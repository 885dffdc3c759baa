"""The README documents what the code does: commands first, every setting in the table."""
from __future__ import annotations

from pathlib import Path

from backend.config import SETTINGS, config_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_opens_with_the_two_commands():
    head = README.read_text()[:400]
    assert "make run" in head and "make test" in head


def test_readme_configuration_table_is_current():
    text = README.read_text()
    assert config_table() in text, "run: flask --app wsgi config-table --write README.md"
    for setting in SETTINGS:
        assert f"`{setting.name}`" in text
