"""How much may come back: the bounds on a response, each a deployment setting with a sane default.

Everything from the network is bounded before it is kept: the header block (aiohttp's parser refuses a
line or a header past ``max_response_header_size`` and more than ``max_response_headers`` headers), the
body as it arrives on the wire, the body as it inflates (a gzip or deflate bomb is refused at the
limit, never inflated whole), one server-sent event, and a whole stream. Exceeding one raises
``ResponseLimitError`` naming the setting, so an operator who really expects bigger answers knows what to
raise. The defaults are far above anything the gateway or Ant Ling sends (a chat answer is a few KiB; an
SSE event a few hundred bytes) and far below what would hurt a proxy worker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigurationError

KIB, MIB = 1024, 1024 * 1024


@dataclass(frozen=True, slots=True)
class ResponseLimits:
    #: One header line (status line, name + value) in bytes: aiohttp's ``max_line_size``/``max_field_size``.
    max_response_header_size: int = 16 * KIB
    #: How many headers one response may carry (aiohttp's ``max_headers``).
    max_response_headers: int = 100
    #: Body bytes as they arrive on the wire (compressed or not); a larger ``Content-Length`` is refused unread.
    max_response_body: int = 16 * MIB
    #: Body bytes after gzip/deflate decoding, counted as they inflate.
    max_decompressed_body: int = 64 * MIB
    #: One server-sent event (its lines up to the blank line that ends it).
    max_sse_event: int = 1 * MIB
    #: A whole stream's bytes (after decoding).
    max_stream_body: int = 64 * MIB


#: setting name -> environment variable; both settings objects (gateway, Ant Ling) read these.
LIMIT_ENV = {
    "max_response_header_size": "ALIPAY_MAX_RESPONSE_HEADER_SIZE",
    "max_response_headers": "ALIPAY_MAX_RESPONSE_HEADERS",
    "max_response_body": "ALIPAY_MAX_RESPONSE_BODY",
    "max_decompressed_body": "ALIPAY_MAX_DECOMPRESSED_BODY",
    "max_sse_event": "ALIPAY_MAX_SSE_EVENT",
    "max_stream_body": "ALIPAY_MAX_STREAM_BODY",
}
DEFAULT_LIMITS = ResponseLimits()


def parse_limits(value: Callable[[str], Any]) -> ResponseLimits:
    """The limits from ``value(name)`` (a deployment's value or its environment variable, ``None`` if unset).

    Each must be a whole number of bytes (or headers) of at least 1; the error names the setting.
    """
    found: dict[str, int] = {}
    for name in LIMIT_ENV:
        raw = value(name)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        try:
            number = int(str(raw).strip()) if not isinstance(raw, int) else raw
        except ValueError:
            raise ConfigurationError(name, f"must be a whole number, got {raw!r}") from None
        if number < 1:
            raise ConfigurationError(name, f"must be at least 1, got {raw!r}")
        found[name] = number
    return ResponseLimits(**found) if found else DEFAULT_LIMITS

