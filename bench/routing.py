"""``python -m bench.routing``: the labelled set routed by the real proxy, and what it cost against all-Alipay.

One run, two passes over the same requests (tests/routing/labelled.jsonl) through ``litellm --config
config/litellm.yaml`` in front of the emulator, with the OpenAI SDK:

* ``assistant`` — the route decides; its side and reason are read from the response headers;
* ``fin-chat`` — the baseline: every request to Alipay.

Costs are the proxy's own ``x-litellm-response-cost`` of each answer (Alipay: the emulator's contract price,
0.03 CNY per started 1,000 characters; the regional model: the per-token prices in config/litellm.yaml), so
the saving is measured, not estimated. Prints per-side accuracy (overall and per ``split`` of the set), the
confusion cases and the two totals; ``--out`` also writes the report to a file.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
ROOT = Path(__file__).resolve().parents[1]


def run(client: Any, rows: list[dict[str, Any]], model: str) -> list[dict[str, Any]]:
    """Each row's answer headers: route side, reason, model and the proxy's response cost."""
    results = []
    for row in rows:
        raw = client.chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": row["text"]}])
        headers = raw.headers
        results.append({"side": headers.get("x-alipay-route", "alipay"),
                        "reason": headers.get("x-alipay-route-reason", "-"),
                        "model": headers.get("x-alipay-route-model", model),
                        "cost": float(headers.get("x-litellm-response-cost") or 0.0),
                        "saved": float(headers.get("x-alipay-route-saved-usd") or 0.0)})
    return results


def render(rows: list[dict[str, Any]], routed: list[dict[str, Any]], baseline: list[dict[str, Any]],
           header: str) -> str:
    lines = [f"# {header}", ""]
    lines.append(f"{'requests':<28}{'alipay side':>16}{'regional side':>16}")
    groups = [("all", rows)] + [(f"split {name}", [r for r in rows if r["split"] == name])
                                for name in dict.fromkeys(r["split"] for r in rows)]
    groups += [(f"lang {name}", [r for r in rows if r["lang"] == name])
               for name in dict.fromkeys(r["lang"] for r in rows)]
    index = {id(row): i for i, row in enumerate(rows)}
    for name, group in groups:
        cells = []
        for side in ("alipay", "regional"):
            picked = [r for r in group if r["side"] == side]
            right = sum(routed[index[id(r)]]["side"] == side for r in picked)
            cells.append(f"{right}/{len(picked)} {100 * right / len(picked):5.1f}%" if picked else "-")
        lines.append(f"{name:<28}{cells[0]:>16}{cells[1]:>16}")
    reasons = Counter(r["reason"] for r in routed)
    lines += ["", "reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items()))]
    trivial = [routed[i]["side"] for i, r in enumerate(rows) if r["kind"] == "trivial"]
    lines.append(f"trivial turns on the regional side: {trivial.count('regional')}/{len(trivial)}")
    lines += ["", "confusion cases (label -> routed, split, text, reason):"]
    for i, row in enumerate(rows):
        if routed[i]["side"] != row["side"]:
            lines.append(f"  {row['side']} -> {routed[i]['side']:<9} {row['split']:<8} {row['text']!r} "
                         f"({routed[i]['reason']})")
    routed_cost = sum(r["cost"] for r in routed)
    alipay_cost = sum(r["cost"] for r in baseline)
    saved_headers = sum(r["saved"] for r in routed)
    lines += ["", f"cost of the set, routed via assistant:  ${routed_cost:.6f}",
              f"cost of the set, all to fin-chat:       ${alipay_cost:.6f}",
              f"saved: ${alipay_cost - routed_cost:.6f} ({100 * (1 - routed_cost / alipay_cost):.1f} %); "
              f"sum of x-alipay-route-saved-usd: ${saved_headers:.6f}",
              f"requests to Alipay: routed {sum(r['model'] != 'general-chat' for r in routed)}, "
              f"baseline {len(baseline)}"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.routing", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the report here (bench/results/routing.txt)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # → the finally blocks stop the children

    sys.path.insert(0, str(ROOT))  # the e2e helpers and the labelled set, shared with the tests
    from litellm_alipay.emulator.process import EmulatorProcess
    from tests.e2e.proxy_process import ProxyProcess, openai_client, proxy_env
    from tests.routing.labelled import load

    from .harness import machine, progress

    rows = load()
    started = time.monotonic()
    progress("starting the emulator and the litellm proxy …")
    with EmulatorProcess() as emulator:
        proxy = ProxyProcess(ROOT / "config" / "litellm.yaml", proxy_env(emulator))
        try:
            client = openai_client(proxy)
            progress(f"{len(rows)} requests to assistant …")
            routed = run(client, rows, "assistant")
            progress(f"{len(rows)} requests to fin-chat …")
            baseline = run(client, rows, "fin-chat")
        finally:
            proxy.stop()
    header = (f"{machine()} | litellm proxy, config/litellm.yaml | {len(rows)} labelled requests | "
              f"wall {time.monotonic() - started:.0f} s")
    report = render(rows, routed, baseline, header)
    print(report)
    if args.out:
        args.out.write_text(report + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
