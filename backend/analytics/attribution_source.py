"""The one place analytics reads the push domain's send ledger and opens.

Push attribution needs, per campaign: who was in which variant (the holdout included),
when each was sent (or, held out, would have been), and who opened. The ledger is
``push_deliveries`` (one row per push and device, campaign rows carry ``campaign_id``);
opens are the first ``opened_at`` of the campaign's inbox notifications. If the push
domain changes either, this module is the only one to follow.
"""
from __future__ import annotations

RECIPIENTS_SQL = """
    SELECT l.variant, l.user_id, l.anchor_at, l.delivered, l.held_out, o.opened_at
    FROM (
        SELECT coalesce(variant, '') AS variant, user_id,
               min(coalesce(sent_at, due_at)) AS anchor_at,
               bool_or(status = 'sent') AS delivered, bool_or(status = 'held_out') AS held_out
        FROM push_deliveries WHERE campaign_id = :campaign GROUP BY 1, 2
    ) l
    LEFT JOIN (
        SELECT user_id, min(opened_at) AS opened_at FROM notifications
        WHERE campaign_id = :campaign AND opened_at IS NOT NULL GROUP BY user_id
    ) o ON o.user_id = l.user_id
"""
"""One row per (variant, user) of campaign ``:campaign``: ``variant``, ``user_id``, ``anchor_at``
(first send, or for the held-out the time they would have been sent), ``delivered`` (a push
reached FCM), ``held_out``, ``opened_at`` (first open of the campaign's notification, or NULL)."""
