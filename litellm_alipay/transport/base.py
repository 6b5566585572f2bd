"""What every transport shares: the request and response messages, and the reading of OS/TLS failures.

Its own module so the transports (``http.py``'s aiohttp and httpx clients, ``h1.py``) depend on it and not on
each other.
"""

from __future__ import annotations

import errno
import select
import ssl
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import TransportError

#: errno values that mean this process, not the gateway, ran out of room.
_LOCAL_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def _causes(exc: BaseException | None) -> Iterator[BaseException]:
    """``exc`` and what caused it (a few levels: httpx and aiohttp wrap OS and TLS errors)."""
    for _ in range(8):
        if exc is None:
            return
        yield exc
        exc = exc.__cause__ or exc.__context__


def _local_failure(exc: BaseException | None) -> bool:
    """True when an OS error under ``exc`` says the local process is out of sockets or memory."""
    return any(isinstance(e, OSError) and e.errno in _LOCAL_ERRNOS for e in _causes(exc))


def _certificate_error(exc: BaseException) -> ssl.SSLCertVerificationError | None:
    return next((e for e in _causes(exc) if isinstance(e, ssl.SSLCertVerificationError)), None)


def _untrusted(exc: ssl.SSLCertVerificationError | None) -> TransportError:
    reason = getattr(exc, "verify_message", None) or "certificate verify failed"
    return TransportError(
        f"the gateway's TLS certificate is not trusted ({reason}): set the deployment's ssl_verify to the "
        "CA bundle that signed it (or SSL_CERT_FILE)", sent=False)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: what connection pools and proxy choices are kept per."""
    end = url.find("/", url.find("://") + 3)
    return url[: end if end >= 0 else len(url)].partition("?")[0]


@dataclass(slots=True)
class HttpRequest:
    url: str
    content: bytes
    headers: Mapping[str, str]
    read_timeout: float
    connect_timeout: float
    method: str = "POST"

    def __repr__(self) -> str:
        """Path only: the body carries ``sign`` and tokens, the headers a v3 signature."""
        return f"HttpRequest({self.method} {self.url.partition('?')[0]}, {len(self.content)} bytes)"


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: Mapping[str, str]
    content: bytes


def _peer_closed(sock: Any) -> bool:
    """True when a pooled connection must not be reused: EOF, a reset, or *any* byte pending.

    ``poll`` with no wait on the descriptor: the event loop may not have seen the gateway's FIN yet when
    the pool hands the connection out. An idle HTTP/1.1 connection has nothing to read, so a readable one
    means the peer is leaving: on TLS that is its ``close_notify`` alert (sent before the FIN), on plain
    HTTP an unsolicited 408 or the like. httpcore treats a readable idle connection the same way. No
    duplicate descriptor: a process out of descriptors must not discard its healthy connections.
    """
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))  # readable, hung up or in error
    except (OSError, ValueError):
        return True
