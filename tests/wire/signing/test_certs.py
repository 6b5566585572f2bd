"""Certificate SNs against the shared vectors (PROTOCOL A6)."""

import json
from pathlib import Path

import pytest

from litellm_alipay.errors import KeyFormatError
from litellm_alipay.wire.signing import CertKeyRing, cert_sn, load_public_key, root_cert_sn

# <repo>/tests/wire/signing/test_certs.py -> parents[2] is <repo>/tests (fixtures/: see conftest.py).
SHARED = Path(__file__).resolve().parents[2]
VECTORS_FILE = SHARED / "fixtures" / "alipay-certs" / "cert_sn_vectors.json"


def _vectors() -> list[dict]:
    # Collected at import time: a missing fixture must fail the run, not silently collect nothing.
    if not VECTORS_FILE.is_file():
        pytest.fail(f"{VECTORS_FILE} is missing (tests/fixtures/alipay-certs)", pytrace=False)
    return json.loads(VECTORS_FILE.read_text(encoding="utf-8"))["cert_sn_vectors"]


VECTORS = _vectors()
SN_FUNCTIONS = {"cert_sn": cert_sn, "root_cert_sn": root_cert_sn}


def test_vectors_cover_both_kinds():
    kinds = {v["kind"] for v in VECTORS}
    assert kinds == {"cert_sn", "root_cert_sn"}
    assert len(VECTORS) >= 9


@pytest.mark.parametrize("vector", VECTORS, ids=[v["id"] for v in VECTORS])
def test_sn_matches_vector(vector):
    pem = vector["pem"]
    expected = vector["expected_sn"]
    assert SN_FUNCTIONS[vector["kind"]](pem) == expected
    assert SN_FUNCTIONS[vector["kind"]](pem.encode()) == expected


@pytest.mark.parametrize("name", ["alipayCertPublicKey_RSA2.crt", "appCertPublicKey_2021001161683774.crt"])
def test_fixture_files_agree_with_vectors(name, shared_dir: Path):
    text = (shared_dir / "fixtures" / "alipay-certs" / name).read_text()
    vector = next(v for v in VECTORS if v["file"].endswith("/" + name))
    assert cert_sn(text) == vector["expected_sn"]
    load_public_key(text)  # a certificate is an accepted public-key form


def test_root_bundle_file_skips_non_rsa_certificates(shared_dir: Path):
    text = (shared_dir / "fixtures" / "alipay-certs" / "alipayRootCert.crt").read_text()
    assert text.count("BEGIN CERTIFICATE") > 2  # the bundle holds more than the two RSA-signed roots
    assert root_cert_sn(text) == "687b59193f3f462dd5336e5abf83c5d8_02941eef3187dddf3d3b83462e1dfcf6"


def test_key_ring_indexes_by_sn(shared_dir: Path):
    text = (shared_dir / "fixtures" / "alipay-certs" / "alipayCertPublicKey_RSA2.crt").read_text()
    ring = CertKeyRing([text])
    assert "7513daaaa48aa3ba2e4018d84402479c" in ring
    assert ring("7513daaaa48aa3ba2e4018d84402479c").key_size >= 2048


@pytest.mark.parametrize(
    "text", ["", "not a certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"]
)
def test_bad_certificates_raise_key_format_error(text):
    with pytest.raises(KeyFormatError):
        cert_sn(text)
    with pytest.raises(KeyFormatError):
        root_cert_sn(text)
