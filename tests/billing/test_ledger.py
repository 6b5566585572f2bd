"""The cost ledger writes off the event loop, one whole line per ``O_APPEND`` write, so several proxy
workers can append to one file."""

from __future__ import annotations

import json
import multiprocessing
import threading

import litellm

from litellm_alipay.billing import ledger as ledger_module
from litellm_alipay.billing.ledger import CostLedger


def _call(call_id: str) -> tuple[dict, litellm.ModelResponse]:
    response = litellm.ModelResponse()
    response._hidden_params["alipay"] = {"cost_cny": 0.03, "cost_breakdown": {"requests": 1}}
    return {"litellm_call_id": call_id, "model": "alipay/ant-fin-chat", "response_cost": 0.0042}, response


async def test_async_success_event_writes_in_a_worker_thread(tmp_path, monkeypatch):
    path = tmp_path / "cost.jsonl"
    writers: list[int] = []
    real = ledger_module.append_line

    def recording(target, line):
        writers.append(threading.get_ident())
        real(target, line)

    monkeypatch.setattr(ledger_module, "append_line", recording)
    ledger = CostLedger(str(path))
    kwargs, response = _call("call-1")
    await ledger.async_log_success_event(kwargs, response, None, None)
    await ledger.async_log_success_event(kwargs, response, None, None)  # the same call: recorded once
    assert writers and writers[0] != threading.get_ident()  # not the event loop's thread
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["cost_cny"] == 0.03


def test_sync_success_event_and_an_unwritable_path_never_raise(tmp_path, caplog):
    kwargs, response = _call("call-2")
    CostLedger(str(tmp_path / "cost.jsonl")).log_success_event(kwargs, response, None, None)
    assert json.loads((tmp_path / "cost.jsonl").read_text())["call_id"] == "call-2"
    CostLedger(str(tmp_path / "missing-dir" / "cost.jsonl")).log_success_event(kwargs, response, None, None)
    assert "cost ledger: cannot append" in caplog.text


def _append_from_worker(path: str, worker: str) -> None:
    ledger = CostLedger(path)
    for n in range(100):
        response = litellm.ModelResponse()
        # long lines (~64 KiB): a buffered writer would cut them into several writes
        response._hidden_params["alipay"] = {"cost_cny": n, "cost_breakdown": {"pad": worker * 65536}}
        ledger.record({"litellm_call_id": f"{worker}-{n}"}, response)


def test_processes_appending_at_once_never_interleave_lines(tmp_path):
    path = tmp_path / "cost.jsonl"
    fork = multiprocessing.get_context("fork")  # litellm is imported already: forked workers start at once
    workers = [fork.Process(target=_append_from_worker, args=(str(path), w)) for w in "abcd"]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert [w.exitcode for w in workers] == [0, 0, 0, 0]
    entries = [json.loads(line) for line in path.read_text().splitlines()]
    assert sorted(e["call_id"] for e in entries) == sorted(f"{w}-{n}" for w in "abcd" for n in range(100))
    assert all(e["cost_breakdown"]["pad"] == e["call_id"][0] * 65536 for e in entries)
