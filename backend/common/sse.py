"""Server-sent events: wire format and a streaming response that proxies do not buffer."""
from __future__ import annotations

from collections.abc import Iterable, Iterator

from flask import Response, stream_with_context


def event(data: str, *, name: str | None = None, event_id: str | None = None) -> str:
    """One SSE event; multi-line data is split into several ``data:`` lines as the format requires."""
    lines = []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    if name is not None:
        lines.append(f"event: {name}")
    lines.extend(f"data: {line}" for line in data.split("\n"))
    return "\n".join(lines) + "\n\n"


def comment(text: str) -> str:
    """A comment line: keeps idle connections (and the proxies between) alive, ignored by clients."""
    return f": {text}\n\n"


def retry(milliseconds: int) -> str:
    """Tell the client how long to wait before reconnecting."""
    return f"retry: {milliseconds}\n\n"


def sse_response(chunks: Iterable[str]) -> Response:
    """A text/event-stream response (the request context stays available to the generator)."""

    def encoded() -> Iterator[bytes]:
        for chunk in chunks:
            yield chunk.encode()

    response = Response(stream_with_context(encoded()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event through at once
    return response
