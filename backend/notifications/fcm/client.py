"""Pooled FCM HTTP v1 sender for campaign fan-out.

pyfcm's async path opens one connection per message and its sync path sleeps through
Retry-After; neither suits a worker sending thousands of messages. This sender keeps one
bounded pool of keep-alive connections (``transport.Http1Pool``: leaner per request than
aiohttp's general client, which cost more CPU than the rest of the push path), caches the
OAuth token from the service account file, builds bodies with pyfcm's ``parse_payload``
and *reports* Retry-After instead of sleeping, so the caller can reschedule the batch.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import google.auth.exceptions
import google.auth.transport.requests
from google.oauth2 import service_account
from pyfcm import FCMNotification
from pyfcm.errors import FCMError

from backend.notifications.fcm.payload import (
    TRANSIENT,
    FcmFailure,
    Outcome,
    OutgoingMessage,
    SendResult,
    build_body,
    classify_failure,
)
from backend.notifications.fcm.transport import ConnectFailed, Http1Pool, RequestFailed

__all__ = ["FcmSender", "OutgoingMessage", "Outcome", "SendResult"]

T = TypeVar("T")
FCM_ENDPOINT_BASE = "https://fcm.googleapis.com/v1/projects"
FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"


class AccessTokenError(Exception):
    """The service account could not obtain an OAuth access token."""


class FcmSender:
    """Send batches of messages through FCM HTTP v1 over one pool of keep-alive connections."""

    def __init__(
        self,
        credentials_path: str,
        project_id: str,
        *,
        endpoint_base: str | None = None,
        max_in_flight: int = 500,
        timeout: float = 10.0,
        max_transient_retries: int = 2,
        backoff_base: float = 0.05,
        backoff_cap: float = 0.5,
        default_retry_after: float = 60.0,
        token_refresh_margin: float = 300.0,
    ) -> None:
        self.project_id = project_id
        self.url = f"{endpoint_base or FCM_ENDPOINT_BASE}/{project_id}/messages:send"
        self.max_in_flight = max_in_flight
        self.timeout = timeout
        self.max_transient_retries = max_transient_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.default_retry_after = default_retry_after
        self.token_refresh_margin = token_refresh_margin
        self._credentials_path = credentials_path
        self._credentials: service_account.Credentials | None = None
        # pyfcm builds the JSON; its constructor reads nothing until it is asked to send.
        self._builder = FCMNotification(service_account_file=credentials_path, project_id=project_id)
        self._token: str | None = None
        self._refresh_at = 0.0
        self._refresh_lock: asyncio.Lock | None = None
        self._runner: asyncio.Runner | None = None
        self._pool: Http1Pool | None = None
        self._pool_loop: asyncio.AbstractEventLoop | None = None
        self._head: tuple[str | None, bytes] = (None, b"")  # (token, request header block)

    @property
    def builder(self) -> FCMNotification:
        """pyfcm's payload builder (bodies built outside the sender, e.g. once per shape)."""
        return self._builder

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the sender's own loop, whose connection pool stays open between calls."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(coroutine)

    def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send every message and return one result per message, in order (own event loop).

        The loop and its connection pool stay open between calls, so a worker sending batch
        after batch reuses its keep-alive connections instead of reconnecting per batch.
        """
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.send_batch_async(messages))

    def close(self) -> None:
        """Close the pooled connections and the sender's own event loop."""
        if self._pool is not None and self._pool_loop is not None and not self._pool_loop.is_closed():
            if self._pool_loop.is_running():
                # The pool lives on a caller's loop in another thread (send_batch_async): close it there.
                asyncio.run_coroutine_threadsafe(self._pool.close(), self._pool_loop).result(timeout=5)
            elif self._runner is not None:
                self._runner.run(self._pool.close())
        if self._runner is not None:
            self._runner.close()
        self._runner, self._pool = None, None

    async def send_batch_async(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Async variant of ``send_batch`` for callers that already run an event loop."""
        return await self.send_bodies_async([(m.key, self._body(m)) for m in messages])

    def _body(self, message: OutgoingMessage) -> bytes | SendResult:
        """The request body of one message, or the result refusing it."""
        try:
            return build_body(self._builder, message)
        except (FCMError, TypeError, ValueError) as exc:
            return SendResult(message.key, Outcome.INVALID_ARGUMENT, detail=str(exc), attempts=0)

    async def send_bodies_async(self, bodies: Sequence[tuple[str, bytes | SendResult]],
                                on_quota: Callable[[float], None] | None = None) -> list[SendResult]:
        """Send request bodies built beforehand ((key, body), or a result already decided), in order.

        ``on_quota(retry_after_s)`` is called (on this loop, once per call) as soon as a 429
        comes back, so the caller can hold the whole project before the batch ends.
        """
        if not bodies:
            return []
        self._refresh_lock = asyncio.Lock()
        try:
            await self._access_token()
        except AccessTokenError as exc:
            return [SendResult(key, Outcome.AUTH_ERROR, detail=str(exc), attempts=0) for key, _body in bodies]
        results: list[SendResult | None] = [None] * len(bodies)
        queue = iter(enumerate(bodies))
        pool = self._pooled()

        quota_told = on_quota is None

        async def worker() -> None:
            nonlocal quota_told
            # Workers share one iterator: at most max_in_flight requests, no task per message.
            for index, (key, body) in queue:
                result = body if isinstance(body, SendResult) else await self._send_one(pool, key, body)
                results[index] = result
                if result.outcome is Outcome.QUOTA_EXCEEDED and not quota_told:
                    quota_told = True
                    on_quota(result.retry_after or self.default_retry_after)  # type: ignore[misc]

        await asyncio.gather(*(worker() for _ in range(min(self.max_in_flight, len(bodies)))))
        if any(result is None for result in results):
            raise RuntimeError("a message got no result")  # a bug here, never a lost message
        return results  # type: ignore[return-value]

    def _pooled(self) -> Http1Pool:
        """The connection pool of the running loop, created on first use and kept for later batches."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool_loop is not loop:
            self._pool = Http1Pool(self.url, limit=self.max_in_flight, timeout=self.timeout)
            self._pool_loop = loop
        return self._pool

    async def _send_one(self, pool: Http1Pool, key: str, body: bytes) -> SendResult:
        """Send one message with bounded fast retries for transient failures."""
        attempt = 0
        token_refreshed = False
        while True:
            attempt += 1
            used_token = self._token  # what _post sends: it reads the token before its first await
            result, failure = await self._post(pool, key, body, attempt)
            if failure is None:
                return result
            if failure.token_expired and not token_refreshed:
                token_refreshed = True
                try:
                    await self._access_token(stale=used_token)
                except AccessTokenError as exc:
                    return SendResult(key, Outcome.AUTH_ERROR, detail=str(exc), attempts=attempt)
                continue
            waits_long = failure.retry_after is not None and failure.retry_after > self.backoff_cap
            if failure.outcome in TRANSIENT and attempt <= self.max_transient_retries and not waits_long:
                await asyncio.sleep(self._backoff(attempt))
                continue
            return result

    async def _post(
        self, pool: Http1Pool, key: str, body: bytes, attempt: int
    ) -> tuple[SendResult, FcmFailure | None]:
        """One HTTP attempt; returns the result and, when it failed, the classified failure."""
        token, head = self._head
        if token is None or token != self._token:  # the header block is built once per access token
            head = pool.head({"Authorization": f"Bearer {self._token}", "Content-Type": "application/json"})
            self._head = (self._token, head)
        try:
            response = await pool.post(head, body)
            raw, status = response.body, response.status
            retry_after_header = response.headers.get("retry-after")
        except ConnectFailed as exc:
            # Nothing reached FCM, so another attempt cannot double-send.
            failure = FcmFailure(Outcome.UNAVAILABLE, None, f"connect: {exc}", None)
            return SendResult(key, failure.outcome, detail=failure.detail, attempts=attempt), failure
        except (RequestFailed, TimeoutError) as exc:
            # The request may have been delivered: report it, never resend blindly here.
            detail = f"no answer ({type(exc).__name__}: {exc}); delivery unknown"
            return SendResult(key, Outcome.UNKNOWN, detail=detail, attempts=attempt), None
        if status == 200:
            name = _message_name(raw)
            return SendResult(key, Outcome.SENT, name=name, status=200, attempts=attempt), None
        failure = classify_failure(status, raw, retry_after_header)
        retry_after = failure.retry_after
        if failure.outcome is Outcome.QUOTA_EXCEEDED and retry_after is None:
            retry_after = self.default_retry_after
        result = SendResult(
            key,
            failure.outcome,
            error_code=failure.error_code,
            retry_after=retry_after,
            detail=failure.detail,
            status=status,
            attempts=attempt,
        )
        return result, failure

    def _backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff, capped (seconds)."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1)))

    async def _access_token(self, *, stale: str | None = None) -> str:
        """The cached OAuth token, refreshed (once, for all workers) near expiry or when ``stale``."""
        assert self._refresh_lock is not None
        async with self._refresh_lock:
            fresh = self._token is not None and time.time() < self._refresh_at
            # Many workers can see the same expired token; only the first refreshes it.
            if fresh and (stale is None or self._token != stale):
                return self._token  # type: ignore[return-value]
            await asyncio.to_thread(self._refresh_token)
            return self._token  # type: ignore[return-value]

    def _refresh_token(self) -> None:
        """Obtain a token with google-auth's service-account flow, as pyfcm does."""
        try:
            if self._credentials is None:
                self._credentials = service_account.Credentials.from_service_account_file(
                    self._credentials_path, scopes=[FCM_SCOPE]
                )
            self._credentials.refresh(google.auth.transport.requests.Request())
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            raise AccessTokenError(f"OAuth token request failed: {exc}") from exc
        now = time.time()
        expiry = self._credentials.expiry
        # google-auth keeps expiry as a naive UTC datetime.
        expires_at = expiry.replace(tzinfo=datetime.UTC).timestamp() if expiry else now + 3600
        lifetime = max(expires_at - now, 1.0)
        # Refresh `margin` before expiry, but never more often than every half lifetime.
        self._refresh_at = now + max(lifetime - self.token_refresh_margin, lifetime / 2)
        self._token = self._credentials.token


def _message_name(raw: bytes) -> str | None:
    """The ``name`` FCM gives an accepted message."""
    try:
        return json.loads(raw).get("name")
    except (ValueError, AttributeError):
        return None
