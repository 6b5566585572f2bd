"""The v2 gateway's string-to-sign (PROTOCOL A2/A3) and request signing over it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from ...errors import ConfigurationError
from ._keys import KeyText, PrivateKey, PublicKey, load_private_key, load_public_key

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
SIGN_TYPES = ("RSA2", "RSA", "HMAC-SHA256")
_HASHES = {"RSA2": hashes.SHA256, "RSA": hashes.SHA1}


def beijing_timestamp(now: datetime | None = None) -> str:
    """``yyyy-MM-dd HH:mm:ss`` in Beijing time, whatever the host's zone (A2)."""
    moment = now.astimezone(BEIJING) if now is not None else datetime.now(BEIJING)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def parse_beijing_timestamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=BEIJING)


def param_text(value: Any) -> str:
    """A parameter's wire text; non-strings are JSON-encoded exactly as the official SDK does."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def build_sign_content(params: Mapping[str, Any]) -> str:
    """Sorted ``k=v`` joined by ``&``, verbatim, without ``sign`` and empty values (A3)."""
    parts = []
    for key in sorted(params):
        if key == "sign":
            continue
        value = params[key]
        if value is None:
            continue
        text = param_text(value)
        if not text.strip():
            continue
        parts.append(f"{key}={text}")
    return "&".join(parts)


def _hash_for(sign_type: str) -> hashes.HashAlgorithm:
    try:
        return _HASHES[sign_type]()
    except KeyError:
        raise ConfigurationError("sign_type", f"must be one of {', '.join(SIGN_TYPES)}") from None


def rsa_sign(data: bytes, private_key: KeyText | PrivateKey, sign_type: str = "RSA2") -> str:
    """Base64 PKCS#1 v1.5 signature over ``data`` with the hash ``sign_type`` names."""
    key = load_private_key(private_key)
    return base64.b64encode(key.sign(data, padding.PKCS1v15(), _hash_for(sign_type))).decode()


def rsa_verify(
    data: bytes, signature: str, public_key: KeyText | PublicKey, sign_type: str = "RSA2"
) -> bool:
    """True only when ``signature`` is valid for ``data`` under exactly ``sign_type``'s hash."""
    key = load_public_key(public_key)
    try:
        raw = base64.b64decode(signature, validate=True)
        key.verify(raw, data, padding.PKCS1v15(), _hash_for(sign_type))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def hmac_sign(data: bytes, secret: str | bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return base64.b64encode(hmac.new(key, data, hashlib.sha256).digest()).decode()


def hmac_verify(data: bytes, signature: str, secret: str | bytes) -> bool:
    return hmac.compare_digest(hmac_sign(data, secret), signature)


def _params_bytes(params: Mapping[str, Any]) -> tuple[bytes, str]:
    charset = str(params.get("charset") or "utf-8")
    sign_type = str(params.get("sign_type") or "RSA2")
    try:
        return build_sign_content(params).encode(charset), sign_type
    except LookupError:
        raise ConfigurationError("charset", f"{charset!r} is not a known charset") from None
    except UnicodeEncodeError:
        raise ConfigurationError("charset", f"the parameters cannot be encoded in {charset}") from None


def sign_params(params: Mapping[str, Any], private_key: KeyText | PrivateKey | bytes) -> str:
    """The ``sign`` value for ``params``; sign type and charset are read from the params.

    For ``HMAC-SHA256`` ``private_key`` is the shared secret.
    """
    data, sign_type = _params_bytes(params)
    if sign_type == "HMAC-SHA256":
        return hmac_sign(data, private_key)  # type: ignore[arg-type]
    return rsa_sign(data, private_key, sign_type)  # type: ignore[arg-type]


def verify_params(params: Mapping[str, Any], public_key: KeyText | PublicKey | bytes) -> bool:
    """Check a request's ``sign`` (the gateway's side of A3); ``HMAC-SHA256`` takes the secret."""
    signature = params.get("sign")
    if not signature:
        return False
    try:
        data, sign_type = _params_bytes(params)
    except ConfigurationError:  # a charset the request cannot be encoded in: not a valid request
        return False
    if sign_type == "HMAC-SHA256":
        return hmac_verify(data, str(signature), public_key)  # type: ignore[arg-type]
    if sign_type not in _HASHES:
        return False
    return rsa_verify(data, str(signature), public_key, sign_type)  # type: ignore[arg-type]
