"""Shared fixtures of the signer's conformance tests: one app key and one "Alipay" key per session."""

from pathlib import Path

import pytest

from litellm_alipay.wire.signing import generate_private_key, private_key_forms

# <repo>/tests/wire/signing/conftest.py -> parents[3] is the repo root; CI clones shared/ beside the repo.
SHARED = (Path(__file__).resolve().parents[3] / "../shared").resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.fail(f"shared fixtures directory {SHARED} is missing (expected beside the repository)")
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
