"""The push provider: FCM HTTP v1 (pooled sender, payloads, answer classification) or the outbox.

``providers`` is the interface the rest of Groundwork sees (``PushProvider``, chosen by
``PUSH_BACKEND``); ``client`` and ``payload`` speak FCM's wire protocol.
"""
