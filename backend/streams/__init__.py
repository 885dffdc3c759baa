"""The stream server: open inbox streams held by one asyncio process, apart from the web workers.

A gthread worker holds one thread for as long as a stream is open, so a few dozen open
inbox screens used to stall the API (issue 12). Here each open stream is a coroutine and
a socket: thousands cost megabytes, not threads. The process is the Flask app's sibling,
not a second implementation: it builds the same app (``create_app``) for its config,
keys, database and Redis, verifies tokens with ``backend.auth.principal``, replays from
PostgreSQL with ``backend.notifications.inbox`` and formats with ``backend.common.sse``.
Only the blocking calls (sign-in check, replay, the heartbeat sweep) run in a small
thread pool; nginx routes ``/v1/notifications/inbox/stream`` here.

Parts:
- ``opening``: the blocking work of opening a stream (who is asking, what they missed).
- ``hub``: one Redis pattern subscription for the whole process, the open streams by
  user, and the heartbeat sweep (revocation, missed-publish poll, heartbeat comment).
- ``server``: the aiohttp application (the stream endpoint, /healthz, /readyz) and ``serve``.
"""
