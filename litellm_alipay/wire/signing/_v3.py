"""The v3 REST protocol's header signatures (PROTOCOL A7)."""

from __future__ import annotations

import secrets
import time

from ._keys import KeyText, PrivateKey, PublicKey
from ._params import rsa_sign, rsa_verify

AUTH_SCHEME = "ALIPAY-SHA256withRSA"


def v3_auth_string(
    app_id: str, nonce: str, timestamp_ms: int | str, app_cert_sn: str | None = None
) -> str:
    cert = f",app_cert_sn={app_cert_sn}" if app_cert_sn else ""
    return f"app_id={app_id}{cert},nonce={nonce},timestamp={timestamp_ms}"


def v3_sign_content(
    auth_string: str, http_method: str, request_uri: str, body: str | bytes,
    app_auth_token: str | None = None,
) -> bytes:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    content = f"{auth_string}\n{http_method.upper()}\n{request_uri}\n{text}\n"
    if app_auth_token:
        content += f"{app_auth_token}\n"
    return content.encode("utf-8")


def v3_sign(
    auth_string: str, http_method: str, request_uri: str, body: str | bytes,
    app_auth_token: str | None, private_key: KeyText | PrivateKey,
) -> str:
    """Base64 SHA256withRSA over the A7 content of one request."""
    return rsa_sign(
        v3_sign_content(auth_string, http_method, request_uri, body, app_auth_token), private_key
    )


def v3_authorization(
    app_id: str, http_method: str, request_uri: str, body: str | bytes,
    private_key: KeyText | PrivateKey, *, app_cert_sn: str | None = None,
    app_auth_token: str | None = None, nonce: str | None = None, timestamp_ms: int | None = None,
) -> str:
    """The whole ``Authorization`` header value, with a fresh nonce and millisecond timestamp."""
    auth = v3_auth_string(
        app_id, nonce or secrets.token_hex(16),
        timestamp_ms if timestamp_ms is not None else int(time.time() * 1000), app_cert_sn,
    )
    sign = v3_sign(auth, http_method, request_uri, body, app_auth_token, private_key)
    return f"{AUTH_SCHEME} {auth},sign={sign}"


def parse_v3_authorization(header: str) -> dict[str, str]:
    """Fields of an ``Authorization`` header; ``auth`` holds the exact signed auth string."""
    scheme, _, rest = header.partition(" ")
    if scheme != AUTH_SCHEME or ",sign=" not in rest:
        raise ValueError("not an ALIPAY-SHA256withRSA authorization")
    auth, _, sign = rest.rpartition(",sign=")
    fields = dict(part.split("=", 1) for part in auth.split(",") if "=" in part)
    fields["auth"] = auth
    fields["sign"] = sign
    return fields


def v3_response_content(timestamp: str, nonce: str, body: str | bytes) -> bytes:
    raw = body if isinstance(body, bytes) else body.encode("utf-8")
    return f"{timestamp}\n{nonce}\n".encode() + raw + b"\n"


def v3_verify(
    timestamp: str, nonce: str, body: str | bytes, signature: str, public_key: KeyText | PublicKey
) -> bool:
    """Check a v3 response's ``alipay-signature`` over ``timestamp\\nnonce\\nbody\\n``."""
    return rsa_verify(v3_response_content(timestamp, nonce, body), signature, public_key)


def v3_response_signature(
    timestamp: str, nonce: str, body: str | bytes, private_key: KeyText | PrivateKey
) -> str:
    return rsa_sign(v3_response_content(timestamp, nonce, body), private_key)
