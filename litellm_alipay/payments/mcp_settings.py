"""The MCP server's own settings (``ALIPAY_MCP_*``), validated once at start-up.

An MCP server has no proxy key to tell its callers apart: whoever reaches it (the process that spawned it
over stdio, anything on loopback over HTTP, the LiteLLM gateway on behalf of every key it admits) is one
caller. ``caller`` names that caller: money-moving calls are keyed under it (two servers with different
callers never share an action) and the per-caller daily cap counts it. Run one server per trusted caller.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import ConfigurationError

#: setting -> environment variable
MCP_ENV = {"caller": "ALIPAY_MCP_CALLER", "confirm_timeout": "ALIPAY_MCP_CONFIRM_TIMEOUT"}
DEFAULT_CALLER = "alipay-payments"
_CALLER = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")


@dataclass(frozen=True)
class McpServerSettings:
    """``caller``: who owns this server's idempotency keys; ``confirm_timeout``: seconds a person has to
    answer a refund's confirmation (elicitation) before it is refused, nothing sent."""

    caller: str = DEFAULT_CALLER
    confirm_timeout: float = 300.0

    def __post_init__(self) -> None:
        if not _CALLER.match(self.caller):
            raise ConfigurationError(MCP_ENV["caller"], "must be 1-64 characters of letters, digits and ._:@- "
                                                        f"(got {self.caller!r})")
        if not 1 <= self.confirm_timeout <= 3600:
            raise ConfigurationError(MCP_ENV["confirm_timeout"], "must be between 1 and 3600 seconds")

    @property
    def scope(self) -> str:
        """The idempotency scope of every money-moving call on this server (``<caller>|<tenant>``)."""
        return f"mcp:{self.caller}|-"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> McpServerSettings:
        env = os.environ if env is None else env
        timeout = env.get(MCP_ENV["confirm_timeout"], "").strip()
        try:
            seconds = float(timeout) if timeout else cls.confirm_timeout
        except ValueError:
            raise ConfigurationError(MCP_ENV["confirm_timeout"], f"is not a number of seconds: {timeout!r}") from None
        return cls(caller=env.get(MCP_ENV["caller"], "").strip() or DEFAULT_CALLER, confirm_timeout=seconds)
