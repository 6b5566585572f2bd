"""Fault injection: which rule, if any, hits a request. Decided once per request, reproducibly.

Kinds (``FaultRule.kind``):

- ``system_error``: a signed ``20000 SYSTEM_ERROR`` node (HTTP 200); nothing executed.
- ``http_5xx``: HTTP ``status`` (default 503) with a plain-text body; nothing executed.
- ``rate_limit``: HTTP 429, no reset header, signed ``40004 AI.RATE_LIMITED`` node.
- ``latency``: sleep ``seconds``, then answer normally.
- ``stall``: like latency, meant to exceed the client's timeout; the request is abandoned (not
  executed) when the client disconnects during the sleep.
- ``truncate``: ``Content-Length`` of the whole body, half of it sent, connection closed.
- ``bad_signature``: a normal answer whose signature does not verify (v2 ``sign``, v3
  ``alipay-signature``, or the stream's sign event).
- ``drop``: connection reset before anything is executed or sent.
- ``drop_after_actions``: the request is fully executed (payment actions included, stored for
  idempotency), then the connection is reset without a response.
- ``acq_system_error``: a trade method answered ``20000 ACQ.SYSTEM_ERROR``; nothing executed.
- ``acq_system_error_after``: the trade method executes, then ``ACQ.SYSTEM_ERROR`` is answered.
- ``stall_after_actions``: the trade method executes, then the answer is held ``seconds`` (past the
  client's timeout: committed, answer lost).
- ``cut_stream``: a streamed answer ends cleanly without its ``event: sign``.
- ``stream_error``: a streamed answer sends its first chunk, then ``event: error`` (20000
  SYSTEM_ERROR) and a valid sign event.
- ``trickle``: a streamed answer sends its first chunk, then an SSE comment every ``seconds`` (default
  0.2) — bytes keep arriving, the answer never does — until the client leaves (at most 120 s).
- ``slow_down``: Ant Ling's 503 "Slow Down" (only the ``ant-ling.chat`` route answers it specially;
  the gateway treats it as no fault).
- ``change_mind``: Ant Ling's model proposes a payment tool call with 0.50 less in its amount than the
  conversation asked for (a model with temperature > 0 that changes its mind on a retry).
"""

from __future__ import annotations

import random

from .config import FaultRule


class FaultInjector:
    """Ordered rules; the first rule that matches and fires wins."""

    def __init__(self, rules: list[FaultRule], seed: int = 0) -> None:
        self._seed = seed
        self.rules: list[FaultRule] = list(rules)
        self._rng = random.Random(seed)

    def set(self, rules: list[FaultRule]) -> None:
        self.rules = list(rules)
        self._rng = random.Random(self._seed)

    def clear(self) -> None:
        self.rules = []

    def pick(self, request_no: int, method: str, app_id: str, stream: bool = False) -> FaultRule | None:
        """The fault for this request, consuming one use of a ``next`` rule when it fires."""
        if not self.rules:
            return None
        for rule in self.rules:
            if rule.methods and method not in rule.methods:
                continue
            if rule.app_ids and app_id not in rule.app_ids:
                continue
            if rule.kind in ("cut_stream", "stream_error") and not stream:
                continue
            if rule.requests:
                if request_no not in rule.requests:
                    continue
            elif rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            if rule.next is not None:
                rule.next -= 1
                if rule.next <= 0:
                    self.rules.remove(rule)
            return rule
        return None
