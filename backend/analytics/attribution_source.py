"""The one place analytics reads the push domain's send ledger and opens.

Push attribution needs, per campaign: who was in which variant (the holdout included),
when each was sent (or, held out, would have been), and who opened. The push domain is
replacing ``campaign_deliveries`` with one ``push_deliveries`` ledger (same columns for
what is read here); until that migration is on every database, the ledger is whichever
of the two exists, so this module is the only change when the old name goes.
"""
from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.orm import Session

LEDGERS = ("push_deliveries", "campaign_deliveries")  # newest first


def ledger_table(session: Session) -> str:
    """The name of the push send ledger in this database."""
    for name in LEDGERS:
        if session.execute(text("SELECT to_regclass(:name)"), {"name": name}).scalar() is not None:
            return name
    raise RuntimeError("no push send ledger table (migrations not run?)")


def recipients_sql(session: Session) -> str:
    """SQL of one row per (variant, user) of campaign ``:campaign``.

    Columns: ``variant``, ``user_id``, ``anchor_at`` (first send, or for the held-out the
    time they would have been sent), ``delivered`` (a push reached FCM), ``held_out``,
    ``opened_at`` (first open of the campaign's notification, or NULL).
    """
    ledger = ledger_table(session)
    return f"""
    SELECT l.variant, l.user_id, l.anchor_at, l.delivered, l.held_out, o.opened_at
    FROM (
        SELECT coalesce(variant, '') AS variant, user_id,
               min(coalesce(sent_at, due_at)) AS anchor_at,
               bool_or(status = 'sent') AS delivered, bool_or(status = 'held_out') AS held_out
        FROM {ledger} WHERE campaign_id = :campaign GROUP BY 1, 2
    ) l
    LEFT JOIN (
        SELECT user_id, min(opened_at) AS opened_at FROM notifications
        WHERE campaign_id = :campaign AND opened_at IS NOT NULL GROUP BY user_id
    ) o ON o.user_id = l.user_id
    """  # noqa: S608 - the table name is one of LEDGERS
