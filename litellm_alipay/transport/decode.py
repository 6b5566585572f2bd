"""A response body's bytes, decoded and counted as they arrive: bounded on the wire and as they inflate.

aiohttp's own decompression is switched off (``auto_decompress=False``) so that the wire bytes and the
inflated bytes can each be counted against their own limit: the stdlib ``zlib`` decompressor is asked
for at most the bytes still allowed (``max_length``), so a gzip or deflate bomb is refused when it
reaches the limit, with no more than the limit ever held — not inflated whole and measured afterwards.
"""

from __future__ import annotations

import zlib

from ..errors import ProtocolError, ResponseLimitError

#: The encodings we ask for (``Accept-Encoding``) and can decode.
ACCEPT_ENCODING = "gzip, deflate"


class BoundedBody:
    """Feed wire bytes, get decoded bytes; raises ``ResponseLimitError`` past either limit.

    ``wire_setting``/``decoded_setting`` name the limits in the error (the settings an operator raises).
    """

    __slots__ = ("_decoded", "_decoded_limit", "_decoded_setting", "_deflate", "_inflater", "_wire",
                 "_wire_limit", "_wire_setting")

    def __init__(self, content_encoding: str | None, wire_limit: int, wire_setting: str,
                 decoded_limit: int, decoded_setting: str) -> None:
        encoding = (content_encoding or "identity").strip().lower()
        if encoding in ("gzip", "x-gzip"):
            self._inflater: zlib._Decompress | None = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._inflater = zlib.decompressobj()  # zlib-wrapped, as RFC 9110 says; raw deflate tried on error
        elif encoding in ("identity", ""):
            self._inflater = None
        else:
            raise ProtocolError(f"the answer is encoded as {encoding!r}, which was not asked for "
                                f"(Accept-Encoding: {ACCEPT_ENCODING})")
        self._deflate = encoding == "deflate"
        self._wire = self._decoded = 0
        self._wire_limit, self._wire_setting = wire_limit, wire_setting
        self._decoded_limit, self._decoded_setting = decoded_limit, decoded_setting

    def feed(self, data: bytes) -> bytes:
        self._wire += len(data)
        if self._wire > self._wire_limit:
            raise ResponseLimitError(self._wire_setting, self._wire_limit, "the answer's body")
        if self._inflater is None:
            return self._count(data)
        return self._inflate(data)

    def _count(self, data: bytes) -> bytes:
        self._decoded += len(data)
        if self._decoded > self._decoded_limit:
            raise ResponseLimitError(self._decoded_setting, self._decoded_limit, "the answer's body")
        return data

    def _inflate(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            allowed = self._decoded_limit - self._decoded + 1  # one byte over is enough to know
            try:
                piece = self._inflater.decompress(data, allowed)  # type: ignore[union-attr]
            except zlib.error:
                if self._deflate:  # the first bytes of a "deflate" body: raw deflate, as some servers send
                    self._inflater, self._deflate = zlib.decompressobj(-zlib.MAX_WBITS), False
                    continue
                raise ProtocolError("the answer's compressed body is corrupt") from None
            self._deflate = False  # the wrapping is settled once bytes came out (or the header parsed)
            self._decoded += len(piece)
            if self._decoded > self._decoded_limit:
                raise ResponseLimitError(self._decoded_setting, self._decoded_limit,
                                         "the answer's body, decompressed,")
            out.append(piece)
            data = self._inflater.unconsumed_tail  # type: ignore[union-attr]
            if self._inflater.eof:  # type: ignore[union-attr]
                data = b""  # trailing bytes after the compressed stream are ignored, as browsers do
        return b"".join(out)

    def finish(self) -> bytes:
        """The end of the body: the rest a decompressor held back (nothing for identity)."""
        if self._inflater is None:
            return b""
        try:
            piece = self._inflater.flush()  # input is consumed as it arrives: only a small tail is left
        except zlib.error:
            raise ProtocolError("the answer's compressed body is corrupt") from None
        self._decoded += len(piece)
        if self._decoded > self._decoded_limit:
            raise ResponseLimitError(self._decoded_setting, self._decoded_limit, "the answer's body, decompressed,")
        return piece
