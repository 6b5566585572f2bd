"""A listening socket bound before the server starts: port 0 gives a free port, known before the ready line."""

from __future__ import annotations

import socket


def bind(host: str, port: int) -> socket.socket:
    """A non-blocking listening TCP socket on ``host:port`` (IPv6 when the host has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock
