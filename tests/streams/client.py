"""A small SSE client for tests: reads frames of a real HTTP response in a thread."""
from __future__ import annotations

import json
import queue
import threading
import urllib.request
from typing import Any

INBOX_STREAM_PATH = "/v1/notifications/inbox/stream"


class StreamReader:
    """Reads SSE frames from a response in a thread; frames arrive on a queue (None: the stream ended)."""

    def __init__(self, response: Any) -> None:
        self.response = response
        self.frames: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        frame: dict[str, Any] = {}
        try:
            for raw in self.response:
                line = raw.decode().rstrip("\n")
                if line == "":
                    if frame:
                        self.frames.put(frame)
                    frame = {}
                    continue
                field, _, value = line.partition(":")
                frame.setdefault(field or "comment", []).append(value.lstrip(" "))
        except (AttributeError, ValueError, OSError):
            pass  # closed by the test while reading
        self.frames.put(None)

    def next_frame(self, timeout: float = 20.0) -> dict[str, Any] | None:
        return self.frames.get(timeout=timeout)

    def next_event(self, name: str = "notification", timeout: float = 20.0) -> dict[str, Any]:
        """The payload of the next event called ``name`` (heartbeats and others skipped)."""
        while True:
            frame = self.next_frame(timeout)
            assert frame is not None, f"stream ended before a {name} event arrived"
            if frame.get("event") == [name]:
                payload = json.loads("\n".join(frame["data"]))
                if name == "notification":
                    assert frame["id"] == [payload["id"]]
                return payload

    def rest(self, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Every frame until the stream ends."""
        frames = []
        while (frame := self.next_frame(timeout)) is not None:
            frames.append(frame)
        return frames

    def close(self) -> None:
        self.response.close()


def open_stream(base: str, headers: dict[str, str] | None = None, *, query: str = "") -> StreamReader:
    """Open the inbox stream; returns once the server said it is subscribed (the retry frame)."""
    request = urllib.request.Request(f"{base}{INBOX_STREAM_PATH}{query}", headers=headers or {})
    response = urllib.request.urlopen(request, timeout=30)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    assert response.headers["Cache-Control"] == "no-cache"
    reader = StreamReader(response)
    assert reader.next_frame() == {"retry": ["3000"]}
    return reader
