"""The gateway's business core shared by the v2, v3 and OpenAI-compatible front ends.

It runs a method against the deterministic model, executes payment actions through the idempotency
store and builds the response node; the front ends only differ in how they authenticate the request
and how they wrap and sign the answer.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..payments import wire as payment_wire
from ..payments.agent import delegation_wire
from ..wire import protocol
from ..wire.signing import rsa_sign
from . import a2m, model
from .config import EmulatorConfig
from .delegations import DelegationBook
from .faults import FaultInjector
from .state import State
from .trades import TradeBook

MSGS = {
    "10000": "Success",
    "20000": "Service Currently Unavailable",
    "20001": "Insufficient Token Permissions",
    "40001": "Missing Required Arguments",
    "40002": "Invalid Arguments",
    "40004": "Business Failed",
    "40006": "Insufficient Permissions",
}
KNOWN_METHODS = frozenset({protocol.METHOD_CHAT, protocol.METHOD_EMBED, protocol.METHOD_OAUTH,
                           *payment_wire.SERVER_METHODS, *a2m.METHODS, *delegation_wire.SERVER_METHODS})


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class Refusal(Exception):
    """A request refused with a result code; the front end decides the envelope."""

    code: str
    sub_code: str
    sub_msg: str
    http_status: int = 200

    def node(self, trace_id: str | None = None) -> dict[str, Any]:
        node: dict[str, Any] = {
            "code": self.code, "msg": MSGS.get(self.code, "Error"),
            "sub_code": self.sub_code, "sub_msg": self.sub_msg,
        }
        if trace_id:
            node["trace_id"] = trace_id
        return node


def invalid(sub_code: str, sub_msg: str, code: str = "40002") -> Refusal:
    return Refusal(code, sub_code, sub_msg)


@dataclass
class ChatAnswer:
    """A chat outcome, kept whole so it can be sent as one node or as a stream of chunks."""

    trace_id: str
    model: str
    created: int
    result: model.ChatResult
    actions: list[dict[str, Any]]

    def node(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.result.content}
        if self.result.tool_calls:
            message["tool_calls"] = self.result.tool_calls
        return {
            "code": "10000", "msg": "Success", "trace_id": self.trace_id, "model": self.model,
            "created": self.created,
            "choices": [{"index": 0, "message": message, "finish_reason": self.result.finish_reason}],
            "usage": self.result.usage, "actions": self.actions,
        }

    def chunks(self) -> list[str]:
        """B3 chunk payloads (JSON text), the last one with usage and actions."""
        base = {"trace_id": self.trace_id, "model": self.model, "created": self.created}
        out = []
        if self.result.tool_calls:
            calls = [{"index": i, **c} for i, c in enumerate(self.result.tool_calls)]
            delta: dict[str, Any] = {"role": "assistant", "tool_calls": calls}
            out.append(dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        else:
            pieces = model.words(self.result.content or "")
            for i, piece in enumerate(pieces):
                delta = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
                out.append(dumps({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}))
        last = {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": self.result.finish_reason}],
                "usage": self.result.usage, "actions": self.actions}
        out.append(dumps(last))
        return out


class Emulator:
    """Configuration, state and fault rules of one emulator process, plus the method runners."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.key = config.alipay_private_key
        self.state = State(config.timestamp_tolerance_seconds)
        self.faults = FaultInjector(config.faults, config.seed)
        self.trades = TradeBook(self.key, lambda app_id: config.apps[app_id].sign_type, config.notify_delay_scale)
        self.delegations = DelegationBook(self.trades, lambda app_id: getattr(config.apps.get(app_id), "public_key",
                                                                                  None))
        self._seed_trades()
        self.a2m = a2m.A2MBook(config)
        self._trace = itertools.count(1)
        self._trace_prefix = f"{os.getpid():x}{int(time.time()):x}"

    def trace_id(self) -> str:
        return f"{self._trace_prefix}{next(self._trace):010d}"

    def reset(self) -> None:
        self.state.reset()
        self.faults.clear()
        self.trades.reset()
        self.delegations.reset()
        self._seed_trades()
        self.a2m.reset()

    def _seed_trades(self) -> None:
        """The trades the emulator starts with (``--demo`` seeds a few); a reset returns to them."""
        for app_id, trade in self.config.seed_trades:
            self.trades.create(app_id, trade)

    # ---------------------------------------------------------------------------------- signing
    def sign(self, data: bytes, sign_type: str = "RSA2", corrupt: bool = False) -> str:
        """The gateway's signature; ``corrupt`` signs other bytes, for the bad_signature fault."""
        return rsa_sign(data + b"\x00" if corrupt else data, self.key, sign_type)

    # ---------------------------------------------------------------------------------- methods
    def check_auth_token(self, app_id: str, token: str | None, required: bool) -> None:
        if not token:
            if required:
                raise Refusal("20001", "aop.invalid-auth-token", "auth_token is required", 401)
            return
        problem = self.state.tokens.check_access(app_id, token)
        if problem == "aop.auth-token-time-out":
            raise Refusal("20001", problem, "auth_token has expired", 401)
        if problem:
            raise Refusal("20001", problem, "auth_token is not valid", 401)

    def run_chat(self, app_id: str, biz: Any, *, regulated: bool = True) -> ChatAnswer:
        """Answer a B1 request, executing its payment actions at most once per out_request_no."""
        cfg = self.config
        try:
            result = model.chat(biz, cfg.chat_models, cfg.max_context_chars, regulated=regulated)
            actions: list[dict[str, Any]] = []
            if result.intents:
                actions = self.state.idempotency.execute(
                    app_id, biz.get("out_request_no"), result.intents, self.state.stats,
                    model.limit_cents(biz.get("max_action_amount")), model.limit_cents(biz.get("max_total_amount")),
                )
                result = model.chat(
                    biz, cfg.chat_models, cfg.max_context_chars, model.action_summary(actions),
                    regulated=regulated,
                )
        except model.InvalidRequest as exc:
            raise Refusal("40002", "AI.INVALID_REQUEST", str(exc), 400) from None
        except model.ModelError as exc:
            raise Refusal(exc.code, exc.sub_code, exc.sub_msg, _STATUS.get(exc.sub_code, 400)) from None
        return ChatAnswer(self.trace_id(), biz["model"], int(time.time()), result, actions)

    def run_embed(self, biz: Any) -> dict[str, Any]:
        cfg = self.config
        try:
            data, usage = model.embed(biz, cfg.embed_models, cfg.embed_dimensions)
        except model.InvalidRequest as exc:
            raise Refusal("40002", "AI.INVALID_REQUEST", str(exc), 400) from None
        except model.ModelError as exc:
            raise Refusal(exc.code, exc.sub_code, exc.sub_msg, _STATUS.get(exc.sub_code, 400)) from None
        return {
            "code": "10000", "msg": "Success", "trace_id": self.trace_id(), "model": biz["model"],
            "data": data, "usage": usage,
        }

    def run_oauth(self, app_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        """A8: authorization_code (single-use codes) and refresh_token grants."""
        cfg, tokens = self.config, self.state.tokens
        grant = params.get("grant_type")
        if not grant:
            raise invalid("isv.missing-grant-type", "grant_type is required", "40001")
        if grant == "authorization_code":
            code = params.get("code")
            if not code:
                raise invalid("isv.missing-code", "code is required", "40001")
            if code.startswith("invalid") or (app_id, code) in tokens.used_codes:
                raise invalid("isv.code-invalid", "the authorization code is invalid or used")
            tokens.used_codes.add((app_id, code))
            user_id = tokens.user_id_for(code)
        elif grant == "refresh_token":
            token = tokens.refresh.get(params.get("refresh_token") or "")
            if token is None or token.app_id != app_id:
                raise invalid("isv.refresh-token-invalid", "the refresh token is invalid")
            if time.time() >= token.expires_at:
                raise invalid("isv.refresh-token-time-out", "the refresh token has expired")
            del tokens.refresh[params["refresh_token"]]
            user_id = token.user_id
        else:
            raise invalid("isv.grant-type-invalid", "grant_type must be authorization_code or refresh_token")
        issued = tokens.issue(app_id, user_id, cfg.token_expires_in, cfg.refresh_expires_in)
        return {"code": "10000", "msg": "Success", **issued}


#: HTTP statuses of business refusals on v3 (v2 always answers 200).
_STATUS = {
    "AI.MODEL_NOT_FOUND": 404,
    "AI.COMPLIANCE_REJECTED": 403,
    "AI.CONTEXT_LENGTH_EXCEEDED": 400,
}
