"""Render the rows as one plain-text table plus the target checks (ratios from the same run)."""

from __future__ import annotations

import math

from .harness import IMPLS, LING_CONCURRENCY, Row

LING_SECTIONS = ("ling-chat", "ling-stream")

CHAT_VS_FLOOR = 1.25
CHAT_VS_OPENAI = 0.6
MEMORY_MB = 5.0


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, fmt)


def _find(rows: list[Row], section: str, name: str, conc: int | None) -> Row | None:
    return next((r for r in rows if r.section == section and r.name == name and r.conc == conc), None)


def _ratio(a: Row | None, b: Row | None) -> float | None:
    if a is None or b is None or not a.cpu_us or not b.cpu_us:
        return None
    return a.cpu_us / b.cpu_us


def per_chunk(rows: list[Row], impl: str) -> float | None:
    """CPU µs per streamed chunk: the slope between the long and the short stream at c=10."""
    long, short = _find(rows, "stream", impl, 10), _find(rows, "stream-short", impl, 10)
    if not (long and short and long.cpu_us and short.cpu_us and long.chunks and short.chunks):
        return None
    if long.chunks <= short.chunks:
        return None
    return (long.cpu_us - short.cpu_us) / (long.chunks - short.chunks)


def render(rows: list[Row], machine: str, quick: bool, seconds: float) -> str:
    out = [f"machine: {machine}", f"mode: {'quick (counts too small to mean anything)' if quick else 'full'}"
           f" | wall {seconds:.0f} s", ""]
    head = (f"{'section':<13}{'row':<46}{'conc':>5}{'calls':>7}{'cpu µs/call':>13}{'p50 ms':>9}{'p95 ms':>9}"
            f"{'chunks':>8}{'÷floor':>8}{'÷openai':>9}  note")
    out += [head, "-" * len(head)]
    for r in rows:
        vs_floor = vs_openai = None
        if r.section in ("chat", "stream", "stream-short", "embed", *LING_SECTIONS) and r.name != "floor":
            vs_floor = _ratio(r, _find(rows, r.section, "floor", r.conc))
            if r.name != "openai":
                vs_openai = _ratio(r, _find(rows, r.section, "openai", r.conc))
        out.append(
            f"{r.section:<13}{r.name:<46}{_num(r.conc, 'd'):>5}{r.calls:>7}{_num(r.cpu_us, ',.1f'):>13}"
            f"{_num(r.p50_ms, '.2f'):>9}{_num(r.p95_ms, '.2f'):>9}{_num(r.chunks, '.1f'):>8}"
            f"{_num(vs_floor, '.2f'):>8}{_num(vs_openai, '.2f'):>9}  {r.note}"
        )
    out += ["", "per-chunk streaming CPU (slope between max_tokens 40 and 4 at c=10):"]
    chunk = {impl: per_chunk(rows, impl) for impl in IMPLS}
    for impl in IMPLS:
        out.append(f"  {impl:<8}{_num(chunk[impl], ',.1f'):>10} µs/chunk")
    out += ["", "targets (ratios of client CPU per call, same run):"]
    out += _targets(rows, chunk)
    return "\n".join(out)


def _check(ok: bool | None) -> str:
    return "n/a " if ok is None else ("PASS" if ok else "MISS")


def _targets(rows: list[Row], chunk: dict[str, float | None]) -> list[str]:
    lines = []
    for conc in sorted({r.conc for r in rows if r.section == "chat" and r.conc}):
        for name in ("alipay", "alipay-kw"):
            row = _find(rows, "chat", name, conc)
            if row is None:
                continue
            f = _ratio(row, _find(rows, "chat", "floor", conc))
            o = _ratio(row, _find(rows, "chat", "openai", conc))
            lines.append(f"  {_check(None if f is None else f <= CHAT_VS_FLOOR)}  chat c={conc:<3} {name} ÷ floor  "
                         f"= {_num(f, '.2f')} (≤ {CHAT_VS_FLOOR})")
            lines.append(f"  {_check(None if o is None else o <= CHAT_VS_OPENAI)}  chat c={conc:<3} {name} ÷ openai "
                         f"= {_num(o, '.2f')} (≤ {CHAT_VS_OPENAI})")
        alipay, floor, wait = (_find(rows, "chat", n, conc) for n in ("alipay", "floor", "floor-wait"))
        if alipay and floor and wait and alipay.cpu_us and floor.cpu_us and wait.cpu_us:
            lines.append(f"  info  chat c={conc:<3} of alipay − floor = {alipay.cpu_us - floor.cpu_us:,.0f} µs, "
                         f"waiting for the answer alone (floor-wait − floor) is {wait.cpu_us - floor.cpu_us:,.0f} µs; "
                         f"alipay ÷ floor-wait = {alipay.cpu_us / wait.cpu_us:.2f}")
    for section in LING_SECTIONS:
        for conc in LING_CONCURRENCY:
            o = _ratio(_find(rows, section, "ant-ling", conc), _find(rows, section, "openai", conc))
            lines.append(f"  {_check(None if o is None else o <= CHAT_VS_OPENAI)}  {section} c={conc:<3} ant-ling ÷ "
                         f"openai/ at the same endpoint = {_num(o, '.2f')} (≤ {CHAT_VS_OPENAI})")
    a, fl = chunk.get("alipay"), chunk.get("floor")
    over = None if a is None or fl is None else a - fl
    lines.append(f"  {_check(None if over is None or fl is None else over <= fl)}  stream per-chunk overhead "
                 f"alipay − floor = {_num(over, '.1f')} µs (≤ floor's own {_num(fl, '.1f')} µs/chunk)")
    mem = _find(rows, "memory", "alipay", 50)
    growth = mem.extra.get("growth_mb") if mem else None
    lines.append(f"  {_check(None if growth is None else growth < MEMORY_MB)}  memory growth alipay over "
                 f"{mem.calls if mem else '?'} calls = {_num(growth, '+.2f')} MB (< {MEMORY_MB} MB)")
    parses = next((r for r in rows if r.section == "crypto" and r.name.startswith("key parses")), None)
    count = parses.extra.get("parses") if parses else None
    lines.append(f"  {_check(None if count is None else count == 0)}  key parses during measured alipay calls "
                 f"= {_num(count, '.0f')} (must be 0)")
    return lines
