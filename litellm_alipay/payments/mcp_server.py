"""``litellm-alipay mcp``: the payment toolkit as an MCP server (stdio, or streamable HTTP on loopback).

Why the low-level ``mcp.server.lowlevel.Server`` and not ``MCPServer``'s decorators: the tools' input
schemas already exist (``tools.SPECS``, the same ones offered to models through LiteLLM), so they are
served as they are instead of being re-derived from Python signatures. Every call goes through
``PaymentTools.aexecute``: policy, caps, confirmation, at-most-once, reconciliation and audit are the
toolkit's, unchanged.

The idempotency key of a call comes from the MCP request, never from the model's arguments: the
client's ``_meta.idempotency_key`` (send the same one when you retry), else the transport session and
the JSON-RPC request id (one key per tools/call request: a client that retries a call with a new
request id and no key is a new logical request).

Settings come from the provider's ``ALIPAY_*`` environment; Alipay's official server's ``AP_*`` names
are read too (``official_env``), so its users switch by changing the command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from .audit import AuditLog
from .policy import ACTIONS, POLICY_ENV, READ_ONLY, PaymentPolicy
from .tools import SPECS, PaymentTools

SERVER_NAME = "alipay-payments"
IDEMPOTENCY_META_KEY = "idempotency_key"
MCP_READY = "alipay MCP server ready on"
AUDIT_ENV = "ALIPAY_AUDIT_LOG"
#: "true": a money-moving call without the client's ``_meta.idempotency_key`` is refused, not keyed per call
REQUIRE_KEY_ENV = "ALIPAY_MCP_REQUIRE_IDEMPOTENCY_KEY"

#: Alipay's official server (``@alipay/mcp-server-alipay``): its tool names, short and full -> our action
OFFICIAL_TOOLS: dict[str, str] = {
    "mobilePay": "create_payment", "create-mobile-alipay-payment": "create_payment",
    "webPagePay": "create_payment", "create-web-page-alipay-payment": "create_payment",
    "queryPay": "query_payment", "query-alipay-payment": "query_payment",
    "refundPay": "refund", "refund-alipay-payment": "refund",
    "refundQuery": "query_refund", "query-alipay-refund": "query_refund",
}
#: the official server's settings -> ours (``AP_SELECT_TOOLS``, ``AP_CURRENT_ENV`` are translated)
OFFICIAL_ENV = {
    "AP_APP_ID": "ALIPAY_APP_ID", "AP_APP_KEY": "ALIPAY_APP_PRIVATE_KEY", "AP_PUB_KEY": "ALIPAY_PUBLIC_KEY",
    "AP_ENCRYPTION_ALGO": "ALIPAY_SIGN_TYPE", "AP_INVOKE_AUTH_TOKEN": "ALIPAY_APP_AUTH_TOKEN",
}

_OUTPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "method": {"type": "string", "description": "The Alipay method behind the tool."},
        "result": {"type": "string",
                   "enum": ["succeeded", "failed", "retry_same_id", "needs_confirmation", "refused"]},
        "explanation": {"type": "string"},
        "proposal": {"type": "boolean"},
        **{name: {"type": "string"} for name in (
            "code", "sub_code", "sub_msg", "trade_no", "out_trade_no", "trade_status", "total_amount",
            "fund_change", "refund_fee", "refund_amount", "refund_status", "out_request_no", "qr_code",
            "bill_download_url", "setting", "amount")},
    },
    "required": ["result", "explanation"],
    "additionalProperties": True,
}


def official_env(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with the official server's ``AP_*`` settings translated to ``ALIPAY_*`` (ours win).

    ``AP_SELECT_TOOLS`` (``all`` or short/full tool names) enables those actions: naming a
    money-moving tool there is the operator's explicit choice, as in the official server."""
    out = dict(env)
    for ours_from, ours in OFFICIAL_ENV.items():
        if env.get(ours_from) and not env.get(ours):
            out[ours] = env[ours_from]
    if env.get("AP_CURRENT_ENV") and not env.get("ALIPAY_SANDBOX"):
        out["ALIPAY_SANDBOX"] = "true" if env["AP_CURRENT_ENV"].strip().lower() == "sandbox" else "false"
    selected = env.get("AP_SELECT_TOOLS", "").strip()
    if selected:
        names = set(OFFICIAL_TOOLS) if selected.lower() == "all" else \
            {n.strip() for n in selected.split(",") if n.strip()}
        actions = set()
        for name in names:
            action = OFFICIAL_TOOLS.get(name) or (name if name in ACTIONS else None)
            if action is None:
                raise ConfigurationError("AP_SELECT_TOOLS", f"{name!r} is not a tool ({', '.join(OFFICIAL_TOOLS)})")
            actions.add(action)
        current = out.get(POLICY_ENV["enabled_actions"], "")
        out[POLICY_ENV["enabled_actions"]] = ",".join(sorted({*filter(None, current.split(",")), *actions}))
    return out


def toolkit_from_env(env: Mapping[str, str] | None = None, audit_log: str | None = None) -> Any:
    """The ``PaymentToolkit`` of the ``ALIPAY_*`` (and ``AP_*``) environment; ``ConfigurationError``
    names the setting at fault."""
    from ..settings import build_settings
    from .toolkit import PaymentToolkit

    merged = official_env(os.environ if env is None else env)
    audit_path = audit_log or merged.get(AUDIT_ENV)
    return PaymentToolkit(build_settings({}, env=merged), PaymentPolicy.from_env(merged),
                          audit=AuditLog(audit_path) if audit_path else None)


def annotations(action: str) -> dict[str, Any]:
    """MCP tool annotations: clients ask a person before a destructive call."""
    read_only = action in READ_ONLY
    return {"title": action.replace("_", " "), "read_only_hint": read_only,
            "destructive_hint": not read_only and action != "create_payment",
            # a refund is idempotent under one idempotency key; a query trivially so
            "idempotent_hint": read_only or action in ("refund", "close_payment"), "open_world_hint": True}


def idempotency_key(meta: Mapping[str, Any] | None, session: str, request_id: Any) -> str:
    """The client's ``_meta.idempotency_key``, else one derived from the session and the request id."""
    given = (meta or {}).get(IDEMPOTENCY_META_KEY)
    if isinstance(given, str) and given.strip():
        return given.strip()
    return f"mcp:{session}:{request_id}"


def build_server(tools: PaymentTools, *, name: str = SERVER_NAME, require_key: bool = False) -> Any:
    """The low-level MCP server over ``tools`` (the enabled actions only). ``require_key``: money-moving
    calls need the client's ``_meta.idempotency_key`` (a retry without one would be a new refund)."""
    import mcp.types as types
    from mcp.server.lowlevel import Server

    enabled = [n for n in SPECS if n in tools.toolkit.policy.enabled_actions]
    listed = [types.Tool(name=n, description=SPECS[n][0],
                         input_schema=tools_schema(n), output_schema=_OUTPUT_SCHEMA,
                         annotations=types.ToolAnnotations(**annotations(n))) for n in enabled]

    async def list_tools(ctx: Any, params: Any) -> Any:
        return types.ListToolsResult(tools=listed)

    async def call_tool(ctx: Any, params: Any) -> Any:
        name_ = params.name
        if name_ not in enabled:
            known = name_ in SPECS
            field = POLICY_ENV["enabled_actions"] if known else "name"
            why = "is not enabled on this server" if known else "is not a tool of this server"
            return _error(types, f"{field}: the tool {name_!r} {why} ({', '.join(enabled)})", field)
        client_key = (ctx.meta or {}).get(IDEMPOTENCY_META_KEY)
        if require_key and name_ not in READ_ONLY and not (isinstance(client_key, str) and client_key.strip()):
            return _error(types, f"_meta.{IDEMPOTENCY_META_KEY}: a money-moving call on this server needs the "
                                 "client's idempotency key in the request's _meta (the same on every retry)",
                          f"_meta.{IDEMPOTENCY_META_KEY}")
        session = _session_id(ctx.session)
        key = idempotency_key(ctx.meta, session, ctx.request_id)
        call = {"id": str(ctx.request_id), "function": {"name": name_, "arguments": dict(params.arguments or {})}}
        outcome = await tools.aexecute(call, idempotency_key=key, trace_id=None)
        content = outcome.content
        if content.get("result") == "refused":
            return _error(types, f"{content.get('setting')}: {content.get('explanation')}", content.get("setting"),
                          content)
        failed_input = content.get("result") == "failed" and not outcome.result.sent if outcome.result else False
        text = _render(content)
        if failed_input or _not_found(content):
            return types.CallToolResult(content=[types.TextContent(type="text", text=_field_text(content) + text)],
                                        structured_content=content, is_error=True)
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=content)

    return Server(name, version=_version(), on_list_tools=list_tools, on_call_tool=call_tool,
                  get_tool_input_schema=lambda n: tools_schema(n) if n in enabled else None)


def _session_id(session: Any) -> str:
    """A random id per MCP session (kept on the session object): request ids restart per session."""
    found = getattr(session, "_alipay_session_id", None)
    if found is None:
        found = os.urandom(8).hex()
        try:
            session._alipay_session_id = found
        except AttributeError:
            return found
    return str(found)


def tools_schema(name: str) -> dict[str, Any]:
    """The JSON input schema of one tool: the one offered to models (``tools.SPECS``)."""
    _, properties, required = SPECS[name]
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _not_found(content: Mapping[str, Any]) -> bool:
    return str(content.get("sub_code") or "").endswith("TRADE_NOT_EXIST")


def _field_text(content: Mapping[str, Any]) -> str:
    return "out_trade_no: no such trade. " if _not_found(content) else ""


def _render(content: Mapping[str, Any]) -> str:
    """The short text rendering beside the structured content."""
    keys = ("result", "trade_status", "total_amount", "refund_fee", "fund_change", "refund_status", "out_request_no")
    facts = ", ".join(f"{k}={content[k]}" for k in keys if content.get(k) not in (None, ""))
    return f"{content.get('method', '')}: {facts}. {content.get('explanation', '')}".strip()


def _error(types: Any, text: str, field: Any, structured: Mapping[str, Any] | None = None) -> Any:
    data = dict(structured or {"result": "refused", "explanation": text})
    data.setdefault("setting", field)
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=data,
                                is_error=True)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("litellm-alipay")
    except PackageNotFoundError:
        return "0"


async def serve_stdio(server: Any) -> None:
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def serve_http(server: Any, host: str, port: int) -> None:
    """Streamable HTTP at ``/mcp``; prints the URL once the socket listens (port 0 = a free port)."""
    import uvicorn

    from ..serving.listen import bind

    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigurationError("--host", "the MCP server listens on loopback only (it moves money)")
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    app = server.streamable_http_app(host=host)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", server_header=False)

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            print(f"{MCP_READY} http://{bound_host}:{bound_port}/mcp", flush=True)

    _Server(config).run(sockets=[sock])


def main(args: Any) -> int:
    """``litellm-alipay mcp [--http] [--host] [--port] [--audit-log]``."""
    import sys

    import anyio

    try:
        tools = PaymentTools(toolkit_from_env(audit_log=args.audit_log))
    except ConfigurationError as exc:
        print(f"mcp: {exc}", file=sys.stderr)
        return 2
    require = os.environ.get(REQUIRE_KEY_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    server = build_server(tools, require_key=require)
    if args.http:
        serve_http(server, args.host, args.port)
    else:
        anyio.run(serve_stdio, server)
    return 0


def add_parser(subparsers: Any) -> None:
    mcp = subparsers.add_parser("mcp", help="serve the payment actions as an MCP server (stdio, or --http)")
    mcp.add_argument("--http", action="store_true", help="streamable HTTP on a loopback port instead of stdio")
    mcp.add_argument("--host", default="127.0.0.1")
    mcp.add_argument("--port", type=int, default=8765, help="0 = a free port")
    mcp.add_argument("--audit-log", help=f"the audit trail (default: ${AUDIT_ENV})")
    mcp.set_defaults(func=main)


__all__ = ["OFFICIAL_TOOLS", "annotations", "build_server", "idempotency_key", "official_env", "toolkit_from_env"]
