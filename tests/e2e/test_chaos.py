"""Chaos: 1,000+ requests through a LiteLLM Router while the emulator injects mixed faults.

Real processes only: the session's emulator subprocess (faults rolled with its seeded RNG) over loopback.
Every request must end, within a hard bound, as an answer from the primary or the fallback deployment
or as a typed LiteLLM exception; payment actions must run at most once per logical request; and no
signature, key or token may reach a log line or an exception message.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
import time
from pathlib import Path

import litellm
import openai

from litellm_alipay.emulator.state import TokenStore
from litellm_alipay.trust import derive_out_request_no

REQUESTS = 1000
CONCURRENCY = 40
HARD_BOUND_S = 20.0  # per logical request: 2 deployments x (1 + 1 retry) x 1 s deadline + backoffs
CALL_TIMEOUT_S = 1.0  # the provider's whole-call deadline (LiteLLM's `timeout`)
READ_TIMEOUT_S = 0.5
STALL_S = 2.0
LOGGERS = ("litellm_alipay", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy")

#: Ordered rules, each rolled with the emulator's seeded RNG: about 24% of non-streamed and 40% of
#: streamed gateway requests get a fault (stream-only kinds are skipped for plain requests).
FAULTS = [
    {"kind": "system_error", "probability": 0.05},
    {"kind": "rate_limit", "probability": 0.04},
    {"kind": "stall", "probability": 0.03, "seconds": STALL_S},
    {"kind": "truncate", "probability": 0.03},
    {"kind": "bad_signature", "probability": 0.03},
    {"kind": "drop", "probability": 0.03},
    {"kind": "drop_after_actions", "probability": 0.04},
    {"kind": "http_5xx", "probability": 0.02, "status": 502},
    {"kind": "cut_stream", "probability": 0.12},
    {"kind": "stream_error", "probability": 0.08},
]


def _kind(i: int) -> str:
    """The request mix: 20% payment actions, 25% streamed, 5% on behalf of a user, the rest plain."""
    if i % 5 == 0:
        return "action"
    if i % 4 == 1:
        return "stream"
    if i % 20 == 3:
        return "user"
    return "plain"


def _router(deployment: dict, num_retries: int = 1, **overrides) -> litellm.Router:
    common = {**deployment, "read_timeout": READ_TIMEOUT_S, "timeout": CALL_TIMEOUT_S, **overrides}
    return litellm.Router(
        model_list=[
            {"model_name": "fin-chat", "litellm_params": {"model": "alipay/ant-fin-chat", **common}},
            {"model_name": "fin-chat-lite", "litellm_params": {"model": "alipay/ant-fin-chat-lite", **common}},
        ],
        fallbacks=[{"fin-chat": ["fin-chat-lite"]}], num_retries=num_retries, retry_after=0,
    )


def _typed(exc: BaseException) -> bool:
    """A LiteLLM exception class (they all derive from openai.APIError)."""
    return isinstance(exc, openai.APIError) and type(exc).__module__.startswith("litellm.")


def _secret_patterns(deployment: dict) -> list[re.Pattern]:
    """What must never be logged: request/response signatures, the app key in any form, user tokens."""
    from cryptography.hazmat.primitives import serialization

    pem = Path(deployment["app_private_key"]).read_text()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    pkcs1 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                              serialization.NoEncryption()).decode()
    bodies = []
    for text in (pem, pkcs1):
        lines = [ln for ln in text.strip().splitlines() if not ln.startswith("-----")]
        bodies.append("".join(lines))  # the console's bare base64
        bodies += lines[1:-1]  # any one full line of the PEM body
    return [
        re.compile(r"PRIVATE KEY"),
        re.compile(r"\bsign=(?!\*)[A-Za-z0-9%+/=]{16,}"),
        re.compile(r"""['"]sign['"]\s*:\s*['"](?!\*)[A-Za-z0-9+/=]{16,}"""),
        re.compile(r"[A-Za-z0-9+/]{200,}"),  # a signature (344 chars) or a key body
        re.compile(r"authusr[BR][0-9a-f]{8}"),  # the emulator's user access / refresh tokens
        *(re.compile(re.escape(b)) for b in bodies),
    ]


async def test_chaos_every_request_ends_typed_and_actions_run_once(deployment, alipay_emulator, caplog, capsys):
    for name in LOGGERS:
        caplog.set_level(logging.WARNING, logger=name)
    router = _router(deployment, breaker_threshold=1_000_000)  # measure fault handling, not the breaker
    app_id = deployment["app_id"]
    alipay_emulator.set_faults(FAULTS)
    gate = asyncio.Semaphore(CONCURRENCY)
    outcomes: collections.Counter[str] = collections.Counter()
    action_keys: dict[int, str] = {}
    action_successes: dict[int, str] = {}
    problems: list[str] = []
    messages: list[str] = []

    async def attempt(i: int, kind: str) -> str:
        prompt = f"refund 12.50 for trade T{i}" if kind == "action" else f"chaos {i}"
        kwargs: dict = {"model": "fin-chat", "messages": [{"role": "user", "content": prompt}],
                        "litellm_trace_id": f"chaos-{i}"}
        if kind == "action":
            kwargs["allowed_actions"] = ["REFUND"]
            # the key is the trace id, scoped (in-process: no proxy key, no tenant), named by its source
            action_keys[i] = derive_out_request_no(app_id, f"trace:-|-|chaos-{i}")
        if kind == "user":
            kwargs.update(user=TokenStore.user_id_for(f"chaos-code-{i % 3}"), auth_code=f"chaos-code-{i % 3}")
        if kind == "stream":
            stream = await router.acompletion(stream=True, **kwargs)
            chunks = [chunk async for chunk in stream]
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            if text != f"You said: {prompt}":
                problems.append(f"request {i}: streamed text {text!r}")
            model = next((c.model for c in chunks if c.model), "")
        else:
            reply = await router.acompletion(**kwargs)
            model = reply.model
            if kind == "action":
                actions = (reply.choices[0].message.provider_specific_fields or {}).get("actions") or []
                if [(a["action"], a["status"]) for a in actions] != [("REFUND", "SUCCESS")]:
                    problems.append(f"request {i}: actions {actions!r}")
                else:
                    action_successes[i] = actions[0]["out_request_no"]
            elif reply.choices[0].message.content != f"You said: {prompt}":
                problems.append(f"request {i}: content {reply.choices[0].message.content!r}")
        return "fallback" if "lite" in str(model) else "primary"

    async def one(i: int) -> None:
        kind = _kind(i)
        async with gate:
            started = time.monotonic()
            try:
                outcome = await asyncio.wait_for(attempt(i, kind), HARD_BOUND_S)
            except TimeoutError:
                outcome = "HUNG"
                problems.append(f"request {i} ({kind}) did not end within {HARD_BOUND_S} s")
            except Exception as exc:  # noqa: BLE001 - classified below
                messages.append(f"{exc!s} {exc!r}")
                original = getattr(exc, "original_exception", None)
                if original is not None:
                    messages.append(f"{original!s} {original!r}")
                outcome = f"error:{type(exc).__name__}" if _typed(exc) else f"UNTYPED:{type(exc).__name__}"
                if not _typed(exc):
                    problems.append(f"request {i} ({kind}): untyped {exc!r}")
            if time.monotonic() - started > HARD_BOUND_S + 1:
                problems.append(f"request {i} took {time.monotonic() - started:.1f} s")
            outcomes[f"{kind}:{outcome}"] += 1

    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(REQUESTS))), REQUESTS * HARD_BOUND_S)
    elapsed = time.monotonic() - started
    stats = alipay_emulator.stats()
    alipay_emulator.clear_faults()

    # Reconcile the payment actions: replay every action request with the key its attempts should all
    # have used, with faults off. Keys executed during the chaos answer from the idempotency store
    # (repeats); the others execute now. If any logical request had executed under a second key,
    # the total would exceed the number of logical action requests.
    executed_in_chaos = sum(stats["actions_executed"].values())
    repeats_before = alipay_emulator.stats()["action_repeats"]
    replay_gate = asyncio.Semaphore(CONCURRENCY)

    async def replay(i: int, key: str) -> str:
        """The same logical request again (its trace id): answered from the money ledger when an attempt in the
        chaos recorded its answer, else sent with the same number (the gateway executes it at most once)."""
        async with replay_gate:
            reply = await litellm.acompletion(
                model="alipay/ant-fin-chat", messages=[{"role": "user", "content": f"refund 12.50 for trade T{i}"}],
                allowed_actions=["REFUND"], litellm_trace_id=f"chaos-{i}", **deployment)
        actions = reply.choices[0].message.provider_specific_fields["actions"]
        assert [(a["action"], a["status"]) for a in actions] == [("REFUND", "SUCCESS")]
        if i in action_successes:
            assert actions[0].get("replayed") is True
        return actions[0]["out_request_no"]

    replayed = await asyncio.wait_for(
        asyncio.gather(*(replay(i, key) for i, key in action_keys.items())), 120)
    after = alipay_emulator.stats()

    out, err = capsys.readouterr()
    logged = caplog.text + out + err + "\n".join(messages)
    patterns = _secret_patterns(deployment)
    leaks = [p.pattern[:40] for p in patterns if p.search(logged)]
    # The patterns do catch the real things: a signed request, and the key file itself.
    from litellm_alipay.backends.gateway import Gateway
    from litellm_alipay.settings import settings_for

    signed, _ = Gateway(settings_for(deployment)).build_request("alipay.cloud.ai.chat", {"q": 1})
    assert patterns[1].search(signed.url + "&" + signed.content.decode())
    key_text = Path(deployment["app_private_key"]).read_text()
    bare = "".join(ln for ln in key_text.strip().splitlines() if not ln.startswith("-----"))
    assert patterns[0].search(key_text) and patterns[5].search(bare) and patterns[6].search(key_text)
    sample = next((r.getMessage() for r in caplog.records if r.name == "litellm_alipay"), "")

    faults = stats["faults_injected"]
    fallbacks = sum(n for k, n in outcomes.items() if k.endswith(":fallback"))
    summary = (
        f"\nchaos: {REQUESTS} logical requests in {elapsed:.1f} s, {stats['requests_total']} gateway requests, "
        f"{sum(faults.values())} faults injected {dict(sorted(faults.items()))}\n"
        f"outcomes {dict(sorted(outcomes.items()))}\nfallbacks {fallbacks}; actions executed in chaos "
        f"{executed_in_chaos} (answered with SUCCESS {len(action_successes)}, repeats {stats['action_repeats']}); "
        f"after replay of {len(action_keys)} keys: executed {sum(after['actions_executed'].values())}, "
        f"repeats +{after['action_repeats'] - repeats_before}; log records {len(caplog.records)}\n"
        f"sample log line: {sample[:300]}"
    )
    print(summary)

    assert not problems, "\n".join(problems[:20])
    assert sum(outcomes.values()) == REQUESTS
    assert not [k for k in outcomes if "HUNG" in k or "UNTYPED" in k]
    assert sum(faults.values()) >= 0.20 * stats["requests_total"], faults
    assert {"system_error", "rate_limit", "stall", "truncate", "bad_signature", "drop", "drop_after_actions",
            "cut_stream", "stream_error"} <= set(faults)
    assert fallbacks > 0
    assert sum(n for k, n in outcomes.items() if k.endswith(":primary")) > REQUESTS // 2
    # At most once: every success reported its logical request's own key ...
    assert all(action_successes[i] == action_keys[i] for i in action_successes)
    assert replayed == list(action_keys.values())
    # ... every key answered during the chaos is answered from the ledger (nothing sent), every other key executed
    # during the chaos is now a repeat at the gateway, every remaining one executed exactly now ...
    assert after["action_repeats"] - repeats_before == executed_in_chaos - len(action_successes)
    # ... and the total is one execution per logical request: no request executed under two keys.
    assert sum(after["actions_executed"].values()) == len(action_keys) == REQUESTS // 5
    assert executed_in_chaos >= len(action_successes)
    # No secrets anywhere a operator would look; and the capture did see the opaque failures logged.
    assert any(r.name == "litellm_alipay" for r in caplog.records)
    assert not leaks, leaks


async def test_open_breaker_fast_fails_are_typed(deployment, alipay_emulator):
    router = _router(deployment, num_retries=0, breaker_threshold=3, breaker_cooldown=60)
    alipay_emulator.set_faults([{"kind": "system_error"}])  # every gateway request
    gate = asyncio.Semaphore(4)

    async def one(i: int) -> BaseException | None:
        async with gate:
            try:
                await asyncio.wait_for(router.acompletion(
                    model="fin-chat", messages=[{"role": "user", "content": f"b{i}"}]), HARD_BOUND_S)
            except Exception as exc:  # noqa: BLE001 - asserted below
                return exc
        return None

    results = await asyncio.gather(*(one(i) for i in range(20)))
    assert all(isinstance(r, litellm.ServiceUnavailableError) for r in results), results
    assert any("circuit" in str(r) for r in results)
    # 20 logical requests x 2 deployments = 40 calls; once open, the breaker kept them at home (at most
    # the 4 in flight per deployment when it opened got through after the first 3 failures).
    assert alipay_emulator.stats()["requests_total"] <= 3 + 4 * 2
