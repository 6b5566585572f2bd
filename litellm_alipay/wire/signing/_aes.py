"""``biz_content`` encryption (PROTOCOL A9): AES-128-CBC, all-zero IV, PKCS#7, base64."""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from ...errors import ConfigurationError, SignatureError

_IV = bytes(16)


def _key(aes_key: str | bytes) -> bytes:
    try:
        raw = base64.b64decode(aes_key, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError("encrypt_key", "must be base64") from None
    if len(raw) not in (16, 24, 32):
        raise ConfigurationError("encrypt_key", "must decode to 16, 24 or 32 bytes")
    return raw


def aes_encrypt(plaintext: str, aes_key: str | bytes, charset: str = "utf-8") -> str:
    padder = padding.PKCS7(128).padder()
    data = padder.update(plaintext.encode(charset)) + padder.finalize()
    enc = Cipher(algorithms.AES(_key(aes_key)), modes.CBC(_IV)).encryptor()
    return base64.b64encode(enc.update(data) + enc.finalize()).decode()


def aes_decrypt(ciphertext: str, aes_key: str | bytes, charset: str = "utf-8") -> str:
    try:
        raw = base64.b64decode(ciphertext, validate=True)
        dec = Cipher(algorithms.AES(_key(aes_key)), modes.CBC(_IV)).decryptor()
        padded = dec.update(raw) + dec.finalize()
        unpadder = padding.PKCS7(128).unpadder()
        return (unpadder.update(padded) + unpadder.finalize()).decode(charset)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise SignatureError("encrypted content cannot be decrypted with the configured key") from None
