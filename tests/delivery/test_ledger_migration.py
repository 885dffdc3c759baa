"""Migration 0014 moves the transactional ledger into push_deliveries, and back on downgrade."""
from __future__ import annotations

from flask_migrate import downgrade, upgrade
from sqlalchemy import text

from backend.app import create_app
from backend.extensions import db
from tests.conftest import app_settings

BEFORE, AFTER = "0013_moderation", "0014_push_deliveries"


def _rows(sql: str) -> list[tuple]:
    with db.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def test_upgrade_moves_transactional_rows_in_and_downgrade_moves_them_back(services):
    app = create_app(app_settings(services.create_database(), services.redis_url))
    with app.app_context():
        upgrade(directory="migrations", revision=BEFORE)
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, email) VALUES ('00000000-0000-0000-0000-0000000000a1', 'm@example.test');"
                "INSERT INTO devices (id, user_id, installation_id, token, platform, time_zone, locale) VALUES "
                "('00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1', 'inst-m', "
                "'tok-m', 'android', 'Europe/Paris', 'fr');"
                "INSERT INTO notifications (id, user_id, category, title, push_due_at) VALUES "
                "('00000000-0000-0000-0000-0000000000e1', '00000000-0000-0000-0000-0000000000a1', "
                "'transactional', 'Paid', now());"
                "INSERT INTO notification_deliveries (notification_id, device_id, status, attempts, "
                "provider_message_id, sent_at) VALUES ('00000000-0000-0000-0000-0000000000e1', "
                "'00000000-0000-0000-0000-0000000000d1', 'sent', 1, 'projects/p/messages/1', now());"
                "INSERT INTO campaigns (id, name, audience, message, schedule) VALUES "
                "('00000000-0000-0000-0000-0000000000c1', 'c', '{}', '{}', '{}');"
                "INSERT INTO campaign_deliveries (campaign_id, device_id, user_id, variant, time_zone, locale, "
                "status, due_at, next_attempt_at) VALUES ('00000000-0000-0000-0000-0000000000c1', "
                "'00000000-0000-0000-0000-0000000000d1', '00000000-0000-0000-0000-0000000000a1', 'A', "
                "'Europe/Paris', 'fr', 'pending', now(), now())"))
        upgrade(directory="migrations", revision=AFTER)
        moved = _rows("SELECT notification_id::text, campaign_id::text, status, fcm_message_id, time_zone, attempts "
                      "FROM push_deliveries ORDER BY notification_id NULLS LAST")
        assert moved == [("00000000-0000-0000-0000-0000000000e1", None, "sent", "projects/p/messages/1",
                          "Europe/Paris", 1),
                         (None, "00000000-0000-0000-0000-0000000000c1", "pending", None, "Europe/Paris", 0)]
        assert _rows("SELECT to_regclass('notification_deliveries')") == [(None,)]
        downgrade(directory="migrations", revision=BEFORE)
        assert _rows("SELECT notification_id::text, status, provider_message_id FROM notification_deliveries") == [
            ("00000000-0000-0000-0000-0000000000e1", "sent", "projects/p/messages/1")]
        assert _rows("SELECT campaign_id::text, status FROM campaign_deliveries") == [
            ("00000000-0000-0000-0000-0000000000c1", "pending")]
        db.engine.dispose()
