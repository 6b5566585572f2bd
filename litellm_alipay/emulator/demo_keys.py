"""Throwaway keys for ``--demo``: an "Alipay" key pair, an app key pair, and a test CA that issues
the app certificate and the Alipay public-key certificate for certificate mode (A6).

Nothing here is secret: the keys exist for one emulator run (or one test session).
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from ..wire.signing import generate_private_key

DEMO_APP_ID = "2021000000000001"
DEMO_CERT_APP_ID = "2021000000000002"


@dataclass(frozen=True)
class DemoKeys:
    """Paths of the files written; settings() is what a client needs."""

    app_private_key: Path
    app_public_key: Path
    alipay_private_key: Path
    alipay_public_key: Path
    app_cert: Path
    alipay_cert: Path
    alipay_root_cert: Path

    def settings(self, gateway_url: str) -> dict[str, str]:
        return {
            "ALIPAY_APP_ID": DEMO_APP_ID,
            "ALIPAY_APP_PRIVATE_KEY": str(self.app_private_key),
            "ALIPAY_PUBLIC_KEY": str(self.alipay_public_key),
            "ALIPAY_GATEWAY_URL": gateway_url,
            "ALIPAY_SIGN_TYPE": "RSA2",
            "ALIPAY_CERT_APP_ID": DEMO_CERT_APP_ID,
            "ALIPAY_CERT_APP_PRIVATE_KEY": str(self.app_private_key),
            "ALIPAY_CERT_APP_CERT": str(self.app_cert),
            "ALIPAY_CERT_PUBLIC_CERT": str(self.alipay_cert),
            "ALIPAY_CERT_ROOT_CERT": str(self.alipay_root_cert),
        }


def _pem_private(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _pem_public(key: rsa.RSAPublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "litellm-alipay emulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _cert(subject: str, public: rsa.RSAPublicKey, issuer: x509.Name, signer: rsa.RSAPrivateKey,
          serial: int, ca: bool) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject)).issuer_name(issuer).public_key(public)
        .serial_number(serial)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signer, hashes.SHA256())
    )


def _write(path: Path, data: bytes, secret: bool) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if secret else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_demo_keys(directory: str | os.PathLike[str]) -> DemoKeys:
    """Generate everything and write it to ``directory`` (created, mode 700). The paths are absolute, so
    the settings printed and written to ``--env-file`` work from any working directory."""
    out = Path(directory).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    alipay, app, ca = generate_private_key(), generate_private_key(), generate_private_key()
    ca_name = _name("litellm-alipay emulator test root CA")
    root = _cert("litellm-alipay emulator test root CA", ca.public_key(), ca_name, ca, 1000, True)
    app_cert = _cert(DEMO_CERT_APP_ID, app.public_key(), ca_name, ca, 1001, False)
    alipay_cert = _cert("Alipay (emulator)", alipay.public_key(), ca_name, ca, 1002, False)
    pem = serialization.Encoding.PEM
    keys = DemoKeys(
        app_private_key=out / "app_private_key.pem",
        app_public_key=out / "app_public_key.pem",
        alipay_private_key=out / "alipay_private_key.pem",
        alipay_public_key=out / "alipay_public_key.pem",
        app_cert=out / "app_cert.pem",
        alipay_cert=out / "alipay_cert.pem",
        alipay_root_cert=out / "alipay_root_cert.pem",
    )
    _write(keys.app_private_key, _pem_private(app), True)
    _write(keys.app_public_key, _pem_public(app.public_key()), False)
    _write(keys.alipay_private_key, _pem_private(alipay), True)
    _write(keys.alipay_public_key, _pem_public(alipay.public_key()), False)
    _write(keys.app_cert, app_cert.public_bytes(pem), False)
    _write(keys.alipay_cert, alipay_cert.public_bytes(pem), False)
    _write(keys.alipay_root_cert, root.public_bytes(pem), False)
    return keys
