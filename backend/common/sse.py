"""Server-sent events: the wire format (the stream server in backend/streams/ writes it)."""
from __future__ import annotations


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
