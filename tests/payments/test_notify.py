"""Notifications: the emulator POSTs signed notifications on state changes and re-sends them on
Alipay's (scaled) schedule until answered ``success``; the verifier refuses forged ones, handles a
replay once and does not apply one that arrives out of order."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator

import pytest
import uvicorn

from litellm_alipay.emulator.process import EmulatorProcess
from litellm_alipay.payments import AuditLog, PaymentPolicy, PaymentToolkit, ResultClass, wire
from litellm_alipay.payments.notify import (
    Notification,
    NotifyRejected,
    NotifyVerifier,
    answer,
    notify_app,
    parse_form,
    read_body,
)
from litellm_alipay.wire.signing import generate_private_key, load_private_key

from .conftest import emulator_settings


class Receiver:
    """A real HTTP receiver (uvicorn in a thread) for the emulator's notifications."""

    def __init__(self, app) -> None:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}/alipay/notify"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="auto"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def fast_notify_emulator() -> Iterator[EmulatorProcess]:
    """An emulator whose resend schedule (4 min, 10 min, …) runs 10,000 times faster."""
    with EmulatorProcess({"notify_delay_scale": 0.0001}) as emu:
        yield emu


def test_notifications_are_resent_until_answered_success(fast_notify_emulator: EmulatorProcess, tmp_path) -> None:
    emu = fast_notify_emulator
    emu.reset()
    settings = emulator_settings(emu)
    kit = PaymentToolkit(settings, PaymentPolicy.from_mapping({"enabled_actions": ["refund"]}),
                         AuditLog(tmp_path / "audit.jsonl"))
    seen: list[Notification] = []
    failures_left = [2]
    done = threading.Event()

    async def business(note: Notification) -> None:
        if failures_left[0]:
            failures_left[0] -= 1
            raise RuntimeError("order service down")  # → "failure": Alipay must re-send
        seen.append(note)
        done.set()

    verifier = NotifyVerifier.for_toolkit(kit, on_notification=business)
    receiver = Receiver(notify_app(verifier))
    try:
        trade = emu.create_trade("N-1", "20.00", trade_status="WAIT_BUYER_PAY", notify_url=receiver.url)
        emu.pay_trade("N-1")
        assert done.wait(30), "the notification was never accepted"
    finally:
        receiver.stop()
    assert [(n.trade_status, n.total_amount, n.disposition) for n in seen] == [("TRADE_SUCCESS", "20.00", "applied")]
    assert seen[0].trade_no == trade["trade_no"]
    stats = emu.stats()["trades"]
    assert (stats["notify_attempts"], stats["notify_acked"]) == (3, 1)
    lines = (tmp_path / "audit.jsonl").read_text()
    assert lines.count('"event":"notify"') == 3 and '"result":"hook_failed"' in lines and "sign" not in lines.replace(
        "sign_type", "")


@pytest.fixture
def captured(fast_notify_emulator: EmulatorProcess) -> Iterator[tuple[EmulatorProcess, list[dict[str, str]]]]:
    """Real notifications of a partial and then a full refund, as the emulator signed and sent them."""
    emu = fast_notify_emulator
    emu.reset()
    got: list[dict[str, str]] = []
    both = threading.Event()

    async def record(scope, receive, send) -> None:
        if scope["type"] != "http":
            return  # no lifespan: uvicorn's "auto" goes on without it
        got.append(parse_form(await read_body(receive)))
        if len(got) == 2:
            both.set()
        await answer(send, 200, b"success")

    receiver = Receiver(record)
    kit = PaymentToolkit(emulator_settings(emu), PaymentPolicy.from_mapping({"enabled_actions": ["refund"]}))
    try:
        emu.create_trade("N-2", "10.00", notify_url=receiver.url)
        assert kit.run("refund", {"out_trade_no": "N-2", "refund_amount": "4"},
                       idempotency_key="key-partial-1").result is ResultClass.SUCCEEDED
        assert kit.run("refund", {"out_trade_no": "N-2", "refund_amount": "6"},
                       idempotency_key="key-rest-2").result is ResultClass.SUCCEEDED
        assert both.wait(30)
    finally:
        receiver.stop()
    yield emu, sorted(got, key=lambda p: wire.cents(p["refund_fee"]))


def _verifier(emu: EmulatorProcess, amounts: dict[str, str] | None = None, **kw) -> NotifyVerifier:
    async def trade_amount(out_trade_no: str) -> str | None:
        return (amounts or {"N-2": "10.00"}).get(out_trade_no)

    return NotifyVerifier(emu.alipay_public_key, emu.app_id, trade_amount=trade_amount, **kw)


async def test_replayed_notification_is_handled_once(captured) -> None:
    emu, (partial, full) = captured
    handled: list[Notification] = []

    async def hook(note: Notification) -> None:
        handled.append(note)

    verifier = _verifier(emu, on_notification=hook)
    assert await verifier.ahandle(partial) == "success"
    assert await verifier.ahandle(partial) == "success"  # acknowledged, so Alipay stops
    assert [n.refund_fee for n in handled] == ["4.00"]
    assert (await verifier.averify(partial)).disposition == "duplicate"
    assert (partial["trade_status"], partial["out_biz_no"]) == ("TRADE_SUCCESS", partial["out_biz_no"])


async def test_out_of_order_notification_is_not_applied(captured) -> None:
    emu, (partial, full) = captured
    assert full["trade_status"] == "TRADE_CLOSED" and full["refund_fee"] == "10.00"
    handled: list[str] = []

    async def hook(note: Notification) -> None:
        handled.append(note.trade_status or "")

    verifier = _verifier(emu, on_notification=hook)
    assert await verifier.ahandle(full) == "success"
    assert (await verifier.averify(partial)).disposition == "stale"
    assert await verifier.ahandle(partial) == "success"
    assert handled == ["TRADE_CLOSED"]


async def test_forged_notifications_are_refused(captured) -> None:
    emu, (partial, _) = captured
    verifier = _verifier(emu)
    tampered = {**partial, "total_amount": "1000.00"}
    with pytest.raises(NotifyRejected) as bad_sign:
        await verifier.averify(tampered)
    assert bad_sign.value.field == "sign"
    assert await verifier.ahandle(tampered) == "failure"
    unsigned = {k: v for k, v in partial.items() if k != "sign"}
    with pytest.raises(NotifyRejected):
        await verifier.averify(unsigned)
    forger = generate_private_key()
    body = {k: v for k, v in partial.items() if k not in ("sign", "sign_type")}
    with pytest.raises(NotifyRejected) as other_key:
        await verifier.averify(wire.sign_notify(body, forger))
    assert other_key.value.field == "sign"
    # Signed by Alipay's key, but for another app or an amount that is not the order's:
    alipay_key = load_private_key((emu.keys_dir / "alipay_private_key.pem").read_text())
    with pytest.raises(NotifyRejected) as app:
        await verifier.averify(wire.sign_notify({**body, "app_id": "2021999999999999"}, alipay_key))
    assert app.value.field == "app_id"
    with pytest.raises(NotifyRejected) as amount:
        await _verifier(emu, {"N-2": "99.00"}).averify(partial)
    assert amount.value.field == "total_amount"


def test_the_sync_verify_and_the_toolkit_lookup(captured) -> None:
    emu, (partial, _) = captured
    kit = PaymentToolkit(emulator_settings(emu))
    note = NotifyVerifier.for_toolkit(kit).verify(partial)  # total checked against alipay.trade.query
    assert (note.disposition, note.total_amount) == ("applied", "10.00")
    assert asyncio.iscoroutinefunction(notify_app(NotifyVerifier.for_toolkit(kit)))


async def test_workers_sharing_a_ledger_apply_a_notification_once(captured, postgres_url) -> None:
    import uuid

    from litellm_alipay.ledger import engine_for
    from litellm_alipay.ledger.book import Ledger
    from litellm_alipay.payments.store import SharedStore

    emu, (partial, full) = captured
    handled: list[str] = []

    async def hook(note: Notification) -> None:
        handled.append(note.trade_status or "")

    app_id = f"2021{uuid.uuid4().int % 10**12:012d}"  # a fresh namespace in the shared database, per run
    key = load_private_key((emu.keys_dir / "alipay_private_key.pem").read_text())

    def resign(params: dict[str, str]) -> dict[str, str]:
        body = {k: v for k, v in params.items() if k not in ("sign", "sign_type")}
        return wire.sign_notify({**body, "app_id": app_id}, key)

    one, two = (NotifyVerifier(emu.alipay_public_key, app_id, trade_amount=_amount_10, on_notification=hook,
                               store=SharedStore(Ledger(engine_for(postgres_url)))) for _ in range(2))
    note, closed = resign(partial), resign(full)
    answers = await asyncio.gather(one.ahandle(note), two.ahandle(note))
    # one worker applied it; the other found it handled ("success") or being handled ("failure": Alipay re-sends)
    assert "success" in answers and set(answers) <= {"success", "failure"}
    assert handled == ["TRADE_SUCCESS"]
    assert await two.ahandle(note) == "success" and handled == ["TRADE_SUCCESS"]  # Alipay's re-send
    assert await two.ahandle(closed) == "success"
    assert (await one.averify(closed)).disposition == "duplicate"
    assert (await one.averify({**note, "notify_id": note["notify_id"]})).disposition == "duplicate"
    assert handled == ["TRADE_SUCCESS", "TRADE_CLOSED"]


async def _amount_10(out_trade_no: str) -> str:
    return "10.00"


# ------------------------------------------------------------------ once for good, seller, stale, body bound
_ONE_PROCESS = """
import asyncio, json, os, sys
from litellm_alipay.payments.notify import NotifyVerifier

async def amount(out_trade_no):
    return "10.00"

async def hook(note):
    with open(os.environ["HOOK_FILE"], "a") as f:
        f.write(note.notify_id + "\\n")

verifier = NotifyVerifier(os.environ["ALIPAY_KEY"], os.environ["APP_ID"], trade_amount=amount, on_notification=hook)
print(asyncio.run(verifier.ahandle(json.loads(sys.stdin.read()))))
"""


def test_a_notification_replayed_after_a_restart_runs_the_hook_once(captured, tmp_path) -> None:
    """Two processes, one after the other, on the test's SQLite ledger file (ALIPAY_LEDGER_URL): the
    second is the receiver restarted; Alipay's re-send reaches it and its hook does not run again."""
    import json
    import os
    import subprocess
    import sys

    emu, (partial, _) = captured
    hook_file = tmp_path / "hook.txt"
    env = {**os.environ, "HOOK_FILE": str(hook_file), "ALIPAY_KEY": emu.alipay_public_key, "APP_ID": emu.app_id}
    answers = [subprocess.run([sys.executable, "-c", _ONE_PROCESS], input=json.dumps(partial), env=env,
                              capture_output=True, text=True, timeout=120) for _ in range(2)]
    assert [a.stdout.strip() for a in answers] == ["success", "success"], [a.stderr[-2000:] for a in answers]
    assert hook_file.read_text().splitlines() == [partial["notify_id"]]


async def test_a_handled_notify_id_is_kept_for_good(captured) -> None:
    """No expiry on the ledger row: a replay a week (or a year) later is still a duplicate."""
    from litellm_alipay.ledger import ledger_for

    emu, (partial, _) = captured
    verifier = _verifier(emu)
    assert await verifier.ahandle(partial) == "success"
    rows = await ledger_for().transact(lambda tx: tx.run(
        "SELECT name, expires FROM alipay_values WHERE name LIKE ?", ("payments:notify-seen:%",)).fetchall())
    assert [(name.rsplit(":", 1)[-1], expires) for name, expires in rows] == [(partial["notify_id"], None)]


async def test_a_notification_at_the_rank_already_applied_is_stale(captured) -> None:
    """A second notification (another notify_id) with the same state and refunded total as the one applied
    tells nothing new: acknowledged, the hook not run again."""
    emu, (partial, _) = captured
    alipay_key = load_private_key((emu.keys_dir / "alipay_private_key.pem").read_text())
    body = {k: v for k, v in partial.items() if k not in ("sign", "sign_type")}
    same_rank = wire.sign_notify({**body, "notify_id": partial["notify_id"] + "x"}, alipay_key)
    handled: list[str] = []

    async def hook(note: Notification) -> None:
        handled.append(note.notify_id)

    verifier = _verifier(emu, on_notification=hook)
    assert await verifier.ahandle(partial) == "success"
    assert (await verifier.averify(same_rank)).disposition == "stale"
    assert await verifier.ahandle(same_rank) == "success"
    assert handled == [partial["notify_id"]]


async def test_seller_id_is_checked_when_configured(captured) -> None:
    from litellm_alipay.errors import ConfigurationError
    from litellm_alipay.payments.notify import NotifySettings

    emu, (partial, _) = captured
    assert partial["seller_id"] == "2088102146225135"
    assert (await _verifier(emu, seller_id="2088102146225135").averify(partial)).disposition == "applied"
    with pytest.raises(NotifyRejected) as other:
        await _verifier(emu, seller_id="2088000000000001").averify(partial)
    assert other.value.field == "seller_id" and "seller_id" in str(other.value)
    assert await _verifier(emu, seller_id="2088000000000001").ahandle(partial) == "failure"
    with pytest.raises(ConfigurationError, match="ALIPAY_NOTIFY_SELLER_ID"):
        NotifySettings.from_env({"ALIPAY_NOTIFY_SELLER_ID": "seller-1"})
    assert NotifySettings.from_env({"ALIPAY_NOTIFY_SELLER_ID": "2088102146225135"}).seller_id == "2088102146225135"


def test_the_receiver_bounds_the_request_body(captured, tmp_path) -> None:
    """Over ``max_body_bytes`` → 413 whether the length is declared or the body is streamed (chunked);
    the notification itself still answers ``success``."""
    import httpx

    from litellm_alipay.errors import ConfigurationError
    from litellm_alipay.payments.notify import NotifySettings

    emu, (partial, _) = captured
    audit = AuditLog(tmp_path / "audit.jsonl")
    receiver = Receiver(notify_app(_verifier(emu, audit=audit), max_body_bytes=4096))
    try:
        with httpx.Client(timeout=30) as http:
            declared = http.post(receiver.url, content=b"a=" + b"x" * 5000)

            def chunks():
                for _ in range(100):  # 100 KiB in 1 KiB chunks, no content-length
                    yield b"y" * 1024

            streamed = http.post(receiver.url, content=chunks())
            fine = http.post(receiver.url, data=partial)
    finally:
        receiver.stop()
    assert (declared.status_code, streamed.status_code) == (413, 413)
    assert (fine.status_code, fine.text) == (200, "success")
    assert "ALIPAY_NOTIFY_MAX_BODY_BYTES" in (tmp_path / "audit.jsonl").read_text()
    assert NotifySettings().max_body_bytes == 64 * 1024
    with pytest.raises(ConfigurationError, match="ALIPAY_NOTIFY_MAX_BODY_BYTES"):
        NotifySettings.from_env({"ALIPAY_NOTIFY_MAX_BODY_BYTES": "10"})


async def test_a_notification_another_worker_is_handling_is_not_acknowledged(captured) -> None:
    """Two copies of one notify_id at once: one runs the hook; the other answers "failure" (Alipay re-sends)
    rather than "success" — if the first worker died mid-hook, an acknowledged copy would lose the event."""
    emu, (partial, _) = captured
    started, release = asyncio.Event(), asyncio.Event()
    handled: list[str] = []

    async def slow_hook(note: Notification) -> None:
        started.set()
        await release.wait()
        handled.append(note.notify_id)

    verifier = NotifyVerifier(emu.alipay_public_key, emu.app_id, trade_amount=_amount_10, on_notification=slow_hook)
    first = asyncio.ensure_future(verifier.ahandle(partial))
    await started.wait()
    assert await verifier.ahandle(partial) == "failure"  # the copy while the first is in its hook
    release.set()
    assert await first == "success" and handled == [partial["notify_id"]]
    assert await verifier.ahandle(partial) == "success" and len(handled) == 1  # Alipay's re-send: a duplicate
