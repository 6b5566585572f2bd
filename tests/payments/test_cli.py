"""``litellm-alipay audit`` over a trail several processes appended to, and ``litellm-alipay notify``
as a real process answering the emulator's signed notifications."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor

import httpx

from litellm_alipay.cli import main
from litellm_alipay.payments import wire
from litellm_alipay.payments.audit import AuditLog, read_records
from litellm_alipay.wire.signing import load_private_key


def _append(path: str, worker: int) -> None:
    log = AuditLog(path, fsync=False)
    for i in range(200):
        log.write("outcome", action="refund", result="succeeded", amount="1.00", worker=worker, i=i,
                  args={"out_trade_no": f"T{i}", "app_private_key": "SECRET"}, pad="x" * 3000)


def test_workers_append_whole_lines_and_audit_prints_the_totals(tmp_path, capsys) -> None:
    path = str(tmp_path / "audit.jsonl")
    with ProcessPoolExecutor(4) as pool:
        list(pool.map(_append, [path] * 4, range(4)))
    records = list(read_records(path))
    assert len(records) == 800 and len({(r["worker"], r["i"]) for r in records}) == 800
    assert "SECRET" not in open(path).read()
    assert main(["audit", "--file", path]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["refunded"] == "800.00" and summary["outcomes"] == {"refund:succeeded": 800}


def test_notify_command_answers_success_only_to_genuine_notifications(alipay_emulator, trade, tmp_path) -> None:
    t = trade("66.00")
    env = {**os.environ, **alipay_emulator.env(), "ALIPAY_AUDIT_LOG": str(tmp_path / "audit.jsonl")}
    proc = subprocess.Popen([sys.executable, "-m", "litellm_alipay.cli", "notify", "--port", "0"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "ready on" in line, proc.stderr.read() if proc.poll() is not None else line
        url = line.split()[-1] + "/alipay/notify"
        key = load_private_key((alipay_emulator.keys_dir / "alipay_private_key.pem").read_text())
        params = {"notify_id": "n-1", "notify_type": "trade_status_sync", "app_id": alipay_emulator.app_id,
                  "charset": "utf-8", "version": "1.0", "out_trade_no": t["out_trade_no"],
                  "trade_no": t["trade_no"], "trade_status": "TRADE_SUCCESS", "total_amount": "66.00"}
        genuine = httpx.post(url, data=wire.sign_notify(params, key))
        assert (genuine.status_code, genuine.text) == (200, "success")
        forged = httpx.post(url, data={**wire.sign_notify(params, key), "total_amount": "0.01"})
        assert forged.text == "failure"
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    trail = [r for r in read_records(tmp_path / "audit.jsonl")]
    assert [r["result"] for r in trail] == ["applied", "rejected"]
