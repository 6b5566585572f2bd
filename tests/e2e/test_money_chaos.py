"""The money chaos run (issue 21): two real proxy instances on one PostgreSQL ledger, a few hundred refund
requests over distinct keys through the Ant Ling action loop, client retries at random points (some after the
client dropped its own answer, some sent to both instances at once), refund answers lost at the gateway, and
one instance SIGKILLed mid-run and restarted. It ends with exactly one refund per key in the emulator and a
recorded outcome for every key. Bounded: every request has at most ``ATTEMPTS`` tries with timeouts."""

from __future__ import annotations

import collections
import os
import random
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx

from litellm_alipay.ledger import LEDGER_ENV

from .proxy_process import MASTER_KEY, ProxyProcess
from .test_money_once import _config, _env

#: how many logical refund requests (each its own key and trade); ALIPAY_CHAOS_KEYS to run more
KEYS = int(os.environ.get("ALIPAY_CHAOS_KEYS", "240"))
ATTEMPTS = 8
#: how often a client may be told "in progress" (another attempt holds the key) and back off, per key
BUSY_WAITS = 400
WORKERS = 8
BUSY = {"busy": True}


class Fleet:
    """The proxy instances a client may reach; one is killed and restarted mid-run."""

    def __init__(self, config, env) -> None:
        self.config, self.env = config, env
        self.lock = threading.Lock()
        self.live: dict[str, ProxyProcess] = {}
        for name in ("a", "b"):
            self.live[name] = ProxyProcess(config, env)

    def urls(self) -> list[str]:
        with self.lock:
            return [p.base_url for p in self.live.values()]

    def kill_and_restart(self, name: str) -> None:
        with self.lock:
            doomed = self.live.pop(name)
        doomed.proc.send_signal(signal.SIGKILL)
        doomed.proc.wait(timeout=10)
        restarted = ProxyProcess(self.config, self.env)
        with self.lock:
            self.live[name] = restarted

    def stop(self) -> None:
        for proc in list(self.live.values()):
            proc.stop()


def _body(out_trade_no: str) -> dict:
    return {"model": "ling-refunds",
            "messages": [{"role": "user", "content": f"refund out_trade_no={out_trade_no} refund_amount=1.00"}]}


def test_two_instances_one_postgres_ledger_kill_and_retries_refund_once_per_key(
        alipay_emulator, alipay_emulator_process, postgres_url, tmp_path):
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:  # a clean ledger for this run
        for table in ("alipay_actions", "alipay_requests", "alipay_values"):
            conn.execute(f"DROP TABLE IF EXISTS {table}")
    rng = random.Random(20261206)
    trades = [alipay_emulator.create_trade(f"C{uuid.uuid4().hex[:12]}", "5.00")["out_trade_no"] for _ in range(KEYS)]
    alipay_emulator.set_faults([
        {"kind": "drop_after_actions", "probability": 0.1, "methods": ["alipay.trade.refund"]},  # answer lost
        {"kind": "drop", "probability": 0.03, "methods": ["ant-ling.chat"]},  # the model's connection drops
    ])
    env = _env(alipay_emulator_process, postgres_url, tmp_path / "audit.jsonl")
    # the injected model drops must not open the circuit breaker: this run is about money, not resilience
    fleet = Fleet(_config(tmp_path, breaker_threshold=100000), env)
    counts = {"sent": 0, "dropped_by_client": 0, "duplicates": 0, "errors": 0, "in_progress": 0}
    done = threading.Semaphore(0)
    reasons: collections.Counter[str] = collections.Counter()
    finished: dict[str, dict] = {}
    lock = threading.Lock()

    def post(url: str, key: str, out_trade_no: str, timeout: float) -> dict | None:
        with lock:
            counts["sent"] += 1
        try:
            answer = httpx.post(f"{url}/v1/chat/completions", json=_body(out_trade_no), timeout=timeout,
                                headers={"Authorization": f"Bearer {MASTER_KEY}", "Idempotency-Key": key})
        except httpx.TimeoutException:
            with lock:
                counts["dropped_by_client"] += 1
            return None
        except httpx.TransportError as exc:
            with lock:
                counts["errors"] += 1
                reasons[type(exc).__name__] += 1
            return None
        if answer.status_code == 400 and "request-in-progress" in answer.text:
            with lock:
                counts["in_progress"] += 1
            return BUSY
        if answer.status_code != 200:
            with lock:
                counts["errors"] += 1
                reasons[f"{answer.status_code} {answer.text[:160]}"] += 1
            return None
        return answer.json()

    def one(index: int) -> None:
        key, out_trade_no = f"chaos-{index}-{uuid.uuid4().hex}", trades[index]
        local = random.Random(rng.random())
        attempt = waits = 0
        while attempt < ATTEMPTS and waits < BUSY_WAITS:
            urls = fleet.urls()
            last = attempt == ATTEMPTS - 1
            roll = local.random()
            if not last and roll < 0.15:  # the client gives up on its answer early, then retries
                post(local.choice(urls), key, out_trade_no, local.uniform(0.05, 0.6))
                attempt += 1
                continue
            if not last and roll < 0.3 and len(urls) > 1:  # the same request at both instances at once
                with lock:
                    counts["duplicates"] += 1
                with ThreadPoolExecutor(2) as both:
                    answers = list(both.map(lambda u: post(u, key, out_trade_no, 60), urls))
                reply = next((a for a in answers if a and a is not BUSY), BUSY if BUSY in answers else None)
            else:
                reply = post(local.choice(urls), key, out_trade_no, 60)
            if reply is BUSY:  # another attempt holds the request: the client backs off and asks again
                waits += 1
                time.sleep(local.uniform(0.1, 0.4))
                continue
            attempt += 1
            if reply is not None:
                finished[key] = reply
                break
        done.release()

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            for index in range(KEYS):
                pool.submit(one, index)
            for _ in range(KEYS // 3):  # a third of the keys answered: SIGKILL one instance, restart it
                done.acquire(timeout=600)
            fleet.kill_and_restart("a")
        elapsed = time.monotonic() - started
    finally:
        fleet.stop()
        alipay_emulator.clear_faults()

    by_trade = {t["out_trade_no"]: t for t in alipay_emulator.trades()}
    refunds = [by_trade[t]["refunds"] for t in trades]
    stats = alipay_emulator.stats()
    with psycopg.connect(postgres_url) as conn:
        states = dict(conn.execute("SELECT state, count(*) FROM alipay_actions GROUP BY state").fetchall())
        answered = conn.execute("SELECT count(*) FROM alipay_requests WHERE response IS NOT NULL").fetchone()[0]
    print(f"\nchaos: {KEYS} keys, {counts['sent']} requests sent ({counts['duplicates']} duplicated to both "
          f"instances, {counts['dropped_by_client']} answers dropped by the client, {counts['errors']} errors, "
          f"{counts['in_progress']} told another attempt was in progress), "
          f"faults {stats['faults_injected']}, one instance SIGKILLed and restarted, {elapsed:.1f} s; "
          f"refunds executed {stats['trades']['refunds_executed']}, "
          f"refund repeats {stats['trades']['refund_repeats']}, "
          f"ledger actions {states}, recorded answers {answered}; errors by reason {dict(reasons.most_common(6))}")
    assert len(finished) == KEYS, f"{KEYS - len(finished)} keys never got an answer"
    assert all(n == 1 for n in refunds), f"refunds per key: {sorted(set(refunds))}"
    assert stats["trades"]["refunds_executed"] == KEYS
    assert states == {"succeeded": KEYS}  # an outcome recorded for every key, and one action each
    assert answered >= KEYS
    for reply in finished.values():
        [action] = reply["choices"][0]["message"]["provider_specific_fields"]["actions"]
        assert action["status"] == "SUCCESS" and action["amount"] == "1.00"
    assert LEDGER_ENV in env
