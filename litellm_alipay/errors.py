"""The one error tree of litellm-alipay.

Everything this package raises on its own account derives from ``AlipayError``. Errors that LiteLLM's
Router must act on (fallbacks, cooldowns, retries) are raised as LiteLLM's own exception classes by
``to_litellm_error`` so the Router needs no knowledge of Alipay; they carry ``code``, ``sub_code`` and
``trace_id`` as attributes. No message built here ever contains a key, a ``sign`` or a token.

    AlipayError
    ├── ConfigurationError      a setting is missing or malformed (names the setting)
    │   └── KeyFormatError      a key or certificate cannot be read (names the key, never echoes it)
    ├── SignatureError          a response or request signature does not verify
    ├── ProtocolError           a body that is not the protocol (no node, bad JSON, stream without sign)
    └── DataResidencyError      a request that must not leave its region
"""

from __future__ import annotations


class AlipayError(Exception):
    """Base of every error this package defines itself."""


class ConfigurationError(AlipayError, ValueError):
    """A setting is missing or malformed; ``setting`` names it."""

    def __init__(self, setting: str, problem: str) -> None:
        self.setting = setting
        super().__init__(f"{setting}: {problem}")


class KeyFormatError(ConfigurationError):
    """A key or certificate could not be parsed. The message names the key, never its text."""


class SignatureError(AlipayError):
    """A signature failed to verify, or the signed part of a body could not be found."""


class ProtocolError(AlipayError):
    """The peer sent something that is not the Alipay protocol."""


class DataResidencyError(AlipayError):
    """A request marked as from a guarded region without consent was refused before sending."""


class QuotaExceededError(AlipayError):
    """The client-side rate limiter cannot fit this request within its remaining time budget.

    Raised before anything is sent, and without booking a slot, so the caller may fail over at once
    instead of waiting out a quota the request cannot meet anyway. ``retry_after`` is the wait (seconds)
    the request would have needed; the gateway maps this error to ``litellm.RateLimitError`` so the
    Router cools the deployment down or falls back.
    """

    def __init__(self, key: str, retry_after: float, max_wait: float) -> None:
        self.key = key
        self.retry_after = retry_after
        self.max_wait = max_wait
        super().__init__(
            f"client-side quota for {key!r} exhausted: next slot in {retry_after:.3f}s, "
            f"budget {max_wait:.3f}s"
        )


class CircuitOpenError(AlipayError):
    """The circuit breaker for this tenant is open (or its single half-open trial is busy).

    Raised before sending so a failing gateway is not hammered and callers fail fast; ``retry_after``
    is a hint in seconds. The gateway maps this error to ``litellm.ServiceUnavailableError``.
    """

    def __init__(self, key: str, retry_after: float) -> None:
        self.key = key
        self.retry_after = retry_after
        super().__init__(f"circuit open for {key!r}; retry in {retry_after:.3f}s")
