"""``litellm-alipay demo``: the main job. Starts the embedded emulator and drives it through LiteLLM.

Shows, against a gateway that signs and verifies like Alipay's: chat, streaming, a tool call, an image,
an embedding, a fallback when the gateway fails, a content-policy fallback on a compliance refusal and one
model name routed three ways (topic, trivial turn, residency); then Ant's own models through the same
provider (the emulated Ant Ling endpoint): a Ring model's reasoning and a Ling model's tool call, priced per
token; a refund assistant on a Ling model, whose refund the provider executes inside the call once the
demo confirms it; an agent paying ¥0.01 per call (A2M, HTTP 402); and a shopping agent that pays within the
user's Delegation Pay mandate.
"""

from __future__ import annotations

import argparse
import os
import time


def _line(title: str, text: str) -> None:
    print(f"  {title:<26} {text}")


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import tempfile

    from .emulator.process import EmulatorProcess
    from .ledger import LEDGER_ENV

    # a throwaway emulator gets a throwaway money ledger: its keys must not replay another run's refunds
    os.environ[LEDGER_ENV] = f"sqlite:///{tempfile.mkdtemp(prefix='alipay-demo-ledger-')}/ledger.db"
    print("starting the Alipay gateway emulator (loopback, throwaway keys) …")
    with EmulatorProcess() as emulator:
        os.environ.update(emulator.env())
        print(f"  emulator at {emulator.gateway_url}  app_id={emulator.app_id}")
        return _drive(emulator)


def _drive(emulator) -> int:
    import litellm

    from . import register  # the face: operations hooks plugged in

    register()
    litellm.suppress_debug_info = True
    ask = [{"role": "user", "content": "What is my balance? 我的余额是多少？"}]

    print("\nchat, signed with RSA2 and verified (litellm.completion):")
    started = time.perf_counter()
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=ask)
    took = (time.perf_counter() - started) * 1000
    _line("answer", repr(reply.choices[0].message.content))
    _line("usage", f"{reply.usage.prompt_tokens} in / {reply.usage.completion_tokens} out tokens, {took:.0f} ms")
    _line("trace_id", str(reply.choices[0].message.provider_specific_fields.get("trace_id")))

    print("\nstreaming (stream=True), closing sign event verified:")
    parts = [c.choices[0].delta.content or "" for c in
             litellm.completion(model="alipay/ant-fin-chat", messages=ask, stream=True)]
    _line("chunks", f"{len(parts)} → {''.join(parts)!r}")

    print("\ntool call:")
    tools = [{"type": "function", "function": {
        "name": "refund_order", "description": "Refund a trade",
        "parameters": {"type": "object", "properties": {"trade_no": {"type": "string"},
                                                        "amount": {"type": "number"}}}}}]
    reply = litellm.completion(model="alipay/ant-fin-chat", tools=tools, messages=[
        {"role": "user", "content": "please refund_order trade_no=T2024001 amount=12.5"}])
    call = reply.choices[0].message.tool_calls[0]
    _line("tool_calls[0]", f"{call.function.name}({call.function.arguments})")

    print("\nimage input:")
    reply = litellm.completion(model="alipay/ant-fin-chat", messages=[{"role": "user", "content": [
        {"type": "text", "text": "What is on this receipt?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/receipt.png"}}]}])
    _line("answer", repr(reply.choices[0].message.content))

    print("\npayment action (executed at most once per out_request_no) and its cost:")
    reply = litellm.completion(model="alipay/ant-fin-chat", allowed_actions=["REFUND"], messages=[
        {"role": "user", "content": "Please refund 88.00 CNY for trade T2024001"}])
    action = reply.choices[0].message.provider_specific_fields["actions"][0]
    alipay = reply._hidden_params["alipay"]
    _line("action", f"{action['action']} {action['amount']} {action['currency']} → {action['status']}")
    _line("cost", f"US${reply._hidden_params['response_cost']:.5f} (¥{alipay['cost_cny']}: "
                  f"¥{alipay['cost_breakdown']['base_cny']} call + ¥{alipay['cost_breakdown']['action_fees_cny']} "
                  "action fee)")

    print("\nembeddings (70 inputs → 3 signed calls, reassembled in order):")
    emb = litellm.embedding(model="alipay/ant-fin-embed", input=[f"transaction {i}" for i in range(70)])
    _line("vectors", f"{len(emb.data)} × {len(emb.data[0]['embedding'])} dims")

    print("\nfallback: the gateway answers SYSTEM_ERROR, the Router falls back:")
    router = litellm.Router(
        model_list=[
            {"model_name": "fin-chat", "litellm_params": {"model": "alipay/ant-fin-chat"}},
            {"model_name": "fin-chat-lite", "litellm_params": {"model": "alipay/ant-fin-chat-lite"}},
            {"model_name": "general-chat", "litellm_params": {
                "model": "openai/general-chat", "api_base": emulator.base_url + "/v1", "api_key": "unused"}},
        ],
        fallbacks=[{"fin-chat": ["fin-chat-lite"]}],
        content_policy_fallbacks=[{"fin-chat": ["general-chat"]}],
        num_retries=0,
    )
    emulator.set_faults([{"kind": "system_error", "next": 1}])
    reply = router.completion(model="fin-chat", messages=ask)
    _line("answered by", reply.model)

    print("\ncontent-policy fallback: Alipay refuses income forecasting, another model answers:")
    reply = router.completion(model="fin-chat", messages=[
        {"role": "user", "content": "Forecast my income for next year"}])
    _line("answered by", f"{reply.model}: {reply.choices[0].message.content!r}")

    _routing(router)
    _ant_ling(emulator, tools)
    _refund_assistant(emulator)
    import asyncio

    asyncio.run(_pay_per_call(emulator))
    _shopping_agent(emulator)

    stats = emulator.stats()
    print(f"\nthe emulator saw {_total(stats)} signed requests; rejections: {stats.get('rejections', {})}")
    return 0


def _routing(router) -> None:
    """One model name, three routes: the decision the proxy's ``assistant_router`` makes, taken by hand."""
    from .billing.pricing import PricingConfig
    from .routing import RouteSettings, decide
    from .routing.savings import saved_usd

    settings = RouteSettings()
    print("\none model name, routed by topic, trivial turn and residency (the proxy's `assistant`):")
    for text, metadata in (("我想申请退款，订单号 2024112233", {}), ("thanks!", {}),
                           ("I want a refund for order 2024112233", {"user_region": "EU"})):
        request = {"model": settings.model, "messages": [{"role": "user", "content": text}], "metadata": metadata}
        decision = decide(request, settings)
        where = f" from {metadata['user_region']}" if metadata else ""
        reply = router.completion(model=decision.model, messages=request["messages"], metadata=dict(metadata))
        saved = saved_usd(request["messages"], reply.choices[0].message.content,
                          reply._hidden_params.get("response_cost"), PricingConfig())
        _line(decision.reason, f"{text!r}{where} → {decision.model}"
                               f"{'' if decision.side == 'alipay' else f' (saved US${saved:.5f} against Alipay)'}")


def _ant_ling(emulator, tools: list) -> None:
    """Ant's Ling/Ring models through the same ``alipay/`` provider: a bearer key, no Alipay app."""
    import litellm

    ling = {"api_base": emulator.ant_ling_base, "api_key": emulator.ant_ling_api_key}
    print("\nAnt's models (Ant Ling endpoint, emulated): Ring-2.6-1T reasons (reasoning_effort → reasoning.effort):")
    reply = litellm.completion(model="alipay/Ring-2.6-1T", reasoning_effort="xhigh",
                               allowed_openai_params=["reasoning_effort"],
                               messages=[{"role": "user", "content": "Is 1001 prime?"}], **ling)
    _line("reasoning_content", repr(reply.choices[0].message.reasoning_content))
    _line("answer", repr(reply.choices[0].message.content))
    _line("cost", f"US${reply._hidden_params['response_cost']:.8f} (¥{reply._hidden_params['alipay']['cost_cny']:.8f})"
                  f" = litellm.completion_cost: US${litellm.completion_cost(completion_response=reply):.8f}")

    print("\nLing-2.6-flash calls a tool:")
    reply = litellm.completion(model="alipay/Ling-2.6-flash", tools=tools, messages=[
        {"role": "user", "content": "please refund_order trade_no=T2024002 amount=3"}], **ling)
    call = reply.choices[0].message.tool_calls[0]
    _line("tool_calls[0]", f"{call.function.name}({call.function.arguments})")


def _refund_assistant(emulator) -> None:
    """A Ling model that cannot act by itself refunds inside an ``alipay/`` call: the provider runs the
    tool loop (``allowed_actions``), confirmation is required, and a retried request refunds nothing again."""
    import json
    import tempfile
    from pathlib import Path

    import litellm

    from .backends import actions

    audit = Path(tempfile.mkdtemp(prefix="alipay-demo-")) / "payments-audit.jsonl"
    os.environ.update(ALIPAY_PAYMENTS_CONFIRM="true", ALIPAY_AUDIT_LOG=str(audit),
                      ALIPAY_PAYMENTS_REFUND_CAP_PER_CALL="50.00")
    emulator.create_trade("order-1001", "128.00")
    desk = {"model": "alipay/Ling-2.6-flash", "api_base": emulator.ant_ling_base,
            "api_key": emulator.ant_ling_api_key, "allowed_actions": ["REFUND"],
            "metadata": {"idempotency_key": "ticket-5521-refund"}}  # one key per logical request, kept on retry
    print("\nrefund assistant (Ling-2.6-flash; the provider runs the payment tools, confirmation required):")
    looked = litellm.completion(messages=[{"role": "user", "content": "query_payment out_trade_no=order-1001"}],
                                **{**desk, "metadata": {"idempotency_key": "ticket-5521-lookup"}})
    found = json.loads(looked.choices[0].message.content.removeprefix("Tool result: "))
    _line("looks up the order", f"order-1001: {found['trade_status']}, {found['total_amount']} CNY")
    ask = [{"role": "user", "content": "refund out_trade_no=order-1001 refund_amount=12.00"}]
    proposed = litellm.completion(messages=ask, **desk)
    [pending] = proposed.choices[0].message.provider_specific_fields["actions"]
    _line("proposes", f"{pending['action']} {pending['amount']} {pending['currency']} → {pending['status']}")
    [token] = proposed._hidden_params["alipay"]["confirmation_tokens"]  # the caller's, never the model's
    done = actions.confirm(token).to_dict()
    _line("the demo confirms", f"{done['result']}: refund_fee={done['refund_fee']} fund_change={done['fund_change']}")
    retried = litellm.completion(messages=ask, **desk)
    [again] = retried.choices[0].message.provider_specific_fields["actions"]
    _line("a retried request", f"{again['status']} replayed={again.get('replayed', False)} (nothing sent again)")
    _line("emulator", f"refunds executed: {emulator.stats()['trades']['refunds_executed']}")
    outcome = [json.loads(line) for line in audit.read_text().splitlines()
               if json.loads(line)["event"] == "outcome"][0]
    _line("audit line", f"{outcome['event']} {outcome['method']} {outcome['amount']} → {outcome['result']} "
                        f"({outcome['out_request_no']})")


async def _pay_per_call(emulator) -> None:
    """A2M (HTTP 402): an agent (the OpenAI SDK with the buyer auth flow) pays ¥0.01 for one model call
    through a small OpenAI-compatible app behind the A2M middleware; the emulator is Alipay and the wallet."""
    import tempfile

    import httpx
    import litellm
    import openai
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from .ledger import Ledger, engine_for
    from .payments.agent import headers
    from .payments.agent.a2m import A2MMerchant, A2MSettings
    from .payments.agent.a2m_asgi import A2MMiddleware
    from .payments.agent.buyer import A402Auth, EmulatorWallet
    from .settings import settings_for
    from .wire.signing import load_private_key

    async def chat(request: Request) -> JSONResponse:
        body = await request.json()
        reply = await litellm.acompletion(model="alipay/ant-fin-chat", messages=body["messages"])
        return JSONResponse(reply.model_dump())

    ledger = Ledger(engine_for(f"sqlite:///{tempfile.mkdtemp(prefix='alipay-demo-')}/a2m.db"))
    merchant = A2MMerchant(settings_for({}), A2MSettings.from_mapping({
        "price": "0.01", "goods_name": "AI 对话", "service_id": "api_mock_service_id",
        "seller_id": "2088000000000001", "seller_name": "示例商户"}), ledger=ledger)
    app = A2MMiddleware(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]), merchant,
                        prices={"/v1/chat/completions": "0.01"})
    seen: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        seen.append(response)

    print("\nan agent pays per call (Alipay A2M, HTTP 402) — ¥0.01 for one model call:")
    auth = A402Auth(EmulatorWallet(emulator.base_url), max_total="0.05")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://merchant.local",
                                 auth=auth, event_hooks={"response": [keep]}) as http:
        agent = openai.AsyncOpenAI(base_url="http://merchant.local/v1", api_key="unused", max_retries=0,
                                   http_client=http)
        raw = await agent.chat.completions.with_raw_response.create(
            model="fin-chat", messages=[{"role": "user", "content": "What is my balance?"}])
        bill = headers.decode(seen[0].headers[headers.PAYMENT_NEEDED], headers.PAYMENT_NEEDED)
        signed = headers.verify_bill(bill, load_private_key(emulator.app_private_key).public_key())
        _line("first answer", f"{seen[0].status_code} Payment-Needed: ¥{bill['protocol']['amount']} for "
                              f"{bill['protocol']['resource_id']} ({bill['method']['goods_name']}), "
                              f"seller signature {'verifies' if signed else 'FAILS'}")
        proof = seen[-1].request.headers[headers.PAYMENT_PROOF]
        validation = headers.decode(raw.headers[headers.PAYMENT_VALIDATION], headers.PAYMENT_VALIDATION)
        _line("paid, then answered", f"{raw.http_response.status_code} {raw.parse().choices[0].message.content!r}")
        _line("Payment-Validation", f"validated={validation['validated']} trade_no={validation['trade_no']}")
        again = await http.post("/v1/chat/completions", json={"messages": []}, headers={"Payment-Proof": proof})
        _line("the same proof again", f"{again.status_code} {again.json()['code']} (served once)")
    [trade] = emulator.stats()["a2m_trades"]
    _line("emulator", f"verified {trade['verified']}, fulfilment confirmed {trade['confirmed']}; "
                      f"the agent spent ¥{auth.spent}")
    ledger.engine.close()
def _shopping_agent(emulator) -> None:
    """Delegation Pay: the agent asks the user once for a mandate (¥50, 3 payments, 7 days), the stand-in
    user approves it in the (emulated) Alipay app, the agent buys twice, and a third purchase over what
    remains is refused by us before anything is sent."""
    import litellm

    agent = {"model": "alipay/Ling-2.6-flash", "api_base": emulator.ant_ling_base,
             "api_key": emulator.ant_ling_api_key, "allowed_actions": ["propose_mandate", "pay_under_mandate"]}

    def ask(text: str, key: str) -> dict:
        reply = litellm.completion(messages=[{"role": "user", "content": text}],
                                   **{**agent, "metadata": {"idempotency_key": key}})
        [action] = reply.choices[0].message.provider_specific_fields["actions"]
        return action

    print("\nshopping agent (Delegation Pay: the user authorizes once, the agent pays within the mandate):")
    asked = ask("propose_mandate delegation_desc=buy-G102-tickets max_total_amount=50 times_limit=3 valid_days=7",
                "trip-0120-mandate")
    _line("asks for a mandate", f"¥{asked['amount']} / 3 payments / 7 days → {asked['status']} "
                                f"(order_str for the Alipay app, {len(asked['order_str'])} chars)")
    approved = emulator.approve_delegation(asked["order_str"])  # the user approves in the Alipay app
    _line("the user approves", f"agreement {approved['agreement_no']}, delegation {approved['delegation_id']}")
    mandate = asked["mandate_id"]
    for n, amount in ((1, "20.00"), (2, "25.00"), (3, "10.00")):
        bought = ask(f"pay_under_mandate mandate_id={mandate} total_amount={amount} subject=G102-ticket-{n}",
                     f"trip-0120-buy-{n}")
        outcome = bought["status"] if bought["status"] == "SUCCESS" else \
            f"{bought['status']} ({bought.get('error_code')}: refused by us, nothing sent)"
        _line(f"purchase {n}", f"¥{amount} → {outcome}")
    stats = emulator.stats()
    _line("emulator", f"agent payments executed: {stats['delegations']['payments_executed']} "
                      f"(¥{stats['delegations']['paid_amount']}), pay requests received: "
                      f"{stats['requests_by_method'].get('alipay.trade.agent.delegation.pay', 0)}")


def _total(stats: dict) -> int:
    return int(stats.get("requests_total", 0))


def add_parser(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="run the demo against the embedded emulator")
    demo.set_defaults(func=run)
