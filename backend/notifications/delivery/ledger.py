"""The send ledger's three statements: claim due rows, park or mark them, record outcomes.

Written as SQL because each works on a whole batch in one round trip; ``engine``
binds them. Every write is guarded by the batch's claim token.
"""

# The due rows are picked (and locked) alone, in the order of the partial index on
# (campaign_id, next_attempt_at), before any join: the cost stays per batch, not per campaign.
CLAIM_SQL = """
WITH due AS (
    SELECT d.id, d.device_id, d.user_id, d.variant, d.locale, d.time_zone, d.attempts, d.next_attempt_at
    FROM campaign_deliveries d
    WHERE d.campaign_id = :campaign AND d.status IN ('pending', 'deferred') AND d.next_attempt_at <= :now
    ORDER BY d.next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
SELECT d.id, d.device_id, d.user_id, d.variant, d.locale, d.time_zone, d.attempts,
       dv.token, dv.disabled, dv.denied,
       p.enabled, q.start_local, q.end_local, q.time_zone,
       u.first_name, u.display_name, {properties}
FROM due d
-- LATERAL: one index probe per claimed row (a hash join would read every device)
CROSS JOIN LATERAL (SELECT x.token, x.disabled_at IS NOT NULL AS disabled, x.push_permission = 'denied' AS denied
                    FROM devices x WHERE x.id = d.device_id LIMIT 1) dv
LEFT JOIN users u ON u.id = d.user_id
LEFT JOIN notification_preferences p ON p.user_id = d.user_id AND p.category = :category
LEFT JOIN notification_quiet_hours q ON q.user_id = d.user_id
ORDER BY d.next_attempt_at, d.id
"""

PARK_SQL = """
UPDATE campaign_deliveries d
SET status = v.status,
    next_attempt_at = COALESCE(v.next_at, d.next_attempt_at),
    error_code = v.err,
    claim_token = CASE WHEN v.status = 'sending' THEN CAST(:token AS uuid) END,
    claimed_at = CASE WHEN v.status = 'sending' THEN CAST(:now AS timestamptz) ELSE d.claimed_at END,
    attempts = d.attempts + CASE WHEN v.status = 'sending' THEN 1 ELSE 0 END
FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:next_at AS timestamptz[]),
            CAST(:errs AS text[])) AS v(id, status, next_at, err)
WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[]))
"""

RECORD_SQL = """
UPDATE campaign_deliveries d
SET status = v.status,
    sent_at = CASE WHEN v.status = 'sent' THEN CAST(:at AS timestamptz) END,
    fcm_message_id = v.mid,
    error_code = v.err,
    next_attempt_at = COALESCE(v.next_at, d.next_attempt_at),
    claim_token = CASE WHEN v.status IN ('pending', 'deferred') THEN NULL ELSE d.claim_token END
FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:mids AS text[]), CAST(:errs AS text[]),
            CAST(:next_at AS timestamptz[])) AS v(id, status, mid, err, next_at)
WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[])) AND d.claim_token = CAST(:token AS uuid)
  AND d.status IN ('sending', 'unknown')
"""
