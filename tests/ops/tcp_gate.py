"""A TCP forwarder a test can close and open again: a dependency that becomes unreachable.

Closed, its port refuses connections and the connections it carried are cut, as when
a store's endpoint goes away; opened again on the same port, it forwards to the same
server, whose data is intact. The first open takes a port the kernel assigns, so gates of
parallel test workers (or of two test sessions on one machine) never share one.
"""
from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading

log = logging.getLogger(__name__)


class TcpGate:
    """Forward 127.0.0.1:<port> to ``target``; ``close()`` refuses, ``open()`` forwards again."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self.listener: socket.socket | None = None
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))  # 0 the first time: the kernel picks a free port
        self.port = listener.getsockname()[1]
        listener.listen(64)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def close(self) -> None:
        """Refuse new connections and cut the open ones."""
        listener, self.listener = self.listener, None
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        with self.lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self.connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError as exc:  # shown with a failing test's captured log
                log.warning("gate :%s could not reach %s:%s: %s", self.port, *self.target, exc)
                client.close()
                continue
            with self.lock:
                self.connections.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        # A selector, not select.select: in a long test session this process holds over
        # 1,024 descriptors, which select() cannot watch (ValueError: the connection was
        # dropped at once, and a full `make test` failed the storage-outage tests' set-up).
        pair = {client: upstream, upstream: client}
        selector = selectors.DefaultSelector()
        try:
            for sock in pair:
                selector.register(sock, selectors.EVENT_READ)
            while all(sock.fileno() != -1 for sock in pair):  # close() cuts them from another thread
                for key, _ in selector.select(timeout=1.0):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    pair[key.fileobj].sendall(data)  # type: ignore[index]
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            with self.lock:
                for sock in pair:
                    self.connections.discard(sock)
                    sock.close()
