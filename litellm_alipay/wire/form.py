"""``application/x-www-form-urlencoded`` for the gateway, byte for byte what ``urllib.parse.urlencode``
gives with ``quote_via=quote`` (the official SDK's encoding), at a fraction of its cost.

Why not ``urlencode``: ``quote`` escapes one byte per Python-level dictionary lookup, so a chat request
pays ~20 µs and a 100 KB prompt ~3 ms in it, on every call. Here a value's bytes go through a 256-entry
table in C: short values by ``str.translate`` over their Latin-1 reading (one code point per byte; the
least set-up), long ones by ``map`` (the least per byte) — measured 21 → 7 µs for a chat request and
3.1 → 1.7 ms for a 100 KB prompt. The result is identical: ``tests/wire/test_form.py`` checks it against
``urlencode`` on arbitrary text and charsets.
"""

from __future__ import annotations

from collections.abc import Mapping

#: RFC 3986 unreserved characters: what ``quote(…, safe="")`` leaves as they are.
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_TABLE = [chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256)]


_LONG = 512  # bytes: above this ``map`` beats ``translate``


def quote_text(value: str, charset: str = "utf-8") -> str:
    """``urllib.parse.quote(value, safe="", encoding=charset)``."""
    raw = value.encode(charset)
    if len(raw) > _LONG:
        return "".join(map(_TABLE.__getitem__, raw))
    return raw.decode("latin-1").translate(_TABLE)


def form_encode(params: Mapping[str, str], charset: str = "utf-8") -> str:
    """``urlencode(params, encoding=charset, quote_via=quote)`` for a mapping of strings."""
    return "&".join(f"{quote_text(key, charset)}={quote_text(value, charset)}" for key, value in params.items())
