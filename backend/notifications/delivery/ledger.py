"""The push ledger's statements: claim due rows, park or mark them, record outcomes.

Written as SQL because each works on a whole batch in one round trip; ``engine``
binds them. Every write after the claim (renewing its lease, recording its answers) is
guarded by the batch's claim token. Both
claims read, beside each row, what the send-time policy re-checks: the device as it is
*now* (gone, token gone, another owner), the category preference and the quiet hours.
"""

# The device as it is now; LEFT JOIN LATERAL: one index probe per claimed row, and a row
# whose device was deleted (signed out) still comes back, to be suppressed with its reason.
_DEVICE = """
LEFT JOIN LATERAL (SELECT x.token, x.disabled_at IS NOT NULL AS disabled, x.push_permission = 'denied' AS denied,
                          x.user_id AS owner
                   FROM devices x WHERE x.id = d.device_id LIMIT 1) dv ON true
"""

# The due rows are picked (and locked) alone, in the order of the partial index on
# (campaign_id, next_attempt_at), before any join: the cost stays per batch, not per campaign.
# They are marked 'sending' under the claim token in the same statement (the usual verdict:
# a batch whose rows all go out needs no second write); the few the policy parks are put
# back by PARK_SQL with what the claim overwrote (``was_claimed``, ``was_renewed``).
_TAKE = """
taken AS (
    UPDATE push_deliveries t
    SET status = 'sending', claim_token = CAST(:token AS uuid), claimed_at = CAST(:now AS timestamptz),
        renewed_at = NULL, error_code = NULL, attempts = t.attempts + 1
    FROM due
    WHERE t.id = due.id
    RETURNING due.*
)
"""

CLAIM_CAMPAIGN_SQL = """
WITH due AS (
    SELECT d.id, d.device_id, d.user_id, d.variant, d.locale, d.time_zone, d.attempts, d.next_attempt_at,
           d.claimed_at AS was_claimed, d.renewed_at AS was_renewed
    FROM push_deliveries d
    WHERE d.campaign_id = :campaign AND d.status IN ('pending', 'deferred') AND d.next_attempt_at <= :now
    ORDER BY d.next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
{take}
SELECT d.id, d.device_id, d.user_id, d.variant, d.locale, d.time_zone, d.attempts,
       dv.token, dv.disabled, dv.denied, dv.owner,
       p.enabled, q.start_local, q.end_local, q.time_zone,
       u.first_name, u.display_name, {properties}, d.was_claimed, d.was_renewed
FROM taken d
{device}
LEFT JOIN users u ON u.id = d.user_id
LEFT JOIN notification_preferences p ON p.user_id = d.user_id AND p.category = :category
LEFT JOIN notification_quiet_hours q ON q.user_id = d.user_id
ORDER BY d.next_attempt_at, d.id
""".replace("{device}", _DEVICE).replace("{take}", _TAKE)

# Transactional rows (campaign_id IS NULL) of every send, in due order (their partial index).
CLAIM_TRANSACTIONAL_SQL = """
WITH due AS (
    SELECT d.id, d.notification_id, d.device_id, d.user_id, d.locale, d.time_zone, d.attempts, d.next_attempt_at,
           d.error_code, d.claimed_at AS was_claimed, d.renewed_at AS was_renewed
    FROM push_deliveries d
    WHERE d.campaign_id IS NULL AND d.status IN ('pending', 'deferred') AND d.next_attempt_at <= :now
      AND (CAST(:only AS bigint[]) IS NULL OR d.id = ANY(CAST(:only AS bigint[])))  -- a test send's rows
    ORDER BY d.next_attempt_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
),
{take}
SELECT d.id, d.device_id, d.user_id, d.notification_id, d.locale, d.time_zone, d.attempts,
       dv.token, dv.disabled, dv.denied, dv.owner,
       p.enabled, q.start_local, q.end_local, q.time_zone, d.error_code, d.was_claimed, d.was_renewed
FROM taken d
JOIN notifications n ON n.id = d.notification_id
{device}
LEFT JOIN notification_preferences p ON p.user_id = d.user_id AND p.category = n.category
LEFT JOIN notification_quiet_hours q ON q.user_id = d.user_id
ORDER BY d.next_attempt_at, d.id
""".replace("{device}", _DEVICE).replace("{take}", _TAKE)

# The claimed rows the policy did not send: their verdict, and the claim undone (token,
# attempt, and the claim/renewal instants the claim overwrote).
PARK_SQL = """
UPDATE push_deliveries d
SET status = v.status,
    next_attempt_at = COALESCE(v.next_at, d.next_attempt_at),
    error_code = v.err,
    claim_token = NULL,
    claimed_at = v.was_claimed,
    renewed_at = v.was_renewed,
    attempts = d.attempts - 1
FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:next_at AS timestamptz[]),
            CAST(:errs AS text[]), CAST(:was_claimed AS timestamptz[]), CAST(:was_renewed AS timestamptz[]))
     AS v(id, status, next_at, err, was_claimed, was_renewed)
WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[])) AND d.claim_token = CAST(:token AS uuid)
"""

RECORD_SQL = """
UPDATE push_deliveries d
SET status = v.status,
    sent_at = CASE WHEN v.status = 'sent' THEN CAST(:at AS timestamptz) END,
    fcm_message_id = v.mid,
    error_code = v.err,
    next_attempt_at = COALESCE(v.next_at, d.next_attempt_at),
    claim_token = CASE WHEN v.status IN ('pending', 'deferred') THEN NULL ELSE d.claim_token END,
    attempts = d.attempts - CASE WHEN v.refund THEN 1 ELSE 0 END  -- a 429 is not the row's attempt
FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]), CAST(:mids AS text[]), CAST(:errs AS text[]),
            CAST(:next_at AS timestamptz[]), CAST(:refunds AS boolean[])) AS v(id, status, mid, err, next_at, refund)
WHERE d.id = v.id AND d.id = ANY(CAST(:ids AS bigint[])) AND d.claim_token = CAST(:token AS uuid)
  AND d.status = 'sending'
RETURNING d.id
"""

# The lane's heartbeat: the rows it still holds (its claim tokens, still 'sending') keep
# their lease while their requests are out. A claim the reconciler already took back has
# lost its token, so renewing cannot resurrect it.
RENEW_SQL = """
UPDATE push_deliveries SET renewed_at = :now
WHERE claim_token = ANY(CAST(:tokens AS uuid[])) AND status = 'sending'
"""

# A claim whose lease ran out (neither claimed nor renewed since the cutoff) belongs to a
# lane that died or stopped renewing mid-send: its requests may or may not have reached FCM.
# It is sent again, with the same collapse identity, so a phone that got both shows one
# notification; after the attempt limit it is left 'unknown'.
EXPIRE_LEASES_SQL = """
UPDATE push_deliveries d
SET status = CASE WHEN d.attempts >= :max_attempts THEN 'unknown'
                  WHEN EXISTS (SELECT 1 FROM campaigns c WHERE c.id = d.campaign_id AND c.status = 'cancelled')
                  THEN 'cancelled' ELSE 'pending' END,
    error_code = 'lease_expired', claim_token = NULL, next_attempt_at = :now
WHERE d.status = 'sending' AND greatest(d.claimed_at, d.renewed_at) < :cutoff
"""
