"""Key and certificate loading: PEM or the console's bare base64, parsed once and cached."""

from __future__ import annotations

import base64
import binascii
import functools
import re
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from ...errors import KeyFormatError

PrivateKey = rsa.RSAPrivateKey
PublicKey = rsa.RSAPublicKey
KeyText = str | bytes

_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----")


def _as_bytes(text: KeyText) -> bytes:
    return text.encode("ascii", "ignore") if isinstance(text, str) else bytes(text)


def _bare_der(data: bytes, what: str) -> bytes:
    compact = b"".join(data.split())
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise KeyFormatError(what, "is neither PEM nor bare base64") from None


def _der_or_none(data: bytes) -> bytes | None:
    try:
        return base64.b64decode(b"".join(data.split()), validate=True)
    except (binascii.Error, ValueError):
        return None


def _is_public_key(data: bytes) -> bool:
    """Whether ``data`` (that failed to load as a private key) is a public key: a common mix-up."""
    try:
        if _PEM_BLOCK.search(data):
            serialization.load_pem_public_key(data)
        else:
            der = _der_or_none(data)
            if not der:
                return False
            serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        return False
    return True


def _is_private_key(data: bytes) -> bool:
    """Whether ``data`` (that failed to load as a public key) is a private key."""
    try:
        if _PEM_BLOCK.search(data):
            serialization.load_pem_private_key(data, password=None)
        else:
            der = _der_or_none(data)
            if not der:
                return False
            serialization.load_der_private_key(der, password=None)
    except (ValueError, TypeError):
        return False
    return True


@functools.lru_cache(maxsize=64)
def _load_private(data: bytes, what: str) -> PrivateKey:
    try:
        if _PEM_BLOCK.search(data):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            # cryptography's DER loader reads both PKCS#8 and PKCS#1 (TraditionalOpenSSL).
            key = serialization.load_der_private_key(_bare_der(data, what), password=None)
    except KeyFormatError:
        raise
    except (ValueError, TypeError):
        raise _unreadable(what, _is_public_key(data), "holds a public key; the app's private key is needed here",
                          "expected an RSA private key as PEM or bare base64 (PKCS#1 or PKCS#8)") from None
    return _rsa(key, rsa.RSAPrivateKey, what, "private")


def _unreadable(what: str, other_kind: bool, other_kind_text: str, expected_text: str) -> KeyFormatError:
    """Why a key did not load: the other half of a pair given by mistake, or not a key at all."""
    return KeyFormatError(what, other_kind_text if other_kind else expected_text)


def _rsa(key: Any, kind: type, what: str, half: str) -> Any:
    if not isinstance(key, kind):
        raise KeyFormatError(what, f"is not an RSA {half} key")
    return key


def load_private_key(text: KeyText | PrivateKey, what: str = "app_private_key") -> PrivateKey:
    """An RSA private key from PEM or bare base64 (PKCS#1 or PKCS#8); ``what`` names it in errors."""
    if isinstance(text, rsa.RSAPrivateKey):
        return text
    return _load_private(_as_bytes(text), what)


@functools.lru_cache(maxsize=64)
def _load_public(data: bytes, what: str) -> PublicKey:
    match = _PEM_BLOCK.search(data)
    try:
        if match and b"CERTIFICATE" in match.group(1):
            key = x509.load_pem_x509_certificate(data).public_key()
        elif match:
            key = serialization.load_pem_public_key(data)
        else:
            der = _bare_der(data, what)
            try:
                key = serialization.load_der_public_key(der)
            except ValueError:
                key = x509.load_der_x509_certificate(der).public_key()
    except KeyFormatError:
        raise
    except (ValueError, TypeError):
        raise _unreadable(what, _is_private_key(data),
                          "holds a private key; a public key (or certificate) is needed here",
                          "expected an RSA public key (SubjectPublicKeyInfo) or X.509 certificate, "
                          "as PEM or bare base64") from None
    return _rsa(key, rsa.RSAPublicKey, what, "public")


def load_public_key(text: KeyText | PublicKey, what: str = "alipay_public_key") -> PublicKey:
    """An RSA public key from PEM/bare-base64 SubjectPublicKeyInfo or an X.509 certificate."""
    if isinstance(text, rsa.RSAPublicKey):
        return text
    return _load_public(_as_bytes(text), what)


def load_certificate(text: KeyText, what: str = "certificate") -> x509.Certificate:
    return load_certificates(text, what)[0]


@functools.lru_cache(maxsize=64)
def _load_certs(data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    try:
        if _PEM_BLOCK.search(data):
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(_bare_der(data, what))]
    except KeyFormatError:
        raise
    except ValueError:
        raise KeyFormatError(what, "expected X.509 certificate(s) in PEM") from None
    return tuple(certs)


def load_certificates(text: KeyText, what: str = "certificate") -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle, blank lines between them or not."""
    return _load_certs(_as_bytes(text), what)


def check_key_pair(private_key: PrivateKey, public_key: PublicKey) -> bool:
    """True when the public key is the private key's own half."""
    return private_key.public_key().public_numbers() == public_key.public_numbers()


def private_key_forms(key: PrivateKey) -> dict[str, str]:
    """The forms the Alipay console uses: bare base64 PKCS#1 and PKCS#8, PEM, and the public key."""
    pkcs1 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pkcs8 = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    pub = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    pub_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return {
        "private_pkcs1": base64.b64encode(pkcs1).decode(),
        "private_pkcs8": base64.b64encode(pkcs8).decode(),
        "private_pem": pem,
        "public": base64.b64encode(pub).decode(),
        "public_pem": pub_pem,
    }


def generate_private_key() -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)
