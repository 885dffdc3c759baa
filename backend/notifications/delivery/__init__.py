"""The delivery engine: one ledger, one claim-per-batch loop, one classifier, one send-time policy.

Whatever created the ledger rows (a transactional send or test send, a campaign), the
engine claims due rows, decides each with the policy, sends through the push provider and
records every answer. The parts:

- ``models``: the ledger, ``push_deliveries`` (one row per origin and device); ``ledger``: its SQL;
- ``claims``: locking a batch of one origin's due rows and deciding each; ``policy``: the
  decision (recipient re-check, quiet hours, caps, throttle, expiry); ``transactional`` and
  ``digest``: what a transactional row sends, alone or folded into a summary;
- ``engine``: the loop (claim → send → record), ``outcomes``: the one FCM answer classifier,
  ``backoff``: the project-wide quota wait after a 429;
- ``dispatch`` and ``lanes``: when lanes run and how many; ``reconcile``: the work rebuilt
  from PostgreSQL when Redis or a worker loses it (leases, due rows, completion).
"""
