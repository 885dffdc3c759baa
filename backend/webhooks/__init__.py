"""Outbound webhooks: signed HTTP callbacks to the app's own servers when work is done.

``emit(session, type, data)`` (in ``services``) writes the event and one delivery row
per subscribed endpoint in the caller's transaction (an outbox: an event exists exactly
when the change that caused it committed); after commit a job sends each delivery,
signed in the Standard Webhooks style (``webhook-id``, ``webhook-timestamp``,
``webhook-signature: v1,<base64 HMAC-SHA256>``), and retries failures with backoff.
Every attempt is logged. Event types are declared in ``events.EVENT_TYPES``.
"""
