"""``litellm-alipay mcp``: the payment toolkit as an MCP server (stdio, or streamable HTTP on loopback).

Why the low-level ``mcp.server.lowlevel.Server`` and not ``MCPServer``'s decorators: the tools' input
schemas already exist (``tools.SPECS``, the same ones offered to models through LiteLLM), so they are
served as they are instead of being re-derived from Python signatures. Every call goes through
``PaymentTools.aexecute``: policy, caps, confirmation, at-most-once, reconciliation and audit are the
toolkit's, unchanged.

The idempotency key of a money-moving call (``KEYED``) is the caller's, never made up here: the tool's
``idempotency_key`` argument, which the input schema declares and requires — the one channel that reaches
this server through every door, LiteLLM's MCP gateway included (it forwards a ``tools/call``'s arguments and
drops its ``_meta``: 1.108.7 and 1.110.x alike) — or, on a direct connection, the request's
``_meta.idempotency_key``. No key, no refund: a tool error that says how to pass one. Keys are scoped to the
server's caller (``mcp_settings``): an MCP server has no proxy key. The toolkit's OpenAI-format tools
(``tools.SPECS``, offered to models inside ``alipay/`` calls) never get the argument: there the key is the
request's.

With ``payments.confirm`` a refund runs only once a person accepts it through MCP elicitation
(``mcp_confirm``); a client without elicitation is refused — the two-phase token cannot be handed to a
person through a tool result the model reads.

Settings come from the provider's ``ALIPAY_*`` environment; Alipay's official server's ``AP_*`` names
are read too (``official_env``), so its users switch by changing the command.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..errors import AlipayError, ConfigurationError
from .audit import AuditLog
from .mcp_confirm import Answer, ask_person
from .mcp_settings import MCP_ENV, McpServerSettings
from .policy import ACTIONS, POLICY_ENV, READ_ONLY, PaymentPolicy, PolicyError, setting_name
from .tools import SPECS, PaymentTools, ToolOutcome

SERVER_NAME = "alipay-payments"
IDEMPOTENCY_KEY = "idempotency_key"  # the tool argument, and the ``_meta`` key on a direct connection
MCP_READY = "alipay MCP server ready on"
AUDIT_ENV = "ALIPAY_AUDIT_LOG"
#: the tools whose money movement the ledger keys by the caller's idempotency key (a cancel moves money
#: too, but Alipay cancels a trade once: a repeat only reports it; close and create move none)
#: the tools that move (or commit to moving) money under a caller's key: a refund, a cancel of a paid trade,
#: a mandate proposed and a payment under it
KEYED = frozenset({"refund", "cancel_payment", "propose_mandate", "pay_under_mandate"})
_KEY_SCHEMA: dict[str, Any] = {
    "type": "string", "minLength": 8, "maxLength": 255, "pattern": r"^[\x21-\x7e]+$",
    "description": "Your id for this one action (8-255 printable ASCII), e.g. the support ticket's refund id. "
                   "Send the same key on every retry: one key acts once. A new refund or payment needs a new "
                   "key; a key already used with other arguments is refused.",
}
_NO_KEY = (f"{IDEMPOTENCY_KEY}: a money-moving tool needs the caller's idempotency key, the same on every retry "
           f"of one refund: pass it as the tool argument {IDEMPOTENCY_KEY!r} (8-255 printable ASCII, e.g. the "
           f"ticket's refund id), or in the request's _meta.{IDEMPOTENCY_KEY} on a direct connection. Nothing "
           "was sent.")

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
    """MCP tool annotations: clients ask a person before a destructive call, and retry freely only an
    idempotent one. ``idempotent_hint`` holds where the same arguments cannot move money again: queries;
    a refund, a cancel, a mandate proposed or a payment under it, because their arguments carry the
    required idempotency key (one key, one action: the ledger and Alipay's request numbers see to it);
    cancelling a mandate (once); close and create (no money; a repeat finds the order closed, or gets the
    same QR code). Proposing a mandate moves nothing (the person approves it in the Alipay app)."""
    read_only = action in READ_ONLY
    return {"title": action.replace("_", " "), "read_only_hint": read_only,
            "destructive_hint": not read_only and action not in ("create_payment", "propose_mandate"),
            "idempotent_hint": True, "open_world_hint": True}


def idempotency_key(arguments: Mapping[str, Any], meta: Mapping[str, Any] | None) -> str | None:
    """The caller's key of a call: the ``idempotency_key`` argument, else ``_meta.idempotency_key``;
    ``None`` when neither is given. Both given and different: ``ConfigurationError``."""
    given = [v for v in (arguments.get(IDEMPOTENCY_KEY), (meta or {}).get(IDEMPOTENCY_KEY)) if v not in (None, "")]
    if len(given) == 2 and given[0] != given[1]:
        raise ConfigurationError(IDEMPOTENCY_KEY, f"the argument and _meta.{IDEMPOTENCY_KEY} differ; send one key")
    return str(given[0]) if given else None


def require_daily_cap(policy: PaymentPolicy) -> None:
    """An MCP server that can refund has a daily cap (per app, or per caller): agents retry and loop, and
    a per-call cap alone lets a loop split any amount across calls. ``ConfigurationError`` otherwise."""
    if KEYED & policy.enabled_actions and policy.refund_cap_per_day is None \
            and policy.refund_cap_per_key_per_day is None:
        raise ConfigurationError(setting_name("refund_cap_per_day"), "an MCP server with refunds enabled needs a "
                                 f"daily cap: set it (or {POLICY_ENV['refund_cap_per_key_per_day']})")


def build_server(tools: PaymentTools, *, name: str = SERVER_NAME, settings: McpServerSettings | None = None) -> Any:
    """The low-level MCP server over ``tools`` (the enabled actions only). Money-moving calls need the
    caller's idempotency key and run under ``settings.scope``; with ``payments.confirm`` a person accepts
    each refund through elicitation first."""
    import mcp.types as types
    from mcp.server.lowlevel import Server

    settings = settings or McpServerSettings()

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
        arguments = dict(params.arguments or {})
        key: str | None = None
        if name_ in KEYED:
            try:
                key = idempotency_key(arguments, ctx.meta)
            except ConfigurationError as exc:
                return _error(types, str(exc), exc.setting)
            if key is None:
                return _error(types, _NO_KEY, IDEMPOTENCY_KEY)
        arguments.pop(IDEMPOTENCY_KEY, None)
        call = {"id": str(ctx.request_id), "function": {"name": name_, "arguments": arguments}}
        try:
            outcome = await tools.aexecute(call, idempotency_key=key, trace_id=None, scope=settings.scope)
            if outcome.proposal is not None:
                outcome = await _confirmed(tools, outcome, ctx, settings)
        except AlipayError as exc:  # e.g. LedgerUnavailableError: the money ledger cannot be reached
            return _error(types, f"{type(exc).__name__}: {exc} The outcome is not recorded: retry with the same "
                                 "key (a retry is answered from the ledger or Alipay's refund query under the same "
                                 "request number, never a second refund).", getattr(exc, "setting", None) or "ledger")
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


async def _confirmed(tools: PaymentTools, outcome: ToolOutcome, ctx: Any, settings: McpServerSettings) -> ToolOutcome:
    """A proposal executed once a person accepts it through elicitation; else a refusal (nothing sent)."""
    proposal = outcome.proposal
    assert proposal is not None
    answer = await ask_person(ctx.session, ctx.request_id, proposal, settings.confirm_timeout)
    if answer is Answer.ACCEPTED:
        try:
            result = await tools.toolkit.aconfirm(proposal.token)
        except (PolicyError, ConfigurationError) as exc:  # e.g. a cap reached meanwhile: nothing sent
            return ToolOutcome(outcome.tool_call_id, outcome.name,
                               {"result": "refused", "setting": exc.setting, "explanation": str(exc)})
        return ToolOutcome(outcome.tool_call_id, outcome.name, result.to_dict(), result=result)
    audit = tools.toolkit.audit
    if audit is not None:
        audit.write("confirmation", app=tools.toolkit.settings.app_id, tenant=proposal.tenant, action="refund",
                    method=ACTIONS["refund"], args=proposal.args, out_trade_no=proposal.args.get("out_trade_no"),
                    trace_id=proposal.trace_id, out_request_no=proposal.out_request_no, amount=proposal.amount,
                    result="refused", reason=answer.value)
    why = {Answer.DECLINED: "the person declined it",
           Answer.TIMED_OUT: f"no answer within {settings.confirm_timeout:g} s ({MCP_ENV['confirm_timeout']})",
           Answer.UNSUPPORTED: "this MCP client cannot ask a person (no elicitation); use a client that "
                               "supports elicitation, or the toolkit's two-phase confirmation outside MCP"}[answer]
    content = {"method": proposal.to_dict()["method"], "result": "refused", "setting": setting_name("confirm"),
               "amount": proposal.amount, "explanation": f"Not executed: a refund on this server needs a "
               f"person's confirmation and {why}. Nothing was sent."}
    return ToolOutcome(outcome.tool_call_id, outcome.name, content)


def tools_schema(name: str) -> dict[str, Any]:
    """The JSON input schema of one MCP tool: the one offered to models (``tools.SPECS``), plus the
    required ``idempotency_key`` argument for a money-moving tool (MCP only)."""
    _, properties, required = SPECS[name]
    if name in KEYED:
        properties, required = {**properties, IDEMPOTENCY_KEY: _KEY_SCHEMA}, [*required, IDEMPOTENCY_KEY]
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
        settings = McpServerSettings.from_env()
        require_daily_cap(tools.toolkit.policy)
    except ConfigurationError as exc:
        print(f"mcp: {exc}", file=sys.stderr)
        return 2
    server = build_server(tools, settings=settings)
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


__all__ = ["KEYED", "OFFICIAL_TOOLS", "annotations", "build_server", "idempotency_key", "official_env",
           "require_daily_cap", "toolkit_from_env"]
