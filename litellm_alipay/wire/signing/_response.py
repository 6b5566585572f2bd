"""Response verification for the v2 gateway (PROTOCOL A4): verify the raw node text, never a re-dump."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from ...errors import SignatureError
from ._keys import KeyText, PublicKey
from ._params import rsa_verify

_QUOTE, _OPEN, _CLOSE = 0x22, 0x7B, 0x7D


def response_node_name(method: str) -> str:
    return method.replace(".", "_") + "_response"


#: A string literal (closed, or running to the end of the body) or a brace. The scan is done by the
#: regex engine in C: a 10 KB embedding body costs microseconds instead of a Python loop per byte.
_CLOSED_STRING = re.compile(rb'"(?:[^"\\]|\\[\s\S])*"')
_TOKENS = re.compile(rb'"(?:[^"\\]|\\[\s\S])*(?:"|\\?\Z)|[{}]')


def _matching_brace(body: bytes, start: int) -> int:
    """Index just past the ``}`` closing the ``{`` at ``start``, skipping string literals."""
    depth = 0
    for token in _TOKENS.finditer(body, start):
        c = body[token.start()]
        if c == _OPEN:
            depth += 1
        elif c == _CLOSE:
            depth -= 1
            if depth == 0:
                return token.end()
    raise SignatureError("response node is not closed")


def _skip_ws(body: bytes, i: int) -> int:
    while i < len(body) and body[i] in b" \t\r\n":
        i += 1
    return i


def extract_signed_node(raw_body: bytes | str, method: str) -> tuple[str, bytes, int]:
    """``(node_name, raw node bytes, end offset)`` of the signed part of a gateway body.

    The node is the value of ``"<method>_response"``, else ``"error_response"``; its value is a JSON
    object or, under AES encryption, a JSON string (quotes included).
    """
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    for name in (response_node_name(method), "error_response"):
        key = b'"' + name.encode() + b'"'
        at = body.find(key)
        if at < 0:
            continue
        i = _skip_ws(body, at + len(key))
        if i >= len(body) or body[i] != 0x3A:  # ':'
            raise SignatureError(f"{name} is not followed by a value")
        i = _skip_ws(body, i + 1)
        if i < len(body) and body[i] == _OPEN:
            end = _matching_brace(body, i)
        elif i < len(body) and body[i] == _QUOTE:
            end = _string_end(body, i)
        else:
            raise SignatureError(f"{name} is neither an object nor an encrypted string")
        if body.find(key, end) >= 0:
            raise SignatureError(f"{name} occurs more than once")
        return name, body[i:end], end
    raise SignatureError("response holds neither the method's node nor error_response")


def _string_end(body: bytes, start: int) -> int:
    """Index just past the string literal opening at ``start`` (an AES-encrypted node)."""
    token = _CLOSED_STRING.match(body, start)
    if token is None:
        raise SignatureError("response string is not closed")
    return token.end()


def _top_level(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: absurd nesting
        raise SignatureError("response body is not JSON") from None
    if not isinstance(doc, dict):
        raise SignatureError("response body is not a JSON object")
    return doc


def verify_node(
    node: bytes, signature: str, public_key: KeyText | PublicKey, sign_type: str = "RSA2"
) -> bool:
    """Verify under ``sign_type`` only; retry once with ``\\/`` unescaped, as the gateway may escape."""
    if rsa_verify(node, signature, public_key, sign_type):
        return True
    return b"\\/" in node and rsa_verify(node.replace(b"\\/", b"/"), signature, public_key, sign_type)


def verify_response(
    raw_body: bytes | str,
    method: str,
    public_key: KeyText | PublicKey | Callable[[str | None], KeyText | PublicKey],
    sign_type: str = "RSA2",
    *,
    decrypt: Callable[[str], str] | None = None,
    charset: str = "utf-8",
) -> dict[str, Any]:
    """The verified response node as a dict, or ``SignatureError``.

    With a ``charset`` other than UTF-8 (GBK) the node is located in the decoded text, since GBK's
    second bytes can equal ``{``, ``}`` or ``\\``, and verified over its bytes in that charset.

    ``public_key`` may be a callable taking the response's ``alipay_cert_sn`` (certificate mode).
    An unsigned ``error_response`` is returned with ``"_unsigned": True`` so a caller may report the
    error but can never mistake it for success; an unsigned success node is rejected.
    """
    if sign_type not in ("RSA2", "RSA"):
        raise SignatureError(f"sign_type {sign_type!r} cannot verify a response")
    body = raw_body.encode("utf-8") if isinstance(raw_body, str) else bytes(raw_body)
    utf8 = charset.replace("_", "-").lower() in ("utf-8", "utf8")
    if not utf8:
        try:
            body = body.decode(charset).encode("utf-8")
        except (LookupError, UnicodeDecodeError):
            raise SignatureError(f"response body is not {charset}") from None
    if body.startswith(b"\xef\xbb\xbf"):
        body = body[3:]
    name, node, end = extract_signed_node(body, method)
    # The members beside the node (sign, alipay_cert_sn) come from the body with the node itself
    # replaced by null: one small parse instead of a second parse of a large node.
    start = end - len(node)
    doc = _top_level(body[:start] + b"null" + body[end:])
    signature = doc.get("sign")
    if not isinstance(signature, str) or not signature:
        if name == "error_response":
            return _unsigned_error(node)
        raise SignatureError("response is not signed")
    cert_sn = doc.get("alipay_cert_sn")
    if cert_sn is not None and not isinstance(cert_sn, str):
        raise SignatureError("alipay_cert_sn is not a string")
    key = public_key(cert_sn) if callable(public_key) else public_key
    signed = node if utf8 else node.decode("utf-8").encode(charset)
    if not verify_node(signed, signature, key, sign_type):
        raise SignatureError(f"{name} signature does not verify")
    return _parse_node(node, decrypt)


def _parse_node(node: bytes, decrypt: Callable[[str], str] | None) -> dict[str, Any]:
    try:
        value = json.loads(node)
        if isinstance(value, str):
            if decrypt is None:
                raise SignatureError("response node is encrypted and no key is configured")
            value = json.loads(decrypt(value))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise SignatureError("response node is not JSON") from None
    if not isinstance(value, dict):
        raise SignatureError("response node is not a JSON object")
    return value


def _unsigned_error(node: bytes) -> dict[str, Any]:
    value = _parse_node(node, None)
    value["_unsigned"] = True
    if str(value.get("code", "")) == "10000" and not value.get("sub_code"):
        value["code"] = "40002"  # an unsigned node can never stand for success
        value["sub_code"] = "isv.invalid-signature"
    return value
