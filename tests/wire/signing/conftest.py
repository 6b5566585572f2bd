"""Shared fixtures of the signer's conformance tests: one app key and one "Alipay" key per session."""

from pathlib import Path

import pytest

from litellm_alipay.wire.signing import generate_private_key, private_key_forms

# <repo>/tests/wire/signing/conftest.py -> parents[2] is <repo>/tests, which holds fixtures/alipay-certs: a copy of
# the project's shared fixtures (Alipay's public test certificates), so a clone alone runs the suite.
SHARED = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not (SHARED / "fixtures").is_dir():
        pytest.fail(f"fixtures directory {SHARED / 'fixtures'} is missing")
    return SHARED


@pytest.fixture(scope="session")
def app_key():
    return generate_private_key()


@pytest.fixture(scope="session")
def app_forms(app_key):
    return private_key_forms(app_key)


@pytest.fixture(scope="session")
def alipay_key():
    return generate_private_key()


@pytest.fixture(scope="session")
def alipay_forms(alipay_key):
    return private_key_forms(alipay_key)
