"""A refused connection closed so that its client reads the refusal.

The server answers a connection past its caps with a canned 503 and closes it. A client sends
its request the moment it has connected, often after the server has accepted and answered:
closing a socket that then receives data makes the kernel answer with a reset, and a client
that gets the reset before it reads the 503 never sees it. So the socket's sending side is shut
(the 503 is followed by a FIN), and the socket is kept a moment, whatever arrives read and
dropped, until the client closes it or LINGER_S pass. At most MAX_LINGERING sockets wait so at
once, each holding a descriptor for that moment; past that, one is closed at once, as before.
"""

from __future__ import annotations

import contextlib
import socket

from tornado.ioloop import IOLoop

LINGER_S = 1.0
MAX_LINGERING = 64


class Lingering:
    def __init__(self) -> None:
        self._sockets: dict[socket.socket, object] = {}  # each with its timeout's handle

    def __len__(self) -> int:
        return len(self._sockets)

    def close(self, sock: socket.socket, answer: bytes) -> None:
        """Sends `answer` on `sock` (non-blocking), then closes it, lingering when there is
        room."""
        with contextlib.suppress(OSError):
            sock.setblocking(False)
            sock.send(answer)
            if len(self._sockets) < MAX_LINGERING:
                sock.shutdown(socket.SHUT_WR)
                io_loop = IOLoop.current()
                io_loop.add_handler(sock, lambda _fd, _events: self._drain(sock), IOLoop.READ)
                self._sockets[sock] = io_loop.call_later(LINGER_S, self._forget, sock)
                return
            with contextlib.suppress(BlockingIOError):
                sock.recv(65536)  # what the client sent already: closing on it would reset
        sock.close()

    def _drain(self, sock: socket.socket) -> None:
        try:
            while sock.recv(65536):
                pass
        except BlockingIOError:
            return  # all read: wait for more, or for the end
        except OSError:
            pass
        self._forget(sock)

    def _forget(self, sock: socket.socket) -> None:
        timeout = self._sockets.pop(sock, None)
        if timeout is None:
            return
        io_loop = IOLoop.current()
        io_loop.remove_timeout(timeout)
        io_loop.remove_handler(sock)
        sock.close()

    def close_all(self) -> None:
        for sock in list(self._sockets):
            self._forget(sock)
