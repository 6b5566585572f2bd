"""``python -m bench.payments [--quick]``: the per-call cost of ``alipay.trade.query`` through the
toolkit beside Alipay's official Python SDK (``DefaultAlipayClient.execute``), same emulator, one run.

Both sides sign with RSA2 and verify the answer's signature. Rows: client CPU per call
(``time.process_time`` of this process; the emulator is another process) and wall latency p50, for
sequential calls (c=1, the SDK is synchronous). The ratio lines divide the toolkit's figures by the SDK's.
The SDK stamps host-local time, so the process runs with ``TZ=Asia/Shanghai`` as an SDK deployment must.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import os
import statistics
import sys
import time
from collections.abc import Callable
from urllib.parse import urlparse

os.environ["TZ"] = "Asia/Shanghai"
time.tzset()
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def _sdk_client(emu):
    from alipay.aop.api.AlipayClientConfig import AlipayClientConfig
    from alipay.aop.api.DefaultAlipayClient import DefaultAlipayClient
    from alipay.aop.api.util import WebUtils

    from litellm_alipay.wire.signing import load_private_key, private_key_forms

    def keep_port(url: str, query_string: str, timeout: int):  # the SDK drops a local URL's port
        parsed = urlparse(url)
        conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
        return f"{parsed.scheme}://{parsed.hostname}:{parsed.port}{parsed.path}?{query_string}", conn

    WebUtils.get_http_connection = keep_port
    cfg = AlipayClientConfig()
    cfg.server_url, cfg.app_id = emu.gateway_url, emu.app_id
    cfg.app_private_key = private_key_forms(load_private_key(emu.app_private_key))["private_pkcs1"]
    cfg.alipay_public_key = "".join(line for line in emu.alipay_public_key.splitlines() if "-----" not in line)
    return DefaultAlipayClient(cfg)


def _measure(label: str, call: Callable[[], object], calls: int, warmup: int) -> dict:
    for _ in range(warmup):
        call()
    gc.collect()
    latencies = []
    cpu = time.process_time()
    for _ in range(calls):
        start = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - start)
    cpu = time.process_time() - cpu
    return {"row": label, "calls": calls, "cpu_us": cpu / calls * 1e6, "p50_ms": statistics.median(latencies) * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.payments", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny counts: every row, numbers meaningless")
    args = parser.parse_args(argv)
    calls, warmup = (20, 5) if args.quick else (1000, 100)

    from alipay.aop.api.domain.AlipayTradeQueryModel import AlipayTradeQueryModel
    from alipay.aop.api.request.AlipayTradeQueryRequest import AlipayTradeQueryRequest

    from litellm_alipay.emulator.process import EmulatorProcess
    from litellm_alipay.payments import PaymentToolkit
    from litellm_alipay.payments._sync import run_sync
    from litellm_alipay.settings import build_settings
    from litellm_alipay.transport.http import transport_for

    with EmulatorProcess() as emu:
        emu.create_trade("bench-1", "88.00")
        sdk = _sdk_client(emu)
        model = AlipayTradeQueryModel()
        model.out_trade_no = "bench-1"
        request = AlipayTradeQueryRequest(biz_model=model)
        kit = PaymentToolkit(build_settings({"app_id": emu.app_id, "app_private_key": emu.app_private_key_path,
                                             "alipay_public_key": emu.alipay_public_key_path,
                                             "api_base": emu.gateway_url}, env={}))
        loop = asyncio.new_event_loop()

        def sdk_call() -> None:
            assert '"TRADE_SUCCESS"' in sdk.execute(request)

        def kit_sync() -> None:
            assert kit.run("query_payment", {"out_trade_no": "bench-1"}).node["trade_status"] == "TRADE_SUCCESS"

        def kit_async() -> None:
            result = loop.run_until_complete(kit.arun("query_payment", {"out_trade_no": "bench-1"}))
            assert result.node["trade_status"] == "TRADE_SUCCESS"

        s = kit.settings
        transport = transport_for(s)
        rows = [_measure("sdk execute", sdk_call, calls, warmup),
                _measure("toolkit arun (async)", kit_async, calls, warmup)]
        loop.run_until_complete(transport.aclose())  # this loop's pooled connections
        loop.close()
        rows.append(_measure("toolkit run (sync driver)", kit_sync, calls, warmup))
        run_sync(transport.aclose())  # the sync driver's loop's pooled connections
    print(f"mode: {'quick' if args.quick else 'full'} | alipay.trade.query, c=1, RSA2 sign + verify on both sides")
    print(f"{'section':<9} {'row':<28} {'conc':>4} {'calls':>6} {'cpu µs/call':>12} {'p50 ms':>8}")
    for r in rows:
        print(f"payments {r['row']:<28} {1:>4} {r['calls']:>6} {r['cpu_us']:>12,.1f} {r['p50_ms']:>8.2f}")
    base = rows[0]
    for r in rows[1:]:
        print(f"ratio    {r['row']} ÷ sdk execute: cpu {r['cpu_us'] / base['cpu_us']:.2f}, "
              f"p50 {r['p50_ms'] / base['p50_ms']:.2f}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
