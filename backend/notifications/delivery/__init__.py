"""The delivery engine: one ledger, one claim-per-batch loop, one send-time policy.

Whatever created the ledger rows (a transactional send, a campaign), the engine claims
due rows, decides each with the policy, sends through the push provider and records
every answer. ``dispatch`` decides when lanes run; ``reconcile`` rebuilds the work from
PostgreSQL when Redis or a worker loses it.
"""
