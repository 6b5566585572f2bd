"""Certificate mode (PROTOCOL A6): serial numbers and the key ring picked by ``alipay_cert_sn``."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable

from cryptography import x509

from ...errors import KeyFormatError, SignatureError
from ._keys import KeyText, PublicKey, load_certificates

_RSA_SIG_OID_PREFIX = "1.2.840.113549.1.1"
#: One PEM certificate block; group 1 is its base64 body.
PEM_CERT = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def _sn(cert: x509.Certificate) -> str:
    return hashlib.md5(
        (cert.issuer.rfc4514_string() + str(cert.serial_number)).encode("utf-8")
    ).hexdigest()


def cert_sn(cert_pem: KeyText) -> str:
    """``app_cert_sn`` / ``alipay_cert_sn``: md5 of the issuer DN (RFC 4514) and the decimal serial."""
    return _sn(load_certificates(cert_pem, "certificate")[0])


def _der_item(der: bytes, i: int) -> tuple[int, int, int]:
    """``(tag, content start, content end)`` of the DER item at ``i``."""
    tag, length = der[i], der[i + 1]
    i += 2
    if length & 0x80:
        count = length & 0x7F
        length = int.from_bytes(der[i : i + count], "big")
        i += count
    return tag, i, i + length


def _signature_oid(der: bytes) -> str:
    """The outer signatureAlgorithm OID, read without parsing the rest: Alipay's root bundle holds
    an ECC certificate whose encoding ``cryptography`` refuses, and it only has to be skipped."""
    _, start, _ = _der_item(der, 0)  # Certificate
    _, _, tbs_end = _der_item(der, start)  # tbsCertificate
    _, alg_start, _ = _der_item(der, tbs_end)  # signatureAlgorithm
    _, oid_start, oid_end = _der_item(der, alg_start)
    raw = der[oid_start:oid_end]
    arcs = [raw[0] // 40, raw[0] % 40]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    return ".".join(map(str, arcs))


def root_cert_sn(bundle_pem: KeyText) -> str:
    """``alipay_root_cert_sn``: the SNs of the bundle's RSA-signed certificates joined by ``_``."""
    text = bundle_pem.decode("ascii", "ignore") if isinstance(bundle_pem, bytes) else bundle_pem
    sns = []
    for block in PEM_CERT.findall(text):
        der = base64.b64decode("".join(block.split()))
        try:
            if not _signature_oid(der).startswith(_RSA_SIG_OID_PREFIX):
                continue
        except IndexError:
            raise KeyFormatError("alipay_root_cert", "holds a certificate that is not DER") from None
        sns.append(_sn(load_certificates(der_to_pem(der), "alipay_root_cert")[0]))
    if not sns:
        raise KeyFormatError("alipay_root_cert", "holds no RSA-signed certificate")
    return "_".join(sns)


def der_to_pem(der: bytes) -> str:
    b64 = base64.b64encode(der).decode()
    lines = "\n".join(b64[i : i + 64] for i in range(0, len(b64), 64))
    return f"-----BEGIN CERTIFICATE-----\n{lines}\n-----END CERTIFICATE-----\n"


class CertKeyRing:
    """Alipay public-key certificates by SN, so each response is verified with the cert it names."""

    def __init__(self, certs_pem: Iterable[KeyText]) -> None:
        self._keys: dict[str, PublicKey] = {}
        self.default_sn: str | None = None
        for pem in certs_pem:
            for cert in load_certificates(pem, "alipay_public_cert"):
                sn = _sn(cert)
                self._keys[sn] = cert.public_key()  # type: ignore[assignment]
                self.default_sn = self.default_sn or sn

    def __call__(self, sn: str | None) -> PublicKey:
        if sn is None:
            if self.default_sn is None:
                raise SignatureError("no Alipay certificate is configured")
            return self._keys[self.default_sn]
        try:
            return self._keys[sn]
        except KeyError:
            raise SignatureError(f"response names alipay_cert_sn {sn} that is not configured") from None

    def __contains__(self, sn: object) -> bool:
        return sn in self._keys
