"""pytest fixtures for the emulator (registered as the ``pytest11`` entry point ``litellm_alipay``).

``alipay_emulator_process`` starts one emulator per session (key generation and start-up cost
about a second); ``alipay_emulator`` hands the same process to each test after a reset, so every
test starts with empty stats, no faults, an empty idempotency store and no nonces.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .process import EmulatorProcess


@pytest.fixture(scope="session")
def alipay_emulator_process() -> Iterator[EmulatorProcess]:
    """One emulator subprocess for the whole session, stopped at the end."""
    proc = EmulatorProcess()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def alipay_emulator(alipay_emulator_process: EmulatorProcess) -> Iterator[EmulatorProcess]:
    """The session's emulator, reset before the test."""
    alipay_emulator_process.reset()
    yield alipay_emulator_process
