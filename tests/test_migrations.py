"""Migrations are the only schema source: one head, they build from empty, match the models."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from backend.app import create_app
from backend.extensions import db
from tests.conftest import app_settings


def _script() -> ScriptDirectory:
    config = Config("migrations/alembic.ini")
    config.set_main_option("script_location", "migrations")
    return ScriptDirectory.from_config(config)


def test_migrations_have_exactly_one_head():
    assert len(_script().get_heads()) == 1


def test_models_and_migrations_agree(app, db_session):
    """What autogenerate would write against the migrated database is nothing."""
    with app.app_context():
        context = MigrationContext.configure(db_session.connection(), opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], f"models differ from migrations: {diff}"


def test_upgrade_from_empty_then_down_and_up_again(services):
    url = services.create_database()
    app = create_app(app_settings(url, services.redis_url))
    with app.app_context():
        upgrade(directory="migrations")
        downgrade(directory="migrations", revision="base")
        upgrade(directory="migrations")
        with db.engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
        db.engine.dispose()
    assert version == _script().get_current_head()
