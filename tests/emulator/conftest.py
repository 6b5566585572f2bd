from __future__ import annotations

from collections.abc import Iterator

import pytest

from litellm_alipay.emulator.process import EmulatorProcess

from .helpers import Client


@pytest.fixture
def client(alipay_emulator: EmulatorProcess) -> Iterator[Client]:
    c = Client(alipay_emulator)
    yield c
    c.close()


@pytest.fixture
def cert_client(alipay_emulator: EmulatorProcess) -> Iterator[Client]:
    c = Client(alipay_emulator, cert=True)
    yield c
    c.close()
