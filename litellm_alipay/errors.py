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
